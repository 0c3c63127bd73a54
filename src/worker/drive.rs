//! Moving a connection along: read what arrived, answer complete requests in order,
//! flush output, keep streams fed, close what is finished; and its one timer.

use log::trace;

use super::conn::State;
use super::Worker;
use crate::http::{parse_head, HeadError, Parsed, Status};
use crate::net::{self, ReadOutcome};
use crate::stats::{bump, drop_one};

/// Rounds of read/answer/write per connection per turn; a connection with more to do
/// (a client pipelining a long burst) continues next turn, after the others.
const DRIVE_ROUNDS: usize = 8;

impl Worker {
    /// Does everything a connection can do now, then arms its timer.
    pub(super) fn drive(&mut self, key: usize) {
        for _ in 0..DRIVE_ROUNDS {
            let Some(conn) = self.conns.get_mut(key) else {
                return;
            };
            let mut progress = false;
            let limit = self.env.config.max_head + 1;
            if conn.wants_input(limit) {
                match net::read_into(&mut conn.socket, &mut conn.input, limit, conn.peer_closing) {
                    Ok(ReadOutcome::Data(n) | ReadOutcome::Drained(n)) => progress |= n > 0,
                    Ok(ReadOutcome::Closed(_)) => {
                        conn.read_closed = true;
                        progress = true;
                    }
                    Err(_) => conn.broken = true,
                }
            }
            if conn.broken
                || (conn.read_closed && matches!(conn.state, State::Held { .. } | State::Streaming))
            {
                // The subscriber left (or its socket failed): nothing more to say to it.
                self.close(key);
                return;
            }
            if matches!(conn.state, State::ReadingHead { .. }) && !self.env.shutting_down {
                progress |= self.answer_requests(key);
            }
            let Some(conn) = self.conns.get_mut(key) else {
                return;
            };
            match conn.out.flush(&mut conn.socket) {
                Ok(n) if n > 0 => {
                    conn.last_progress_ms = self.env.now_ms;
                    progress = true;
                }
                Ok(_) => {}
                Err(_) => conn.broken = true,
            }
            if conn.state == State::Streaming
                && conn.out.pending() < self.env.config.max_pending / 2
            {
                progress |= self.feed_stream(key);
            }
            let Some(conn) = self.conns.get_mut(key) else {
                return;
            };
            let finished = conn.broken
                || (conn.state == State::Closing && conn.out.is_empty())
                || (conn.read_closed
                    && matches!(conn.state, State::ReadingHead { .. })
                    && conn.out.is_empty());
            if finished {
                self.close(key);
                return;
            }
            if !progress {
                self.schedule(key);
                return;
            }
        }
        self.env.again.push(key);
        self.schedule(key);
    }

    /// Answers the complete requests in the input, in order, while the connection is
    /// reading heads and its output is not backed up. Returns whether it did anything.
    fn answer_requests(&mut self, key: usize) -> bool {
        let mut answered = false;
        loop {
            let Some(conn) = self.conns.get_mut(key) else {
                return true;
            };
            let reading = matches!(conn.state, State::ReadingHead { .. });
            if !reading
                || conn.input.is_empty()
                || conn.out.pending() >= self.env.config.max_pending
            {
                break;
            }
            match parse_head(&conn.input, self.env.config.max_head) {
                Ok(Parsed::Partial) => {
                    if let State::ReadingHead { idle: true, .. } = conn.state {
                        conn.state = State::ReadingHead {
                            idle: false,
                            since_ms: self.env.now_ms,
                        };
                    }
                    if conn.read_closed {
                        conn.state = State::Closing;
                    }
                    break;
                }
                Err(error) => {
                    self.refuse_head(key, error);
                    return true;
                }
                Ok(Parsed::Complete(head)) => {
                    bump(&self.env.loop_stats().requests);
                    answered = true;
                    self.handle_request(key, &head);
                    let Some(conn) = self.conns.get_mut(key) else {
                        return true;
                    };
                    conn.input.drain(..head.len);
                    if let State::ReadingHead { .. } = conn.state {
                        conn.state = State::ReadingHead {
                            idle: true,
                            since_ms: self.env.now_ms,
                        };
                    }
                }
            }
        }
        if let Some(conn) = self.conns.get_mut(key) {
            if conn.input.is_empty() && conn.input.capacity() > 0 {
                conn.input = Vec::new();
            }
        }
        answered
    }

