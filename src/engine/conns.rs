//! A loop's connections and what moves them: reading what arrived, answering complete
//! requests in order, flushing, feeding streams, closing what is finished; each
//! connection's one timer; and shutdown. Generic over the port's `Application`, which
//! is called for what only it knows. Touches no `Poll` (the loop registers sockets).

use std::sync::Arc;
use std::time::Instant;

use log::trace;
use slab::Slab;

use super::http1::{BodyAt, Expiry, Next};
use super::{Application, Connection, HeadVerdict, Limits, Phase, Request};
use crate::admission::Admission;
use crate::http::date::DateCache;
use crate::http::RequestHead;
use crate::net::{ReadChunk, ReadOutcome, ReserveFd};
use crate::stats::{bump, drop_one};
use crate::timer::TimerWheel;

/// Rounds of read/answer/write per connection per turn; a connection with more to do
/// (a client pipelining a long burst) continues next turn, after the others.
const DRIVE_ROUNDS: usize = 8;

/// What every connection of a loop shares: its clock, its `Date`, a scratch buffer,
/// and whether it is shutting down.
#[derive(Debug)]
pub struct Cx {
    /// Loop time: ms since the loop started, read once per turn.
    pub now_ms: u64,
    start: Instant,
    /// The `Date` header's value, refreshed once per turn.
    pub date: DateCache,
    /// Scratch for answer heads and per-connection frame heads; cleared before use.
    pub scratch: Vec<u8>,
    /// What every read of the loop goes through.
    pub read_chunk: ReadChunk,
    /// Shutting down: no new request is read, and answers close their connections.
    pub shutting_down: bool,
}

impl Cx {
    fn new() -> Cx {
        Cx {
            now_ms: 0,
            start: Instant::now(),
            date: DateCache::new(),
            scratch: Vec::with_capacity(4096),
            read_chunk: ReadChunk::new(),
            shutting_down: false,
        }
    }

    /// Reads the clock for a new turn.
    pub fn tick(&mut self) {
        self.now_ms = self.elapsed_ms();
        self.date.refresh();
    }

    /// Loop time now (not the turn's).
    pub fn elapsed_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }
}

/// The connections of one loop.
#[derive(Debug)]
pub struct Conns<S> {
    slab: Slab<Connection<S>>,
    timers: TimerWheel,
    pub cx: Cx,
    limits: Limits,
    /// The port's count and limit of connections, left when one closes.
    pub(super) admission: Arc<Admission>,
    /// A descriptor held back for when the process runs out (`accept.rs`), and
    /// whether a connection holds it now.
    pub(super) reserve: ReserveFd,
    pub(super) reserve_lent: bool,
    /// Connections to drive again next turn (they hit the per-turn bound).
    again: Vec<usize>,
    /// Scratch for expired timers.
    expired: Vec<usize>,
}

impl<S> Conns<S> {
    pub(super) fn new(limits: Limits, admission: Arc<Admission>) -> Conns<S> {
        Conns {
            slab: Slab::with_capacity(1024),
            timers: TimerWheel::new(),
            cx: Cx::new(),
            limits,
            admission,
            reserve: ReserveFd::new(),
            reserve_lent: false,
            again: Vec::new(),
            expired: Vec::new(),
        }
    }

    /// The port's limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Connections open.
    pub fn len(&self) -> usize {
        self.slab.len()
    }

    /// Whether none is open.
    pub fn is_empty(&self) -> bool {
        self.slab.is_empty()
    }

    /// The connection behind `key`, if it is open.
    pub fn get_mut(&mut self, key: usize) -> Option<&mut Connection<S>> {
        self.slab.get_mut(key)
    }

    /// The shared context and the connection behind `key`, at once.
    pub fn split(&mut self, key: usize) -> Option<(&mut Cx, &mut Connection<S>)> {
        let conn = self.slab.get_mut(key)?;
        Some((&mut self.cx, conn))
    }

    /// Keys of every open connection.
    pub fn keys(&self) -> Vec<usize> {
        self.slab.iter().map(|(key, _)| key).collect()
    }

