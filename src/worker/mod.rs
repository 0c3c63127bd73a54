//! One subscriber event loop: its `mio::Poll`, its listener on the shared subscriber
//! port (SO_REUSEPORT), a `Slab` of connections, a timer wheel, its channel index and
//! its scratch buffers. It shares nothing with other threads but its inbox (`bus.rs`)
//! and its counters (`stats.rs`).
//!
//! The loop is a short dispatcher: poll; drain the inbox (deliver events); drive each
//! ready connection (`drive.rs`); accept (`accept.rs`); expire timers; repeat.
//! Requests are answered in `respond.rs` and `subscribe.rs`.

mod accept;
mod conn;
mod drive;
mod respond;
mod subscribe;

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use log::{debug, info};
use mio::net::TcpListener;
use mio::{Events, Poll, Token};
use slab::Slab;

use crate::admission::Admission;
use crate::bus::{LoopInbox, LoopMessage};
use crate::channel::ChannelIndex;
use crate::config::Config;
use crate::http::date::DateCache;
use crate::net::ReserveFd;
use crate::stats::Stats;
use crate::storage::catchup::FetchRequest;
use crate::timer::TimerWheel;

use conn::Conn;

/// Token of the listener.
pub const LISTENER: Token = Token(usize::MAX - 1);
/// Token of the waker that the bus uses.
pub const WAKER: Token = Token(usize::MAX - 2);

/// How long shutdown waits for answers and stream ends to be flushed before it closes
/// what is left: well inside the 2 s in which the process must exit.
const SHUTDOWN_FLUSH_MS: u64 = 1_200;

/// Readiness events taken per poll.
const EVENTS_PER_POLL: usize = 1024;

/// What every part of a loop uses besides the connections themselves (kept apart so a
/// connection and the environment can be borrowed at once).
pub(crate) struct Env {
    /// This loop's number, for logs and counters.
    pub number: usize,
    pub config: Arc<Config>,
    pub stats: Arc<Stats>,
    /// Subscriber connections open over every loop, and their limit.
    pub admission: Arc<Admission>,
    pub index: ChannelIndex,
    pub timers: TimerWheel,
    /// Loop time: ms since `start`, read once per turn.
    pub now_ms: u64,
    start: Instant,
    pub date: DateCache,
    /// Scratch for response heads and per-connection frame heads; cleared before use.
    pub scratch: Vec<u8>,
    /// Frames a stream catches up on, gathered to be written with one `writev`;
    /// cleared before use.
    pub batch: Vec<u8>,
    /// Scratch list of connection keys (delivery, expired timers).
    pub keys: Vec<usize>,
    /// Connections to drive again next turn (they hit the per-turn bound).
    pub again: Vec<usize>,
    /// Shutting down: no new requests are read; answers close their connections.
    pub shutting_down: bool,
    /// Where to ask for events older than the index's histories (durable storage only).
    pub catchup: Option<Sender<FetchRequest>>,
    /// Serial of the last fetch asked for.
    pub fetch_serial: u64,
}

impl Env {
    fn tick(&mut self) {
        self.now_ms = self.start.elapsed().as_millis() as u64;
        self.date.refresh();
    }

    /// The loop's counters.
    pub fn loop_stats(&self) -> &crate::stats::LoopStats {
        &self.stats.loops[self.number]
    }
}

/// A subscriber loop, ready to run on its own thread.
pub struct Worker {
    poll: Poll,
    listener: Option<TcpListener>,
    inbox: LoopInbox,
    conns: Slab<Conn>,
    env: Env,
    reserve: ReserveFd,
    /// More connections may be waiting in the backlog.
    accept_pending: bool,
    /// Accepting is paused until then (out of descriptors).
    accept_paused_until: u64,
    warned_full: bool,
    warned_fds: bool,
    /// When shutdown gives up flushing.
    shutdown_deadline_ms: u64,
    /// Messages taken from the inbox, reused from turn to turn.
    messages: Vec<LoopMessage>,
}