    /// Answers a head that cannot be served, counts it, and closes after the answer.
    fn refuse_head(&mut self, key: usize, error: HeadError) {
        let stats = self.env.loop_stats();
        let (status, counter, message): (Status, _, &[u8]) = match error {
            HeadError::TooLarge => (
                Status::HeadersTooLarge,
                &stats.heads_too_large,
                b"request head too large\n",
            ),
            HeadError::Malformed => (
                Status::BadRequest,
                &stats.bad_requests,
                b"malformed request\n",
            ),
            HeadError::BadHost => (
                Status::BadRequest,
                &stats.bad_requests,
                b"HTTP/1.1 needs exactly one Host header\n",
            ),
            HeadError::AmbiguousLength | HeadError::BadLength => (
                Status::BadRequest,
                &stats.ambiguous_lengths,
                b"ambiguous or invalid message length\n",
            ),
            HeadError::UnknownCoding => (
                Status::NotImplemented,
                &stats.unknown_codings,
                b"unsupported transfer coding\n",
            ),
        };
        bump(counter);
        trace!(
            "worker {}: conn {key}: refused head: {error:?}",
            self.env.number
        );
        let conn = &mut self.conns[key];
        conn.keep_alive = false;
        conn.input = Vec::new();
        self.respond_text(key, status, message);
    }

    /// Closes a connection now: its subscription, timer, registration and counters go.
    pub(super) fn close(&mut self, key: usize) {
        let Some(mut conn) = self.conns.try_remove(key) else {
            return;
        };
        if let Some((timer, _)) = conn.timer.take() {
            self.env.timers.cancel(timer);
        }
        if let Some(mut sub) = conn.sub.take() {
            self.end_subscription(&mut sub);
        }
        // No deregister: closing the socket (when `conn` drops) takes it out of the
        // epoll set, and one `epoll_ctl` per connection is worth saving. Its token may
        // still come back in this turn's events; `drive` ignores keys that are gone, and
        // a key reused meanwhile only gets a spurious readiness (a read that finds nothing).
        drop_one(&self.env.loop_stats().connections);
        self.env.admission.leave();
        trace!("worker {}: conn {key}: closed", self.env.number);
    }

    /// The connection's next deadline (ms), or `None`.
    fn deadline(&self, key: usize) -> Option<u64> {
        let conn = &self.conns[key];
        let config = &self.env.config;
        let ms = |d: std::time::Duration| d.as_millis() as u64;
        let state_deadline = match conn.state {
            State::ReadingHead {
                idle: true,
                since_ms,
            } => Some(since_ms + ms(config.keepalive_timeout)),
            State::ReadingHead {
                idle: false,
                since_ms,
            } => Some(since_ms + ms(config.header_timeout)),
            State::Held { until_ms } => Some(until_ms),
            State::Streaming => conn.sub.as_ref().map(|sub| {
                (sub.last_write_ms + ms(config.heartbeat))
                    .min(sub.opened_ms + ms(config.stream_max_age))
            }),
            State::Closing => None,
        };
        let write_deadline =
            (!conn.out.is_empty()).then(|| conn.last_progress_ms + ms(config.write_timeout));
        match (state_deadline, write_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Arms the connection's timer for its next deadline. A timer already due earlier
    /// is left alone (it re-arms when it fires), so a busy stream does not touch the
    /// wheel per frame.
    pub(super) fn schedule(&mut self, key: usize) {
        let Some(deadline) = self.deadline(key) else {
            return;
        };
        let conn = &mut self.conns[key];
        match conn.timer {
            Some((_, at)) if at <= deadline => {}
            Some((timer, _)) => {
                self.env.timers.cancel(timer);
                conn.timer = Some((self.env.timers.insert(deadline, key), deadline));
            }
            None => conn.timer = Some((self.env.timers.insert(deadline, key), deadline)),
        }
    }

    /// The connection's timer fired: act on whichever of its deadlines has come.
    pub(super) fn on_timer(&mut self, key: usize) {
        let now = self.env.now_ms;
        let config = self.env.config.clone();
        let ms = |d: std::time::Duration| d.as_millis() as u64;
        let conn = &mut self.conns[key];
        if !conn.out.is_empty() && now >= conn.last_progress_ms + ms(config.write_timeout) {
            bump(&self.env.loop_stats().write_timeouts);
            self.close(key);
            return;
        }
        match conn.state {
            State::ReadingHead {
                idle: true,
                since_ms,
            } if now >= since_ms + ms(config.keepalive_timeout) => {
                bump(&self.env.loop_stats().keepalive_timeouts);
                self.close(key);
                return;
            }
            State::ReadingHead {
                idle: false,
                since_ms,
            } if now >= since_ms + ms(config.header_timeout) => {
                bump(&self.env.loop_stats().header_timeouts);
                if conn.out.is_empty() && !conn.input.is_empty() {
                    conn.keep_alive = false;
                    conn.input = Vec::new();
                    self.respond_text(
                        key,
                        Status::RequestTimeout,
                        b"request head not complete in time\n",
                    );
                } else {
                    self.close(key);
                    return;
                }
            }
            State::Held { until_ms } if now >= until_ms => self.answer_longpoll(key),
            State::Streaming => self.on_stream_timer(key),
            _ => {}
        }
        self.drive(key);
    }
}
