//! What Redis answers the catch-up reader must not overtake what it announced before.
//!
//! A loop that learns a channel's last id from Redis (`StorageReader::bounds`) takes
//! every event up to it as known; an announcement of one of those events that reaches
//! the loop afterwards is dropped as heard already. Announcements come through the
//! listener, answers through the catch-up thread: if the answer came first, an event
//! published just after a subscription began (and before the answer was read) would be
//! dropped for that subscription. So before an answer goes to the loop, the listener
//! of the channel's shard sends a PING on its subscription and waits for the PONG:
//! Redis answers in order on one connection, so every announcement it sent before the
//! answer was read has then been handed to the loops, ahead of the answer in their
//! inboxes.
//!
//! `Barriers` is filled once the listeners exist (on a Redis Cluster, once its map of
//! slots is read); until then, and while a listener is not connected, no answer
//! passes (the loops take it as unanswered and ask again at the channel's next
//! event).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use mio::Waker;

use super::keys;

/// A wait asked of a listener: it answers on the sender once it has handed on every
/// announcement read before its PING's answer.
pub type Wait = Sender<()>;

/// The way to one listener: its queue of waits, and its waker.
#[derive(Clone)]
pub struct Gate {
    pub waits: Sender<Wait>,
    pub waker: Arc<Waker>,
}

impl Gate {
    /// A gate for a listener, and the listener's end of it.
    pub fn new(waker: Arc<Waker>) -> (Gate, Receiver<Wait>) {
        let (waits, inbox) = crossbeam_channel::unbounded();
        (Gate { waits, waker }, inbox)
    }
}

/// Every listener's gate, and which one serves each channel.
#[derive(Default)]
pub struct Barriers {
    gates: OnceLock<Routes>,
}

struct Routes {
    gates: Vec<Gate>,
    /// On a Redis Cluster, the gate of each slot; empty on one Redis (one gate).
    by_slot: Vec<u16>,
}

impl Barriers {
    pub fn new() -> Arc<Barriers> {
        Arc::new(Barriers::default())
    }

    /// The one listener of a single Redis.
    pub fn install_single(&self, gate: Gate) {
        let _ = self.gates.set(Routes {
            gates: vec![gate],
            by_slot: Vec::new(),
        });
    }

    /// The listeners of a Redis Cluster, each with its slots.
    pub fn install_shards(&self, shards: Vec<(Vec<u16>, Gate)>) {
        let mut by_slot = vec![0u16; keys::SLOTS as usize];
        let mut gates = Vec::with_capacity(shards.len());
        for (n, (slots, gate)) in shards.into_iter().enumerate() {
            for slot in slots {
                by_slot[slot as usize] = n as u16;
            }
            gates.push(gate);
        }
        let _ = self.gates.set(Routes { gates, by_slot });
    }

    /// Waits until the listener of `channel`'s shard has handed on every announcement
    /// Redis sent before now, at most `timeout`. False if it could not say so.
    pub fn pass(&self, channel: &str, timeout: Duration) -> bool {
        let Some(routes) = self.gates.get() else {
            return false;
        };
        let gate = match routes.by_slot.is_empty() {
            true => &routes.gates[0],
            false => &routes.gates[routes.by_slot[keys::channel_slot(channel) as usize] as usize],
        };
        let (done, passed) = crossbeam_channel::bounded(1);
        if gate.waits.send(done).is_err() || gate.waker.wake().is_err() {
            return false;
        }
        passed.recv_timeout(timeout).is_ok()
    }
}
