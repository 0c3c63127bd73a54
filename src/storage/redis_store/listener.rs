//! A server's ear on Redis: it hears every announcement and hands on each channel's
//! events in id order, exactly once, whatever Redis did to the announcements.
//!
//! - **An announcement missing** (Redis dropped the subscription, an output buffer
//!   limit, a network cut) shows in the ids: an id more than one past the channel's
//!   last is preceded by what lies between, read from the channel's stream; what the
//!   stream no longer holds is handed on as a gap.
//! - **Silence** (a link cut without a word, which TCP alone would hide for minutes):
//!   after 2 s without an announcement, Redis must answer a PING on the subscription
//!   within the timeout, or the subscription counts as lost.
//! - **A Redis Cluster**: a listener per master at start, for that master's slots.
//!   Each (re)connection subscribes to the shard channels of its slots on whichever
//!   master holds the first of them then (after a failover, the promoted replica).
//! - **The subscription lost** (Redis restarted, unreachable, or it closed us): the
//!   listener reconnects with a growing pause, subscribes again, raises the counter of
//!   every channel it has heard to at least what it heard (a Redis that lost data must
//!   not give those ids again) and reads from each stream what was announced while it
//!   was away.
//! - **What is not an announcement** is handed on as refused, with the reason.
//!
//! - **A barrier** asked through its gate (`barrier.rs`): a PING is sent on the
//!   subscription, and once its PONG is read, every announcement before it has been
//!   handed on: the wait is answered.
//!
//! It runs on a thread of its own (`run` returns when its stop channel says so, or is
//! dropped), waiting on its own `mio::Poll` (the subscription's socket, and the
//! gate's waker), and talks to the rest only through `hear` and the gate. A channel it
//! has not heard of starts at the first id it hears: what came before is for the
//! catch-up reader to serve.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, TryRecvError};
use mio::{Events, Poll, Token, Waker};

use super::barrier::{Gate, Wait};
use super::subscription::{Mode, Received, Subscription};
use super::{keys, topology, Announcement, AnnouncementError, Kind, RedisError, RedisStore};

/// After this long without an announcement, the subscription is checked with a PING
/// (answered within the timeout, or the subscription is made again).
const IDLE_PING: Duration = Duration::from_secs(2);
/// How long a wait for an announcement lasts before the stop channel is looked at.
const STOP_CHECK: Duration = Duration::from_millis(200);
/// The poll's tokens: the subscription's socket, and the gate's waker.
const SOCKET: Token = Token(0);
const GATE: Token = Token(1);
/// The message of a PING that checks a silent link (a barrier's is its number).
const IDLE: &[u8] = b"idle";
/// Pauses between reconnections: from the first, doubling to the last.
const FIRST_PAUSE: Duration = Duration::from_millis(50);
const LAST_PAUSE: Duration = Duration::from_secs(2);
/// Events read from a stream per request, filling a hole or catching up.
const READ_BATCH: usize = 500;

/// What the listener hands on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Heard {
    /// The next event of a channel (its close marker when `data` is `None`).
    Event {
        channel: Arc<str>,
        id: u64,
        data: Option<Vec<u8>>,
    },
    /// Events `from..=to` of a channel were announced but are no longer in Redis.
    Gap {
        channel: Arc<str>,
        from: u64,
        to: u64,
    },
    /// Bytes on the announcement channel that are not an announcement.
    Refused(AnnouncementError),
    /// The subscription is up (again): what was missed has been handed on before this.
    Connected,
    /// Nothing more has come for now: what was handed on since the last pause is a
    /// burst's whole (the moment to wake whoever waits for it).
    Pause,
    /// The subscription broke; the listener is reconnecting.
    Disconnected(String),
}

/// Where a listener hears announcements.
#[derive(Debug, Clone)]
pub enum Source {
    /// One Redis (the store's URL): its one announcement channel.
    Single,
    /// A cluster shard: the shard channels of these slots, on the master holding the
    /// first of them, found from the seeds.
    Shard { seeds: Vec<String>, slots: Vec<u16> },
}

/// The listener's state: where each channel it has heard stands.
pub struct Listener {
    /// The store's URL (`redis://` or `redis+cluster://`), for catching up.
    url: String,
    source: Source,
    timeout: Duration,
    /// The last id handed on, per channel.
    last: HashMap<Arc<str>, u64>,
    poll: Poll,
    gate: Gate,
    waits: Receiver<Wait>,
}

