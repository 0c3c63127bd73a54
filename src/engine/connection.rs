//! One connection: its layers stacked (byte layer, protocol, the application's state)
//! and its one timer. Knows no `Poll`: the loop (`conns.rs`) moves it.

use super::{ByteLayer, Cx, Http1};
use crate::http::{Piece, Status};
use crate::timer::TimerKey;

/// A connection of either port.
#[derive(Debug)]
pub struct Connection<S> {
    /// The socket and what sits on it.
    pub io: ByteLayer,
    /// The protocol spoken over it: HTTP/1.1 (WebSocket after an upgrade, next).
    pub http: Http1,
    /// What the port's application keeps for it.
    pub app: S,
    /// The scheduled timer, if any, and its deadline (ms). The deadline may be earlier
    /// than the connection's real next deadline; the timer then re-arms itself. (Two
    /// fields, not an `Option` of a pair: 12 bytes instead of 24.)
    pub(super) timer: Option<TimerKey>,
    pub(super) timer_at: u64,
    /// The byte layer may have input: set by a readiness event (and at the accept),
    /// cleared by a read that emptied the socket. With edge-triggered readiness, new
    /// input always brings a new event, so a drained socket is not read again (a read
    /// that would only say "would block" is a syscall per request saved).
    pub(super) readable: bool,
    /// It holds the descriptor the loop keeps in reserve (see `accept.rs`), which goes
    /// back into reserve when it closes.
    pub(super) on_reserve: bool,
}

impl<S: Default> Connection<S> {
    /// A connection just accepted at `now_ms`.
    pub fn new(io: ByteLayer, now_ms: u64) -> Connection<S> {
        Connection {
            io,
            http: Http1::new(now_ms),
            app: S::default(),
            timer: None,
            timer_at: 0,
            readable: true,
            on_reserve: false,
        }
    }
}

impl<S> Connection<S> {
    /// Writes `pieces` through to the byte layer (see `Http1::send`).
    pub fn send(&mut self, now_ms: u64, pieces: &[Piece<'_>]) -> usize {
        self.http.send(&mut self.io, now_ms, pieces)
    }

    /// Writes a whole answer and completes it (see `Http1::respond`).
    pub fn respond(
        &mut self,
        cx: &mut Cx,
        status: Status,
        content_type: &[u8],
        headers: &[(&[u8], &[u8])],
        body: &[u8],
    ) {
        self.http
            .respond(&mut self.io, cx, status, content_type, headers, body);
    }
}
