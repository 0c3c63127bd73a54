//! The admin port: publishing, closing, channel info, `/stats`, `/metrics`,
//! `/healthz`. Served by its own thread with its own `mio::Poll` and listener, never
//! by a subscriber loop, so a publisher gets in however loaded the subscriber port is.
//!
//! `store.rs` gives each event its id and knows which channels are closed;
//! `storing.rs` stores events before they are acknowledged; `routes.rs` answers
//! requests; this file is the loop and its connections.

mod routes;
mod store;
mod storing;

pub use store::{ChannelInfo, PublishError, Store};

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use log::{info, warn};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use slab::Slab;

use crate::admission::Admission;
use crate::bus::Bus;
use crate::config::Config;
use crate::http::chunked::{self, Chunked, ChunkedError};
use crate::http::date::DateCache;
use crate::http::{
    parse_head, BodyLength, HeadError, Parsed, Piece, RequestHead, Status, WriteQueue,
};
use crate::net::{self, ReadOutcome, ReserveFd};
use crate::stats::{bump, drop_one, Stats};
use crate::timer::{TimerKey, TimerWheel};

/// Token of the admin listener.
const LISTENER: Token = Token(usize::MAX - 1);
/// Token of the admin waker (shutdown).
pub const WAKER: Token = Token(usize::MAX - 2);

/// The answer to an admin connection over `--admin-max-conns`.
const REFUSAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

/// Input buffer capacity kept between requests; a larger one (a big publish) is freed.
const KEPT_INPUT: usize = 16 * 1024;

/// How soon accepting is tried again after running out of descriptors.
const ACCEPT_RETRY_MS: u64 = 50;

/// Where a request's body is: in the input after its head, or decoded from chunks.
enum Body {
    InInput(std::ops::Range<usize>),
    Decoded(Vec<u8>),
}

/// What the admin loop can be told (besides socket events).
#[derive(Debug)]
pub enum AdminMessage {
    Shutdown,
}

/// An admin-port connection.
struct AdminConn {
    socket: TcpStream,
    input: Vec<u8>,
    out: WriteQueue,
    /// When the current wait began (idle, head or body), ms.
    since_ms: u64,
    /// Waiting for the first byte of a request (keep-alive timeout), else for the rest.
    idle: bool,
    /// `100 Continue` already sent for the current request.
    continued: bool,
    closing: bool,
    read_closed: bool,
    /// The poll said the peer shut its side: read until the end is seen.
    peer_closing: bool,
    timer: Option<TimerKey>,
    /// When output last made progress, ms.
    last_write_ms: u64,
    /// The answer to the current request waits for the journal to store this request.
    awaiting: Option<u64>,
}

/// The admin loop, ready to run on its own thread.
pub struct Admin {
    poll: Poll,
    listener: TcpListener,
    inbox: Receiver<AdminMessage>,
    conns: Slab<AdminConn>,
    timers: TimerWheel,
    config: Arc<Config>,
    stats: Arc<Stats>,
    bus: Bus,
    /// The subscriber loops' admission, lowered when the admin port runs out of descriptors.
    admission: Arc<Admission>,
    store: Store,
    storing: storing::Storing,
    date: DateCache,
    start: Instant,
    now_ms: u64,
    scratch: Vec<u8>,
    /// The channel name of the request being answered, decoded (kept for its capacity).
    name: String,
    /// The request being answered is HEAD: answers leave out their body.
    head_only: bool,
    /// A descriptor held back so that one operator can still connect when the
    /// subscriber side has used every other one; see `accept_on_reserve`.
    reserve: ReserveFd,
    /// The connection that took the reserve descriptor, if any.
    on_reserve: Option<usize>,
    /// Whether running out of descriptors has been logged.
    warned_fds: bool,
    /// When to try accepting again: set when a connection could not be accepted for
    /// lack of descriptors (the listener will not signal it again by itself).
    retry_accept_ms: Option<u64>,
}

