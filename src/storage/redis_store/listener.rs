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
//! - **The subscription lost** (Redis restarted, unreachable, or it closed us): the
//!   listener reconnects with a growing pause, subscribes again, raises the counter of
//!   every channel it has heard to at least what it heard (a Redis that lost data must
//!   not give those ids again) and reads from each stream what was announced while it
//!   was away.
//! - **What is not an announcement** is handed on as refused, with the reason.
//!
//! It runs on a thread of its own (`run` returns when its stop channel says so, or is
//! dropped) and talks to the rest only through `hear`. A channel it has not heard of starts at the first id it
//! hears: what came before is for the catch-up reader to serve.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, TryRecvError};

use super::{keys, Announcement, AnnouncementError, Kind, RedisError, RedisStore};

/// After this long without an announcement, the subscription is checked with a PING
/// (answered within the timeout, or the subscription is made again).
const IDLE_PING: Duration = Duration::from_secs(2);
/// How long a wait for an announcement lasts before the stop channel is looked at.
const STOP_CHECK: Duration = Duration::from_millis(200);
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
    /// The subscription broke; the listener is reconnecting.
    Disconnected(String),
}

/// The listener's state: where each channel it has heard stands.
pub struct Listener {
    url: String,
    timeout: Duration,
    /// The last id handed on, per channel.
    last: HashMap<Arc<str>, u64>,
}

impl Listener {
    /// A listener for the Redis at `url`, each call to it bounded by `timeout`.
    pub fn new(url: &str, timeout: Duration) -> Listener {
        Listener {
            url: url.to_string(),
            timeout,
            last: HashMap::new(),
        }
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
        let client = redis::Client::open(self.url.as_str())
            .map_err(|e| RedisError::Refused(e.to_string()))?;
        let mut connection = client.get_connection_with_timeout(self.timeout)?;
        let mut store = RedisStore::connect(&self.url, self.timeout, 1)?;
        let mut pubsub = connection.as_pubsub();
        pubsub.subscribe(keys::ANNOUNCEMENTS)?;
        // Subscribed first, then caught up: an event announced in between is both
        // read and heard, and handed on once.
        self.catch_up(&mut store, hear)?;
        hear(Heard::Connected);
        pubsub.set_read_timeout(Some(STOP_CHECK))?;
        let mut heard_at = Instant::now();
        while !stopped(stop) {
            let message = match pubsub.get_message() {
                Ok(message) => message,
                Err(e) if e.is_timeout() => {
                    if heard_at.elapsed() >= IDLE_PING {
                        // Silence: a link cut without a word (a partition) looks
                        // like it. Redis must answer a PING within the timeout.
                        pubsub.set_read_timeout(Some(self.timeout))?;
                        pubsub.ping::<redis::Value>()?;
                        pubsub.set_read_timeout(Some(STOP_CHECK))?;
                        heard_at = Instant::now();
                    }
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            heard_at = Instant::now();
            match Announcement::parse(message.get_payload_bytes()) {
                Ok(announcement) => self.heard(&mut store, announcement, hear)?,
                Err(why) => hear(Heard::Refused(why)),
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

/// Whether the stop channel has said stop (or its sender is gone).
fn stopped(stop: &Receiver<()>) -> bool {
    !matches!(stop.try_recv(), Err(TryRecvError::Empty))
}