    pub(super) fn insert(&mut self, conn: Connection<S>) -> usize {
        self.slab.insert(conn)
    }

    /// Whether some connection hit its per-turn bound and waits to be driven again.
    pub(super) fn has_again(&self) -> bool {
        !self.again.is_empty()
    }

    /// The earliest timer's deadline.
    pub(super) fn next_deadline(&self) -> Option<u64> {
        self.timers.next_deadline()
    }

    /// The poll reported the connection: it may have input, and if `closing`, its
    /// peer has shut its side (read on until its end is seen).
    pub(super) fn ready(&mut self, key: usize, readable: bool, closing: bool) {
        if let Some(conn) = self.slab.get_mut(key) {
            conn.readable |= readable || closing;
            conn.http.peer_closing |= closing;
        }
    }

    /// Does everything a connection can do now, then arms its timer.
    pub fn drive<A: Application<Conn = S>>(&mut self, app: &mut A, key: usize) {
        let limits = self.limits;
        for _ in 0..DRIVE_ROUNDS {
            let Some(conn) = self.slab.get_mut(key) else {
                return;
            };
            let mut progress = false;
            let http = &mut conn.http;
            if conn.readable && http.wants_input(limits.max_input()) {
                let handshaking = conn.io.is_handshaking();
                let read = conn.io.read_into(
                    &mut http.input,
                    limits.max_input(),
                    http.peer_closing,
                    &mut self.cx.read_chunk,
                );
                if handshaking {
                    let stats = app.conn_stats();
                    match (&read, conn.io.is_handshaking()) {
                        (Err(_), _) => bump(&stats.tls_handshake_failures),
                        (Ok(_), false) => bump(&stats.tls_handshakes),
                        (Ok(_), true) => {}
                    }
                }
                match read {
                    Ok(ReadOutcome::Data(n)) => progress |= n > 0,
                    Ok(ReadOutcome::Drained(n)) => {
                        conn.readable = false;
                        progress |= n > 0;
                    }
                    Ok(ReadOutcome::Closed(_)) => {
                        http.read_closed = true;
                        progress = true;
                    }
                    Err(_) => http.broken = true,
                }
            }
            if http.broken || (http.read_closed && http.is_held() && limits.abandon_on_peer_close) {
                // The peer left (or its socket failed): nothing more to say to it.
                self.close(app, key);
                return;
            }
            if http.reads_requests() && !self.cx.shutting_down {
                progress |= self.answer_requests(app, key);
            }
            let conn = &mut self.slab[key];
            if conn.http.phase == Phase::WebSocket {
                progress |= self.read_messages(app, key);
            }
            let conn = &mut self.slab[key];
            match conn.io.flush_backlog() {
                Ok(true) => {
                    conn.http.last_progress_ms = self.cx.now_ms;
                    progress = true;
                }
                Ok(false) => {}
                Err(_) => conn.http.broken = true,
            }
            progress |= conn.http.flush(&mut conn.io, self.cx.now_ms);
            if conn.http.streams() && conn.http.out.pending() < limits.max_pending / 2 {
                progress |= app.feed(&mut self.cx, key, conn);
            }
            if conn.http.is_finished(conn.io.has_backlog()) {
                self.close(app, key);
                return;
            }
            if !progress {
                self.schedule(app, key);
                return;
            }
        }
        self.again.push(key);
        self.schedule(app, key);
    }

