//! Messages to the admin thread: browser publishes handed over by the subscriber
//! loops, and shutdown; and the answer to a browser publish that goes back to its
//! loop (through the bus, `LoopMessage::Published`). The admin thread is the one
//! place that gives events their ids and stores them; a loop never waits for it, but
//! answers its browser when this answer comes.
//!
//! One unbounded `crossbeam-channel` and the admin poll's `mio::Waker`. A loop queues
//! its turn's publishes and wakes the admin thread once at the end of the turn
//! (`AdminSender::wake`), as the admin thread wakes the loops once per turn.

use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};
use mio::Waker;

/// What the admin thread can be told (besides socket events).
#[derive(Debug)]
pub enum AdminMessage {
    /// A browser's publish, to store and answer.
    Publish(ClientPublish),
    /// With `--redis`: a job of the Redis thread done.
    Redis(crate::storage::redis_store::publisher::Done),
    /// Answer at once: the watchdog's proof that the admin loop is turning.
    Probe(Sender<()>),
    /// Stop.
    Shutdown,
}

/// A publish from a browser, checked by its loop (allowed, within size and rate).
#[derive(Debug)]
pub struct ClientPublish {
    pub reply_to: ReplyTo,
    pub channel: Box<str>,
    pub data: Box<str>,
}

/// Where a browser publish's answer goes: a loop, a connection of it, and the serial
/// that tells that connection from a later one under the same key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyTo {
    pub loop_number: usize,
    pub key: usize,
    pub serial: u64,
}

/// The admin thread's answer to a browser publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublishAnswer {
    /// Stored as `id` of `channel` (as durable as `--fsync` asks).
    Stored { channel: Arc<str>, id: u64 },
    /// The channel is closed: nothing stored.
    Closed,
    /// Storage has failed: nothing stored.
    Unavailable,
}

/// A loop's side of the admin thread's inbox.
#[derive(Debug, Clone)]
pub struct AdminSender {
    sender: Sender<AdminMessage>,
    waker: Arc<Waker>,
}

/// A connected sender and receiver for the admin thread whose poll owns `waker`.
pub fn admin_channel(waker: Arc<Waker>) -> (AdminSender, Receiver<AdminMessage>) {
    let (sender, receiver) = crossbeam_channel::unbounded();
    (AdminSender { sender, waker }, receiver)
}

impl AdminSender {
    /// Queues `message` without waking the admin thread; `wake` must follow before
    /// the sender's loop sleeps. Returns false if the admin thread is gone.
    pub fn queue(&self, message: AdminMessage) -> bool {
        self.sender.send(message).is_ok()
    }

    /// Wakes the admin thread.
    pub fn wake(&self) {
        // A failed wake means its poll is gone: the server is stopping.
        let _ = self.waker.wake();
    }

    /// Queues `message` and wakes the admin thread.
    pub fn send(&self, message: AdminMessage) -> bool {
        let sent = self.queue(message);
        self.wake();
        sent
    }
}