impl Listener {
    /// A listener for the Redis at `url`, each call to it bounded by `timeout`.
    pub fn new(url: &str, timeout: Duration) -> std::io::Result<Listener> {
        Listener::on(url, Source::Single, timeout)
    }

    /// A listener for `source`, catching up from the store at `url`.
    pub fn on(url: &str, source: Source, timeout: Duration) -> std::io::Result<Listener> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), GATE)?);
        let (gate, waits) = Gate::new(waker);
        Ok(Listener {
            url: url.to_string(),
            source,
            timeout,
            last: HashMap::new(),
            poll,
            gate,
            waits,
        })
    }

    /// The way to ask this listener for a barrier.
    pub fn gate(&self) -> Gate {
        self.gate.clone()
    }

    /// Listens until `stop` receives or is dropped, handing everything to `hear`.
    pub fn run(&mut self, stop: &Receiver<()>, mut hear: impl FnMut(Heard)) {
        let mut pause = FIRST_PAUSE;
        while !stopped(stop) {
            match self.listen(stop, &mut hear) {
                Ok(()) => return,
                Err(e) => {
                    hear(Heard::Disconnected(e.to_string()));
                    // The pause before reconnecting ends early if told to stop.
                    if stop.recv_timeout(pause) != Err(RecvTimeoutError::Timeout) {
                        return;
                    }
                    pause = (pause * 2).min(LAST_PAUSE);
                }
            }
        }
    }

    /// One subscription, until it breaks (an error) or `stop` says so (`Ok`).
    fn listen(
        &mut self,
        stop: &Receiver<()>,
        hear: &mut impl FnMut(Heard),
    ) -> Result<(), RedisError> {
        let (address, channels, mode) = match &self.source {
            Source::Single => (
                self.url.clone(),
                vec![keys::ANNOUNCEMENTS.to_string()],
                Mode::Plain,
            ),
            Source::Shard { seeds, slots } => {
                let shard = topology::owner(seeds, slots[0], self.timeout)?;
                let channels = slots.iter().map(|&s| keys::shard_announcements(s));
                (shard.url, channels.collect(), Mode::Sharded)
            }
        };
        let mut store = RedisStore::connect(&self.url, self.timeout, 1)?;
        let registry = (self.poll.registry(), SOCKET);
        let mut subscription =
            Subscription::open(&address, &channels, mode, self.timeout, registry)?;
        // Subscribed first, then caught up: an event announced in between is both
        // read and heard, and handed on once.
        self.catch_up(&mut store, hear)?;
        hear(Heard::Connected);
        let mut events = Events::with_capacity(4);
        let mut heard_at = Instant::now();
        let mut pinged: Option<Instant> = None;
        // Barriers sent and not answered yet: their number, and who waits.
        let mut barriers: VecDeque<(u64, Vec<Wait>)> = VecDeque::new();
        let mut next_barrier: u64 = 0;
        while !stopped(stop) {
            loop {
                let payload = match subscription.try_receive()? {
                    Received::Message(payload) => payload,
                    Received::Pong(message) => {
                        (heard_at, pinged) = (Instant::now(), None);
                        if let Some(number) = barrier_number(&message) {
                            while barriers.front().is_some_and(|(n, _)| *n <= number) {
                                for wait in barriers.pop_front().expect("looked at").1 {
                                    let _ = wait.send(());
                                }
                            }
                        }
                        continue;
                    }
                    Received::Nothing => {
                        hear(Heard::Pause);
                        break;
                    }
                };
                (heard_at, pinged) = (Instant::now(), None);
                match Announcement::parse(&payload) {
                    Ok(announcement) => self.heard(&mut store, announcement, hear)?,
                    Err(why) => hear(Heard::Refused(why)),
                }
            }
            let waits: Vec<Wait> = self.waits.try_iter().collect();
            if !waits.is_empty() {
                next_barrier += 1;
                subscription.ping(next_barrier.to_string().as_bytes())?;
                barriers.push_back((next_barrier, waits));
                pinged.get_or_insert_with(Instant::now);
            }
            match pinged {
                Some(at) if at.elapsed() > self.timeout => {
                    return Err(RedisError::Unavailable(
                        "no answer to a PING on the subscription".into(),
                    ))
                }
                Some(_) => {}
                // Silence: a link cut without a word (a partition) looks like it.
                // Redis must answer a PING within the timeout.
                None if heard_at.elapsed() >= IDLE_PING => {
                    subscription.ping(IDLE)?;
                    pinged = Some(Instant::now());
                }
                None => {}
            }
            if let Err(e) = self.poll.poll(&mut events, Some(STOP_CHECK)) {
                if e.kind() != std::io::ErrorKind::Interrupted {
                    return Err(e.into());
                }
            }
        }
        Ok(())
    }

    /// After a (re)connection: every channel heard before gets its counter raised to
    /// what was heard, and what it was announced meanwhile.
    fn catch_up(
        &mut self,
        store: &mut RedisStore,
        hear: &mut impl FnMut(Heard),
    ) -> Result<(), RedisError> {
        let channels: Vec<Arc<str>> = self.last.keys().cloned().collect();
        for channel in channels {
            let last = self.last[&channel];
            store.raise(&channel, last)?;
            self.read_up_to(store, &channel, u64::MAX, hear)?;
        }
        Ok(())
    }

    /// An announcement: handed on if it is the channel's next, after what lies between
    /// if ids were skipped; dropped if it was handed on already.
    fn heard(
        &mut self,
        store: &mut RedisStore,
        announcement: Announcement<'_>,
        hear: &mut impl FnMut(Heard),
    ) -> Result<(), RedisError> {
        let channel: Arc<str> = match self.last.get_key_value(announcement.channel) {
            Some((name, _)) => name.clone(),
            None => {
                let name: Arc<str> = Arc::from(announcement.channel);
                self.last.insert(name.clone(), announcement.id - 1);
                name
            }
        };
        let last = self.last[&channel];
        if announcement.id <= last {
            return Ok(());
        }
        if announcement.id > last + 1 {
            self.read_up_to(store, &channel, announcement.id - 1, hear)?;
        }
        let data = match announcement.kind {
            Kind::Event => Some(announcement.data.to_vec()),
            Kind::Close => None,
        };
        self.hand_on(&channel, announcement.id, data, hear);
        Ok(())
    }

    /// Reads `channel`'s stream after its last id up to `to`, handing on each event and
    /// a gap for what the stream no longer holds.
    fn read_up_to(
        &mut self,
        store: &mut RedisStore,
        channel: &Arc<str>,
        to: u64,
        hear: &mut impl FnMut(Heard),
    ) -> Result<(), RedisError> {
        loop {
            let last = self.last[channel];
            if last >= to {
                return Ok(());
            }
            let events = store.read_after(channel, last, READ_BATCH)?;
            let Some(first) = events.first() else {
                if to != u64::MAX {
                    // Announced, and gone from the stream already.
                    self.hand_on_gap(channel, last + 1, to, hear);
                }
                return Ok(());
            };
            if first.id > last + 1 {
                self.hand_on_gap(channel, last + 1, (first.id - 1).min(to), hear);
            }
            let full = events.len() == READ_BATCH;
            for event in events.into_iter().take_while(|e| e.id <= to) {
                self.hand_on(channel, event.id, event.data, hear);
            }
            if !full {
                if to != u64::MAX && self.last[channel] < to {
                    let from = self.last[channel] + 1;
                    self.hand_on_gap(channel, from, to, hear);
                }
                return Ok(());
            }
        }
    }

    fn hand_on(
        &mut self,
        channel: &Arc<str>,
        id: u64,
        data: Option<Vec<u8>>,
        hear: &mut impl FnMut(Heard),
    ) {
        self.last.insert(channel.clone(), id);
        hear(Heard::Event {
            channel: channel.clone(),
            id,
            data,
        });
    }

    fn hand_on_gap(
        &mut self,
        channel: &Arc<str>,
        from: u64,
        to: u64,
        hear: &mut impl FnMut(Heard),
    ) {
        self.last.insert(channel.clone(), to);
        hear(Heard::Gap {
            channel: channel.clone(),
            from,
            to,
        });
    }
}

/// The number of a barrier's PING, from its PONG's message.
fn barrier_number(message: &[u8]) -> Option<u64> {
    std::str::from_utf8(message).ok()?.parse().ok()
}

/// Whether the stop channel has said stop (or its sender is gone).
fn stopped(stop: &Receiver<()>) -> bool {
    !matches!(stop.try_recv(), Err(TryRecvError::Empty))
}