    /// Answers the complete requests in the input, in order, while the connection
    /// reads requests. Returns whether it did anything.
    fn answer_requests<A: Application<Conn = S>>(&mut self, app: &mut A, key: usize) -> bool {
        let limits = self.limits;
        let cx = &mut self.cx;
        let conn = &mut self.slab[key];
        let mut answered = false;
        loop {
            let mut next = conn.http.next(&mut conn.io, cx.now_ms, &limits);
            if let Next::Head(head) = next {
                answered = true;
                bump(&app.conn_stats().requests);
                if cx.shutting_down {
                    conn.http.keep_alive = false;
                }
                let input = std::mem::take(&mut conn.http.input);
                let verdict = app.on_head(cx, conn, &head, &input);
                conn.http.input = input;
                if verdict == HeadVerdict::Answered {
                    // Its body (if any) is never read: nothing after it can be told
                    // apart from it.
                    conn.http.phase = Phase::Closing;
                    break;
                }
                next = conn.http.body(&mut conn.io, head, &limits);
            }
            match next {
                Next::Wait | Next::Head(_) => break,
                Next::Refuse(refusal) => {
                    bump(refusal.counter(app.conn_stats()));
                    trace!("{}: conn {key}: refused: {refusal:?}", app.name());
                    conn.http.refuse(&mut conn.io, cx, refusal);
                    answered = true;
                    break;
                }
                Next::Request {
                    head,
                    body,
                    consumed,
                } => {
                    dispatch(app, cx, key, conn, &head, &body, consumed);
                    answered = true;
                    if !conn.http.reads_requests() {
                        break;
                    }
                }
            }
        }
        let input = &mut conn.http.input;
        if input.is_empty() && input.capacity() > limits.kept_input {
            // A held subscriber keeps no read buffer.
            *input = Vec::new();
        }
        answered
    }

    /// Hands a WebSocket's input to the application while its output is not backed
    /// up (a client that sends faster than it reads waits, as a pipelining one does).
    /// Returns whether the application did anything.
    fn read_messages<A: Application<Conn = S>>(&mut self, app: &mut A, key: usize) -> bool {
        let limits = self.limits;
        let conn = &mut self.slab[key];
        if conn.http.input.is_empty() || conn.http.out.pending() >= limits.max_pending / 2 {
            return false;
        }
        let progress = app.on_input(&mut self.cx, key, conn);
        let input = &mut conn.http.input;
        if input.is_empty() && input.capacity() > limits.kept_input {
            // A held WebSocket keeps no read buffer.
            *input = Vec::new();
        }
        progress
    }

    /// Closes a connection now: the application lets go of it, then its timer, its
    /// descriptor and its place in the counts go.
    pub fn close<A: Application<Conn = S>>(&mut self, app: &mut A, key: usize) {
        let Some(mut conn) = self.slab.try_remove(key) else {
            return;
        };
        if let Some(timer) = conn.timer.take() {
            self.timers.cancel(timer);
        }
        app.on_close(key, &mut conn);
        if !conn.http.broken {
            conn.io.close_cleanly();
        }
        let on_reserve = conn.on_reserve;
        // No deregister: closing the socket (when `conn` drops) takes it out of the
        // epoll set, and one `epoll_ctl` per connection is worth saving. Its token may
        // still come back in this turn's events; `drive` ignores keys that are gone, and
        // a key reused meanwhile only gets a spurious readiness (a read that finds nothing).
        drop(conn);
        if on_reserve {
            // Its descriptor is free again: hold it back for the next time.
            self.reserve_lent = false;
            self.reserve.reacquire();
        }
        drop_one(&app.conn_stats().connections);
        self.admission.leave();
        trace!("{}: conn {key}: closed", app.name());
    }

    /// Arms the connection's timer for its next deadline. A timer already due earlier
    /// is left alone (it re-arms when it fires), so a busy stream does not touch the
    /// wheel per frame.
    pub fn schedule<A: Application<Conn = S>>(&mut self, app: &A, key: usize) {
        let Some(conn) = self.slab.get_mut(key) else {
            return;
        };
        let application = if conn.http.is_held() {
            app.deadline(conn)
        } else {
            None
        };
        let Some(deadline) = conn
            .http
            .deadline(&self.limits, application, conn.io.has_backlog())
        else {
            return;
        };
        match conn.timer {
            Some(_) if conn.timer_at <= deadline => return,
            Some(timer) => self.timers.cancel(timer),
            None => {}
        }
        // Loop time is floored to the millisecond when it is read, so a deadline made
        // from it may lie up to a millisecond before the real one: the timer fires a
        // millisecond later, never early (a 300 ms poll timeout answered at 299.9 ms
        // was seen in a test).
        conn.timer = Some(self.timers.insert(deadline.saturating_add(1), key));
        conn.timer_at = deadline;
    }

