//! One connection of a subscriber loop: its socket, its state, its buffers. Knows no
//! `Poll`: the loop moves it from state to state (see `drive.rs`).

use mio::net::TcpStream;

use crate::http::WriteQueue;
use crate::subscribe::Subscription;
use crate::timer::TimerKey;

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Waiting for a request head. While `idle` (no byte of the next request yet) the
    /// keep-alive timeout runs from `since_ms`, otherwise the header timeout does.
    /// Moved by a complete head (answered at once: stays here; a long-poll with nothing
    /// to say: `Held`; a stream: `Streaming`), a bad head (`Closing`), the peer's close
    /// or a timeout (closed).
    ReadingHead { idle: bool, since_ms: u64 },
    /// A long-poll waiting for an event until `until_ms`. Moved by an event, the poll
    /// timeout or shutdown: answered, then `ReadingHead` (keep-alive) or `Closing`.
    Held { until_ms: u64 },
    /// A stream response (stream, iframe, SSE). Moved by its end (max bytes or age,
    /// every channel closed, shutdown): `ReadingHead` (keep-alive) or `Closing`.
    Streaming,
    /// Writing its last output; closed once that is flushed. Terminal.
    Closing,
}

/// Who may read an answer cross-origin, decided per request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cors {
    /// No CORS headers.
    Nothing,
    /// `Access-Control-Allow-Origin: *`.
    Any,
    /// This origin is allowed (it is echoed, with `Vary: Origin`).
    Echo(Box<str>),
    /// Origins are checked but this one is not allowed: `Vary: Origin` only.
    Denied,
}

/// A subscriber-port connection.
#[derive(Debug)]
pub struct Conn {
    pub socket: TcpStream,
    pub state: State,
    /// Received bytes not yet handled (a partial head, or pipelined requests). Released
    /// whenever it empties, so a held subscriber keeps no read buffer.
    pub input: Vec<u8>,
    /// Output the socket has not taken yet.
    pub out: WriteQueue,
    /// The scheduled timer and its deadline (ms), if any. The deadline may be earlier
    /// than the connection's real next deadline; the timer then re-arms itself.
    pub timer: Option<(TimerKey, u64)>,
    /// When output last made progress (or started waiting), for `--write-timeout`.
    pub last_progress_ms: u64,
    /// The peer closed its side.
    pub read_closed: bool,
    /// The last event said the peer closed: read on until the end is seen.
    pub peer_closing: bool,
    /// A write failed: the connection is dead and is closed by whoever sees this.
    pub broken: bool,
    /// The request being answered is HTTP/1.0 (no chunked answers).
    pub http10: bool,
    /// The connection stays open after the current answer.
    pub keep_alive: bool,
    /// CORS for the current answer.
    pub cors: Cors,
    /// The subscription being served (held poll or stream).
    pub sub: Option<Box<Subscription>>,
}

impl Conn {
    /// A connection just accepted at `now_ms`; the header timeout runs from now.
    pub fn new(socket: TcpStream, now_ms: u64) -> Conn {
        Conn {
            socket,
            state: State::ReadingHead {
                idle: false,
                since_ms: now_ms,
            },
            input: Vec::new(),
            out: WriteQueue::default(),
            timer: None,
            last_progress_ms: now_ms,
            read_closed: false,
            peer_closing: false,
            broken: false,
            http10: false,
            keep_alive: true,
            cors: Cors::Nothing,
            sub: None,
        }
    }

    /// Whether the connection should read now: while reading a head, and (to notice
    /// the peer leaving) while held or streaming, up to `limit` buffered bytes.
    pub fn wants_input(&self, limit: usize) -> bool {
        !self.read_closed && self.state != State::Closing && self.input.len() < limit
    }
}