impl Admin {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        poll: Poll,
        mut listener: TcpListener,
        inbox: Receiver<AdminMessage>,
        config: Arc<Config>,
        stats: Arc<Stats>,
        bus: Bus,
        admission: Arc<Admission>,
        (store, journal): (Store, crate::storage::journal::Journal),
    ) -> std::io::Result<Admin> {
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        Ok(Admin {
            poll,
            listener,
            inbox,
            conns: Slab::new(),
            timers: TimerWheel::new(),
            store,
            storing: storing::Storing::new(journal),
            config,
            stats,
            bus,
            admission,
            date: DateCache::new(),
            start: Instant::now(),
            now_ms: 0,
            scratch: Vec::with_capacity(1024),
            name: String::new(),
            head_only: false,
            reserve: ReserveFd::new(),
            on_reserve: None,
            warned_fds: false,
            retry_accept_ms: None,
        })
    }

    /// Runs until told to shut down.
    pub fn run(mut self) {
        info!("admin: started");
        // A publish should not wait for busy subscriber loops to finish their slices:
        // with the shortest slice, one arriving while the loops are busy runs at once.
        if let Err(e) = crate::sched::request_slice(crate::sched::SHORTEST_SLICE) {
            log::debug!("admin: no short scheduler slice: {e}");
        }
        let mut events = Events::with_capacity(256);
        let mut expired = Vec::new();
        loop {
            self.end_turn();
            let next = [
                self.timers.next_deadline(),
                self.retry_accept_ms,
                Some(self.storing.journal.next_deadline_ms()),
            ]
            .into_iter()
            .flatten()
            .min();
            let timeout = next.map(|d| {
                Duration::from_millis(d.saturating_sub(self.start.elapsed().as_millis() as u64))
            });
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                log::error!("admin: poll failed: {e}");
                break;
            }
            self.now_ms = self.start.elapsed().as_millis() as u64;
            self.date.refresh();
            if self.inbox.try_recv().is_ok() {
                break;
            }
            self.take_journal_reports();
            if self.retry_accept_ms.is_some_and(|at| self.now_ms >= at) {
                self.accept();
            }
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept(),
                    WAKER => {}
                    Token(key) => {
                        if event.is_read_closed() || event.is_error() {
                            if let Some(conn) = self.conns.get_mut(key) {
                                conn.peer_closing = true;
                            }
                        }
                        self.drive(key)
                    }
                }
            }
            self.timers.expire(self.now_ms, &mut expired);
            for key in expired.drain(..) {
                if let Some(conn) = self.conns.get_mut(key) {
                    conn.timer = None;
                    self.on_timer(key);
                }
            }
        }
        self.stop_journal();
        info!("admin: stopped");
    }

    fn accept(&mut self) {
        self.retry_accept_ms = None;
        if self.on_reserve.is_none() {
            // A subscriber loop may have taken the descriptor we gave back.
            self.reserve.reacquire();
        }
        loop {
            match self.listener.accept() {
                Ok((socket, _)) => {
                    self.admit(socket);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) if net::is_fd_exhaustion(&e) => {
                    if !self.accept_on_reserve() {
                        self.retry_accept_ms = Some(self.now_ms + ACCEPT_RETRY_MS);
                        return;
                    }
                }
                Err(_) => {}
            }
        }
    }

    /// Out of descriptors: gives the reserve one to the next admin connection, which is
    /// then served like any other (the admin port must answer however full the server
    /// is). The reserve is taken back when that connection closes. Returns whether a
    /// connection was accepted.
    fn accept_on_reserve(&mut self) -> bool {
        if let Some(limit) = self.admission.lower_on_exhaustion() {
            warn!("admin: out of file descriptors; subscriber connections limited to {limit} from now on");
        }
        if !self.warned_fds {
            warn!("admin: out of file descriptors; serving one admin connection on the reserve descriptor");
            self.warned_fds = true;
        }
        if !self.reserve.release() {
            return false;
        }
        match self.listener.accept() {
            Ok((socket, _)) => {
                self.on_reserve = self.admit(socket);
                if self.on_reserve.is_none() {
                    self.reserve.reacquire();
                }
                true
            }
            Err(_) => {
                self.reserve.reacquire();
                false
            }
        }
    }

    /// Takes an accepted connection; returns its key, or `None` if it was refused.
    fn admit(&mut self, mut socket: TcpStream) -> Option<usize> {
        if self.conns.len() >= self.config.admin_max_conns {
            bump(&self.stats.admin.conns_refused);
            net::refuse(socket, REFUSAL);
            return None;
        }
        let _ = socket.set_nodelay(true);
        let entry = self.conns.vacant_entry();
        let key = entry.key();
        self.poll
            .registry()
            .register(
                &mut socket,
                Token(key),
                Interest::READABLE | Interest::WRITABLE,
            )
            .ok()?;
        entry.insert(AdminConn {
            socket,
            input: Vec::new(),
            out: WriteQueue::default(),
            since_ms: self.now_ms,
            idle: false,
            continued: false,
            closing: false,
            read_closed: false,
            peer_closing: false,
            timer: None,
            last_write_ms: self.now_ms,
            awaiting: None,
        });
        bump(&self.stats.admin.connections);
        self.schedule(key);
        Some(key)
    }

    /// Largest input kept: a head and the largest body (chunked framing included).
    fn input_limit(&self) -> usize {
        self.config.max_head + self.config.max_message * 2 + 4096
    }

    fn drive(&mut self, key: usize) {
        let limit = self.input_limit();
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if !conn.read_closed && !conn.closing {
            // A short read empties the socket (a new edge comes with new bytes), so the
            // read that would only say "would block" is left out, unless the peer is
            // closing and its end must be seen.
            let to_the_end = conn.peer_closing;
            match net::read_into(&mut conn.socket, &mut conn.input, limit, to_the_end) {
                Ok(ReadOutcome::Closed(_)) => conn.read_closed = true,
                Ok(_) => {}
                Err(_) => return self.close(key),
            }
        }
        self.serve(key);
    }

    /// Answers the complete requests already read (in order, up to one that waits for
    /// storage), writes what it can, and closes or schedules the connection.
    fn serve(&mut self, key: usize) {
        while !self.conns[key].closing && self.answer_one(key) {}
        let conn = &mut self.conns[key];
        match conn.out.flush(&mut conn.socket) {
            Ok(n) if n > 0 => conn.last_write_ms = self.now_ms,
            Ok(_) => {}
            Err(_) => return self.close(key),
        }
        let awaiting = conn.awaiting.is_some();
        if conn.out.is_empty()
            && !awaiting
            && (conn.closing || (conn.read_closed && conn.input.is_empty()))
        {
            return self.close(key);
        }
        if conn.read_closed && !conn.closing && conn.out.is_empty() && !awaiting {
            // The peer stopped sending in the middle of a request.
            return self.close(key);
        }
        self.schedule(key);
    }

    /// Answers the request at the start of the input if it is complete. Returns whether
    /// one was answered (so the next may be looked at).
    fn answer_one(&mut self, key: usize) -> bool {
        let conn = &mut self.conns[key];
        if conn.input.is_empty() || conn.awaiting.is_some() {
            return false;
        }
        let head = match parse_head(&conn.input, self.config.max_head) {
            Ok(Parsed::Partial) => {
                if conn.idle {
                    conn.idle = false;
                    conn.since_ms = self.now_ms;
                }
                return false;
            }
            Ok(Parsed::Complete(head)) => head,
            Err(error) => {
                let (status, message): (Status, &[u8]) = match error {
                    HeadError::TooLarge => {
                        bump(&self.stats.admin.heads_too_large);
                        (Status::HeadersTooLarge, b"request head too large\n")
                    }
                    HeadError::UnknownCoding => {
                        bump(&self.stats.admin.bad_requests);
                        (Status::NotImplemented, b"unsupported transfer coding\n")
                    }
                    _ => {
                        bump(&self.stats.admin.bad_requests);
                        (Status::BadRequest, b"malformed request\n")
                    }
                };
                self.reply(key, status, b"text/plain; charset=utf-8", message, false);
                return false;
            }
        };
        if conn.idle {
            conn.idle = false;
            conn.since_ms = self.now_ms;
        }
        let Some((body, consumed)) = self.take_body(key, &head) else {
            return false;
        };
        bump(&self.stats.admin.requests);
        let keep_alive = head.keep_alive;
        self.head_only = head.method == crate::http::Method::Head;
        // The request is answered from the input itself (nothing reads into it
        // meanwhile), so its target and body are not copied.
        let input = std::mem::take(&mut self.conns[key].input);
        let body_bytes = match &body {
            Body::InInput(range) => &input[range.clone()],
            Body::Decoded(decoded) => decoded.as_slice(),
        };
        self.route(key, &head, &input, body_bytes, keep_alive);
        self.head_only = false;
        let conn = &mut self.conns[key];
        conn.input = input;
        conn.input.drain(..consumed.min(conn.input.len()));
        if conn.input.is_empty() && conn.input.capacity() > KEPT_INPUT {
            conn.input = Vec::new();
        }
        conn.idle = true;
        conn.continued = false;
        conn.since_ms = self.now_ms;
        true
    }

    /// The request's body and the bytes of input it took with its head, once it has
    /// all arrived; answers (413, 400) and returns `None` when it never will.
    fn take_body(&mut self, key: usize, head: &RequestHead) -> Option<(Body, usize)> {
        let max = self.config.max_message;
        let conn = &mut self.conns[key];
        let received = &conn.input[head.len..];
        let waiting = match head.body {
            BodyLength::None => return Some((Body::InInput(head.len..head.len), head.len)),
            BodyLength::Length(n) if n > max as u64 => {
                self.refuse_too_large(key);
                return None;
            }
            BodyLength::Length(n) if received.len() as u64 >= n => {
                let end = head.len + n as usize;
                return Some((Body::InInput(head.len..end), end));
            }
            BodyLength::Length(_) => true,
            BodyLength::Chunked => match chunked::decode(received, max) {
                Ok(Chunked::Complete { body, consumed }) => {
                    return Some((Body::Decoded(body), head.len + consumed))
                }
                Ok(Chunked::Partial) => true,
                Err(ChunkedError::TooLarge) => {
                    self.refuse_too_large(key);
                    return None;
                }
                Err(ChunkedError::Malformed) => {
                    bump(&self.stats.admin.bad_requests);
                    self.reply(
                        key,
                        Status::BadRequest,
                        b"text/plain; charset=utf-8",
                        b"malformed chunked body\n",
                        false,
                    );
                    return None;
                }
            },
        };
        if waiting && head.expect_continue && !conn.continued {
            conn.continued = true;
            let _ = conn.out.write_through(
                &mut conn.socket,
                &[Piece::Copy(b"HTTP/1.1 100 Continue\r\n\r\n")],
            );
        }
        None
    }

    /// Answers a body over `--max-message` with 413 and closes (the rest of the body is
    /// not read).
    fn refuse_too_large(&mut self, key: usize) {
        bump(&self.stats.admin.messages_too_large);
        let message = b"body over --max-message\n";
        self.reply(
            key,
            Status::ContentTooLarge,
            b"text/plain; charset=utf-8",
            message,
            false,
        );
    }

    /// Writes a whole answer (its head alone to a HEAD request); closes after it
    /// unless `keep_alive`.
    fn reply(
        &mut self,
        key: usize,
        status: Status,
        content_type: &[u8],
        body: &[u8],
        keep_alive: bool,
    ) {
        use crate::http::response;
        let conn = &mut self.conns[key];
        self.scratch.clear();
        response::start(&mut self.scratch, status, self.date.get());
        response::header(&mut self.scratch, b"Content-Type", content_type);
        response::content_length(&mut self.scratch, body.len());
        response::header(&mut self.scratch, b"Cache-Control", b"no-store");
        if !keep_alive {
            response::header(&mut self.scratch, b"Connection", b"close");
            conn.closing = true;
        }
        response::end(&mut self.scratch);
        conn.last_write_ms = self.now_ms;
        let body = if self.head_only { &[][..] } else { body };
        if conn
            .out
            .write_through(
                &mut conn.socket,
                &[Piece::Copy(&self.scratch), Piece::Copy(body)],
            )
            .is_err()
        {
            conn.closing = true;
            conn.out.clear();
        }
    }

    fn close(&mut self, key: usize) {
        let Some(mut conn) = self.conns.try_remove(key) else {
            return;
        };
        if let Some(timer) = conn.timer.take() {
            self.timers.cancel(timer);
        }
        let _ = self.poll.registry().deregister(&mut conn.socket);
        drop(conn);
        drop_one(&self.stats.admin.connections);
        if self.on_reserve == Some(key) {
            // Its descriptor is closed now: hold it back again for the next time.
            self.on_reserve = None;
            self.reserve.reacquire();
        }
    }

    /// The connection's next deadline: keep-alive while idle, the header timeout while
    /// a head arrives, the write timeout while a body arrives or output waits.
    fn deadline(&self, key: usize) -> u64 {
        let conn = &self.conns[key];
        let config = &self.config;
        let wait = |d: Duration, from: u64| from + d.as_millis() as u64;
        if !conn.out.is_empty() {
            wait(config.write_timeout, conn.last_write_ms)
        } else if conn.idle {
            wait(config.keepalive_timeout, conn.since_ms)
        } else if matches!(parse_head(&conn.input, usize::MAX), Ok(Parsed::Complete(_))) {
            wait(config.write_timeout, conn.since_ms)
        } else {
            wait(config.header_timeout, conn.since_ms)
        }
    }

    fn schedule(&mut self, key: usize) {
        let deadline = self.deadline(key);
        let conn = &mut self.conns[key];
        if let Some(timer) = conn.timer.take() {
            self.timers.cancel(timer);
        }
        conn.timer = Some(self.timers.insert(deadline, key));
    }

    fn on_timer(&mut self, key: usize) {
        if self.now_ms < self.deadline(key) || self.conns[key].awaiting.is_some() {
            // Storage answers every request; the connection waits for it.
            return self.schedule(key);
        }
        let conn = &self.conns[key];
        if !conn.idle && conn.out.is_empty() && !conn.input.is_empty() {
            bump(&self.stats.admin.header_timeouts);
            self.reply(
                key,
                Status::RequestTimeout,
                b"text/plain; charset=utf-8",
                b"request not complete in time\n",
                false,
            );
            let conn = &mut self.conns[key];
            let _ = conn.out.flush(&mut conn.socket);
        }
        self.close(key);
    }
}