    /// Acts on every timer due by now.
    pub(super) fn expire<A: Application<Conn = S>>(&mut self, app: &mut A) {
        let mut expired = std::mem::take(&mut self.expired);
        self.timers.expire(self.cx.now_ms, &mut expired);
        for &key in &expired {
            if let Some(conn) = self.slab.get_mut(key) {
                conn.timer = None;
                self.on_timer(app, key);
            }
        }
        expired.clear();
        self.expired = expired;
    }

    /// The connection's timer fired: act on whichever of its deadlines has come.
    fn on_timer<A: Application<Conn = S>>(&mut self, app: &mut A, key: usize) {
        let stats = app.conn_stats();
        let conn = &mut self.slab[key];
        match conn
            .http
            .expired(self.cx.now_ms, &self.limits, conn.io.has_backlog())
        {
            Expiry::WriteStalled => {
                bump(&stats.write_timeouts);
                return self.close(app, key);
            }
            Expiry::KeepAlive => {
                bump(&stats.keepalive_timeouts);
                return self.close(app, key);
            }
            Expiry::Incomplete if conn.io.is_handshaking() => {
                // Counted once, as the handshake's failure (PROTOCOL.md, "TLS").
                bump(&stats.tls_handshake_failures);
                return self.close(app, key);
            }
            Expiry::Incomplete => {
                bump(&stats.header_timeouts);
                if !conn.http.time_out(&mut conn.io, &mut self.cx) {
                    return self.close(app, key);
                }
            }
            Expiry::Application => app.on_timer(&mut self.cx, key, conn),
            Expiry::Nothing => {}
        }
        self.drive(app, key);
    }

    /// Drives the connections that hit their per-turn bound last turn.
    pub(super) fn drive_again<A: Application<Conn = S>>(&mut self, app: &mut A) {
        for key in std::mem::take(&mut self.again) {
            self.drive(app, key);
        }
    }

    /// Shutdown: no request is read any more, every answer closes its connection,
    /// the application ends what it holds (held polls, streams), and idle
    /// connections close now. The loop exits once the rest is flushed.
    pub fn begin_shutdown<A: Application<Conn = S>>(&mut self, app: &mut A) {
        if self.cx.shutting_down {
            return;
        }
        self.cx.shutting_down = true;
        for key in self.keys() {
            let Some(conn) = self.slab.get_mut(key) else {
                continue;
            };
            conn.http.keep_alive = false;
            let http = &conn.http;
            match http.phase {
                Phase::Answering | Phase::Streaming | Phase::WebSocket => {
                    app.on_shutdown(&mut self.cx, key, conn)
                }
                Phase::Idle { .. } | Phase::Head { .. }
                    if http.input.is_empty() && http.out.is_empty() =>
                {
                    self.close(app, key);
                    continue;
                }
                _ => {}
            }
            self.drive(app, key);
        }
    }

    /// Closes every connection (the loop is exiting).
    pub(super) fn close_all<A: Application<Conn = S>>(&mut self, app: &mut A) {
        for key in self.keys() {
            self.close(app, key);
        }
    }
}

/// Hands a whole request to the application (`Phase::Answering`), then drops it from
/// the input. The request is answered from the input itself (nothing reads into it
/// meanwhile), so its target, headers and body are not copied.
fn dispatch<A: Application>(
    app: &mut A,
    cx: &mut Cx,
    key: usize,
    conn: &mut Connection<A::Conn>,
    head: &RequestHead,
    body: &BodyAt,
    consumed: usize,
) {
    conn.http.phase = Phase::Answering;
    let input = std::mem::take(&mut conn.http.input);
    let body = match body {
        BodyAt::Input(range) => &input[range.clone()],
        BodyAt::Decoded(decoded) => decoded.as_slice(),
    };
    let request = Request {
        head,
        input: &input,
        body,
    };
    app.on_request(cx, key, conn, &request);
    conn.http.input = input;
    conn.http.input.drain(..consumed);
}