impl Worker {
    /// A loop over `poll` (whose registry has the bus's waker as `WAKER`) serving
    /// `listener`, with the channels in `index`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        number: usize,
        poll: Poll,
        mut listener: TcpListener,
        inbox: LoopInbox,
        index: ChannelIndex,
        config: Arc<Config>,
        stats: Arc<Stats>,
        admission: Arc<Admission>,
    ) -> std::io::Result<Worker> {
        poll.registry()
            .register(&mut listener, LISTENER, mio::Interest::READABLE)?;
        Ok(Worker {
            poll,
            listener: Some(listener),
            inbox,
            conns: Slab::with_capacity(1024),
            env: Env {
                number,
                index,
                config,
                stats,
                admission,
                timers: TimerWheel::new(),
                now_ms: 0,
                start: Instant::now(),
                date: DateCache::new(),
                scratch: Vec::with_capacity(4096),
                batch: Vec::new(),
                keys: Vec::new(),
                again: Vec::new(),
                shutting_down: false,
                catchup: None,
                fetch_serial: 0,
            },
            reserve: ReserveFd::new(),
            accept_pending: false,
            accept_paused_until: 0,
            warned_full: false,
            warned_fds: false,
            shutdown_deadline_ms: u64::MAX,
            messages: Vec::new(),
        })
    }

    /// Sends requests for events older than the loop's histories to `catchup`.
    pub fn set_catchup(&mut self, catchup: Sender<FetchRequest>) {
        self.env.catchup = Some(catchup);
    }

    /// Runs until shut down through the bus.
    pub fn run(mut self) {
        info!("worker {}: started", self.env.number);
        let mut events = Events::with_capacity(EVENTS_PER_POLL);
        loop {
            let timeout = self.poll_timeout();
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                log::error!("worker {}: poll failed: {e}", self.env.number);
                break;
            }
            self.env.tick();
            // Events first: a subscriber that resumes on this loop with a cursor it got
            // from another loop must find that event here. The admin thread queues each
            // event to every loop before any loop can deliver it, and a resuming client
            // needs a network round trip, so the event is in this inbox by now.
            self.drain_inbox();
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept_pending = true,
                    WAKER => {}
                    Token(key) => {
                        if event.is_read_closed() {
                            if let Some(conn) = self.conns.get_mut(key) {
                                conn.peer_closing = true;
                            }
                        }
                        self.drive(key)
                    }
                }
            }
            if self.accept_pending
                && self.env.now_ms >= self.accept_paused_until
                && !self.env.shutting_down
            {
                self.accept();
            }
            self.expire_timers();
            for key in std::mem::take(&mut self.env.again) {
                self.drive(key);
            }
            if self.env.shutting_down
                && (self.conns.is_empty() || self.env.now_ms >= self.shutdown_deadline_ms)
            {
                break;
            }
        }
        let left = self.conns.len();
        for key in self.conns.iter().map(|(key, _)| key).collect::<Vec<_>>() {
            self.close(key);
        }
        info!(
            "worker {}: stopped ({left} connections closed at exit)",
            self.env.number
        );
    }

    fn poll_timeout(&self) -> Option<Duration> {
        if !self.env.again.is_empty()
            || (self.accept_pending && self.env.now_ms >= self.accept_paused_until)
            || self.inbox.has_messages()
        {
            return Some(Duration::ZERO);
        }
        let now = self.env.start.elapsed().as_millis() as u64;
        let mut deadline = self.env.timers.next_deadline();
        if self.accept_pending {
            deadline = Some(deadline.map_or(self.accept_paused_until, |d| {
                d.min(self.accept_paused_until)
            }));
        }
        if self.env.shutting_down {
            deadline = Some(deadline.map_or(self.shutdown_deadline_ms, |d| {
                d.min(self.shutdown_deadline_ms)
            }));
        }
        deadline.map(|d| Duration::from_millis(d.saturating_sub(now)))
    }

    fn drain_inbox(&mut self) {
        let mut messages = std::mem::take(&mut self.messages);
        self.inbox.drain(|message| messages.push(message));
        for message in messages.drain(..) {
            match message {
                LoopMessage::Event(event) => self.deliver_event(event),
                LoopMessage::CountSubscribers { channel, reply } => {
                    let _ = reply.send(self.env.index.subscriber_count(&channel));
                }
                LoopMessage::Retained { channel, first_id } => {
                    self.env.index.set_stored_first(&channel, first_id)
                }
                LoopMessage::Fetched(fetched) => self.on_fetched(fetched),
                LoopMessage::Shutdown => self.begin_shutdown(),
            }
        }
        self.messages = messages;
    }

    fn expire_timers(&mut self) {
        let mut expired = std::mem::take(&mut self.env.keys);
        expired.clear();
        self.env.timers.expire(self.env.now_ms, &mut expired);
        for &key in &expired {
            if let Some(conn) = self.conns.get_mut(key) {
                conn.timer = None;
                self.on_timer(key);
            }
        }
        expired.clear();
        self.env.keys = expired;
    }

    /// Stops accepting, answers every held poll, ends every stream, closes idle
    /// connections; the loop then exits once everything is flushed (or at the deadline).
    fn begin_shutdown(&mut self) {
        if self.env.shutting_down {
            return;
        }
        debug!(
            "worker {}: shutting down with {} connections",
            self.env.number,
            self.conns.len()
        );
        self.env.shutting_down = true;
        self.shutdown_deadline_ms = self.env.now_ms + SHUTDOWN_FLUSH_MS;
        if let Some(mut listener) = self.listener.take() {
            let _ = self.poll.registry().deregister(&mut listener);
        }
        let keys: Vec<usize> = self.conns.iter().map(|(key, _)| key).collect();
        for key in keys {
            let Some(conn) = self.conns.get_mut(key) else {
                continue;
            };
            conn.keep_alive = false;
            match conn.state {
                conn::State::Held { .. } => self.answer_longpoll(key),
                conn::State::Streaming => self.end_stream(key),
                conn::State::ReadingHead { .. } if conn.input.is_empty() && conn.out.is_empty() => {
                    self.close(key);
                    continue;
                }
                _ => {}
            }
            self.drive(key);
        }
    }
}
