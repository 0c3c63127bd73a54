//! Messages from the admin thread (and the server's owner) to the subscriber loops:
//! stored events, the answers to browser publishes, and the rest; one unbounded
//! `crossbeam-channel` per loop plus its `mio::Waker`.
//!
//! Wake-ups are coalesced three ways. The admin thread queues the events of one turn
//! of its loop and wakes each loop once at the end of the turn (`Bus::wake`), not once
//! per event; waking a sleeping thread was the largest single cost of a publish. A
//! loop that has been woken and has not yet drained its inbox is not woken again (the
//! loop clears its flag *before* draining, so a message sent after the drain started
//! either is seen by that drain or wakes the loop again). And a loop with no
//! subscription waiting (no held poll, no stream) is not woken for events at all
//! until `UNWOKEN_LIMIT` are queued: nobody there is owed them now, and it drains them
//! first thing at its next turn, before it reads any request, so a subscriber that
//! arrives finds them. A loop that starts waiting bumps its count and *then* looks at
//! its inbox before it sleeps, and the admin thread queues and *then* reads the count
//! (both with a `SeqCst` fence between): so either the admin thread sees the waiter
//! and wakes the loop, or the loop sees the event.
//!
//! The inbox is unbounded on purpose: a stored event must reach every loop (losing one
//! would lose it for that loop's subscribers), and a publisher must never wait on a
//! busy loop. A loop drains its inbox at every turn.

use std::sync::atomic::{fence, AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};
use mio::Waker;

use crate::admin_inbox::{PublishAnswer, ReplyTo};
use crate::channel::Event;

/// Events queued to a loop with no subscription waiting before it is woken anyway, to
/// bound the memory its inbox holds.
pub const UNWOKEN_LIMIT: usize = 256;

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
    /// The admin thread's answer to a browser publish this loop handed it.
    Published { to: ReplyTo, answer: PublishAnswer },
    /// Shared storage was out of reach and is back: what the loop's replicas know may
    /// be behind it, so every channel is asked again (`ChannelIndex::doubt_all`).
    Resync,
    /// Answer at once: the watchdog's proof that the loop is turning.
    Probe(Sender<()>),
    /// End every stream and held poll cleanly, then exit.
    Shutdown,
}

/// The sending side of one loop's inbox.
#[derive(Debug, Clone)]
pub struct LoopSender {
    sender: Sender<LoopMessage>,
    waker: Arc<Waker>,
    notified: Arc<AtomicBool>,
    /// Subscriptions waiting on the loop.
    waiting: Arc<AtomicUsize>,
}

/// The receiving side, owned by the loop.
#[derive(Debug)]
pub struct LoopInbox {
    receiver: Receiver<LoopMessage>,
    notified: Arc<AtomicBool>,
    waiting: Arc<AtomicUsize>,
}

/// A connected sender and inbox for a loop whose poll owns `waker`.
pub fn loop_channel(waker: Arc<Waker>) -> (LoopSender, LoopInbox) {
    let (sender, receiver) = crossbeam_channel::unbounded();
    let notified = Arc::new(AtomicBool::new(false));
    let waiting = Arc::new(AtomicUsize::new(0));
    (
        LoopSender {
            sender,
            waker,
            notified: notified.clone(),
            waiting: waiting.clone(),
        },
        LoopInbox {
            receiver,
            notified,
            waiting,
        },
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

    /// After `queue`: wakes the loop if a subscription waits on it or its inbox is
    /// long, unless a wake-up is already pending.
    fn wake_for_events(&self) {
        // Pairs with the fence in `LoopInbox::has_messages`.
        fence(Ordering::SeqCst);
        if self.waiting.load(Ordering::Relaxed) > 0 || self.sender.len() >= UNWOKEN_LIMIT {
            self.wake();
        }
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

    /// A subscription started waiting on this loop: from now on it is woken for
    /// events. The loop must look at `has_messages` before it next sleeps.
    pub fn start_waiting(&self) {
        self.waiting.fetch_add(1, Ordering::Relaxed);
    }

    /// A subscription stopped waiting.
    pub fn stop_waiting(&self) {
        self.waiting.fetch_sub(1, Ordering::Relaxed);
    }

    /// Whether messages are queued (the loop then polls without sleeping).
    pub fn has_messages(&self) -> bool {
        // Pairs with the fence in `LoopSender::wake_for_events`: either the admin
        // thread saw this loop's waiting count, or this sees its event.
        fence(Ordering::SeqCst);
        !self.receiver.is_empty()
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

    /// Wakes every loop that has events queued by `publish` and a subscription
    /// waiting or a long inbox (once per turn of the admin loop, before it sleeps).
    pub fn wake(&mut self) {
        if std::mem::take(&mut self.unwoken) {
            for sender in &self.loops {
                sender.wake_for_events();
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

    /// Tells every loop that shared storage is back after being out of reach.
    pub fn resync(&mut self) {
        for sender in &self.loops {
            sender.send(LoopMessage::Resync);
        }
    }

    /// Sends the answer to a browser publish to the loop it came from (after the
    /// event itself, so the publisher's own subscription has it first).
    pub fn answer(&self, to: ReplyTo, answer: PublishAnswer) {
        if let Some(sender) = self.loops.get(to.loop_number) {
            sender.send(LoopMessage::Published { to, answer });
        }
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

    /// Asks every loop to answer on `reply`; returns how many were asked (a loop that
    /// has exited is not).
    pub fn probe(&self, reply: &Sender<()>) -> usize {
        self.loops
            .iter()
            .filter(|sender| sender.send(LoopMessage::Probe(reply.clone())))
            .count()
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

#[cfg(test)]
mod tests {
    use super::*;
    use mio::{Events, Poll, Token};
    use std::time::Duration;

    /// Whether the loop's waker fired (without waiting for it).
    fn woken(poll: &mut Poll, events: &mut Events) -> bool {
        poll.poll(events, Some(Duration::ZERO)).unwrap();
        !events.is_empty()
    }

    #[test]
    fn events_wake_a_loop_only_when_a_subscription_waits_or_its_inbox_is_long() {
        let mut poll = Poll::new().unwrap();
        let waker = Arc::new(Waker::new(poll.registry(), Token(7)).unwrap());
        let (sender, inbox) = loop_channel(waker);
        let mut bus = Bus::new(vec![sender]);
        let mut events = Events::with_capacity(4);
        let event = Arc::new(Event::message("c".into(), 1, "x"));

        // Nobody waits: queued, not woken, and the loop sees it before it sleeps.
        bus.publish(&event);
        bus.wake();
        assert!(!woken(&mut poll, &mut events));
        assert!(inbox.has_messages());
        let mut taken = 0;
        inbox.drain(|_| taken += 1);
        assert_eq!((taken, inbox.has_messages()), (1, false));

        // A subscription waits: woken, once per turn.
        inbox.start_waiting();
        bus.publish(&event);
        bus.publish(&event);
        bus.wake();
        assert!(woken(&mut poll, &mut events));
        inbox.drain(|_| {});
        inbox.stop_waiting();

        // Nobody waits, but the inbox is long: woken.
        for _ in 0..UNWOKEN_LIMIT - 1 {
            bus.publish(&event);
        }
        bus.wake();
        assert!(!woken(&mut poll, &mut events));
        bus.publish(&event);
        bus.wake();
        assert!(woken(&mut poll, &mut events));
        let mut taken = 0;
        inbox.drain(|_| taken += 1);
        assert_eq!(taken, UNWOKEN_LIMIT);
    }
}
