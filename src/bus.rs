//! Messages from the admin thread (and the server's owner) to the subscriber loops:
//! one unbounded `crossbeam-channel` per loop plus its `mio::Waker`.
//!
//! Wake-ups are coalesced twice over. The admin thread queues the events of one turn
//! of its loop and wakes each loop once at the end of the turn (`Bus::wake`), not once
//! per event; waking a sleeping thread was the largest single cost of a publish. And a
//! loop that has been woken and has not yet drained its inbox is not woken again. The
//! loop clears its flag *before* draining, so a message sent after the drain started
//! either is seen by that drain or wakes the loop again.
//!
//! The inbox is unbounded on purpose: a stored event must reach every loop (losing one
//! would lose it for that loop's subscribers), and a publisher must never wait on a
//! busy loop. A loop drains its inbox at every turn.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};
use mio::Waker;

use crate::channel::Event;

/// What a loop can be told.
#[derive(Debug)]
pub enum LoopMessage {
    /// A stored event, to append to the loop's replica and deliver.
    Event(Arc<Event>),
    /// How many of the loop's connections wait on this channel now.
    CountSubscribers {
        channel: Box<str>,
        reply: Sender<usize>,
    },
    /// Retention moved the oldest id storage holds of a channel.
    Retained { channel: Arc<str>, first_id: u64 },
    /// Events read from storage for a connection catching up.
    Fetched(crate::storage::catchup::Fetched),
    /// End every stream and held poll cleanly, then exit.
    Shutdown,
}

/// The sending side of one loop's inbox.
#[derive(Debug, Clone)]
pub struct LoopSender {
    sender: Sender<LoopMessage>,
    waker: Arc<Waker>,
    notified: Arc<AtomicBool>,
}

/// The receiving side, owned by the loop.
#[derive(Debug)]
pub struct LoopInbox {
    receiver: Receiver<LoopMessage>,
    notified: Arc<AtomicBool>,
}

/// A connected sender and inbox for a loop whose poll owns `waker`.
pub fn loop_channel(waker: Arc<Waker>) -> (LoopSender, LoopInbox) {
    let (sender, receiver) = crossbeam_channel::unbounded();
    let notified = Arc::new(AtomicBool::new(false));
    (
        LoopSender {
            sender,
            waker,
            notified: notified.clone(),
        },
        LoopInbox { receiver, notified },
    )
}

impl LoopSender {
    /// Queues `message` and wakes the loop unless a wake-up is already pending.
    /// Returns false if the loop is gone.
    pub fn send(&self, message: LoopMessage) -> bool {
        if !self.queue(message) {
            return false;
        }
        self.wake();
        true
    }

    /// Queues `message` without waking the loop; `wake` must follow. Returns false if
    /// the loop is gone.
    fn queue(&self, message: LoopMessage) -> bool {
        self.sender.send(message).is_ok()
    }

    /// Wakes the loop unless a wake-up is already pending.
    fn wake(&self) {
        if !self.notified.swap(true, Ordering::AcqRel) {
            // A failed wake means the poll is gone; the loop is exiting anyway.
            let _ = self.waker.wake();
        }
    }
}

impl LoopInbox {
    /// Takes every queued message, oldest first, into `f`.
    pub fn drain(&self, mut f: impl FnMut(LoopMessage)) {
        self.notified.store(false, Ordering::Release);
        while let Ok(message) = self.receiver.try_recv() {
            f(message);
        }
    }
}

/// The senders to every loop, held by the admin thread.
#[derive(Debug, Clone)]
pub struct Bus {
    loops: Vec<LoopSender>,
    /// Events were queued since the loops were last woken.
    unwoken: bool,
}

impl Bus {
    pub fn new(loops: Vec<LoopSender>) -> Bus {
        Bus {
            loops,
            unwoken: false,
        }
    }

    /// Queues a stored event to every loop; the loops see it after the next `wake`.
    pub fn publish(&mut self, event: &Arc<Event>) {
        for sender in &self.loops {
            sender.queue(LoopMessage::Event(event.clone()));
        }
        self.unwoken = true;
    }

    /// Wakes every loop that has events queued by `publish` (once per turn of the
    /// admin loop, before it sleeps).
    pub fn wake(&mut self) {
        if std::mem::take(&mut self.unwoken) {
            for sender in &self.loops {
                sender.wake();
            }
        }
    }

    /// Asks every loop how many of its connections wait on `channel`, waiting at most
    /// `timeout` for the answers; a loop that does not answer in time counts as 0.
    pub fn count_subscribers(&self, channel: &str, timeout: std::time::Duration) -> usize {
        let (reply, answers) = crossbeam_channel::bounded(self.loops.len());
        let mut asked = 0;
        for sender in &self.loops {
            if sender.send(LoopMessage::CountSubscribers {
                channel: channel.into(),
                reply: reply.clone(),
            }) {
                asked += 1;
            }
        }
        let deadline = std::time::Instant::now() + timeout;
        (0..asked)
            .map_while(|_| answers.recv_deadline(deadline).ok())
            .sum()
    }

    /// Tells every loop that storage now holds `channel` from `first_id` on.
    pub fn retained(&self, channel: &Arc<str>, first_id: u64) {
        for sender in &self.loops {
            sender.send(LoopMessage::Retained {
                channel: channel.clone(),
                first_id,
            });
        }
    }

    /// The sender of each loop, in loop order.
    pub fn senders(&self) -> Vec<LoopSender> {
        self.loops.clone()
    }

    /// Tells every loop to shut down.
    pub fn shutdown(&self) {
        for sender in &self.loops {
            sender.send(LoopMessage::Shutdown);
        }
    }
}
