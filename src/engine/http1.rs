//! HTTP/1.1 as a state machine over a connection's buffers, in the manner of Pushpin's
//! `src/core/http1`: it parses requests out of the input buffer, writes answers
//! through any `std::io::Write` (the byte layer, or a byte string in tests), and says
//! what it wants next: input (`wants_input`), to write what its output queue holds
//! (`out`, flushed by the loop on every writable edge), a deadline (`deadline`), to
//! close (`is_finished`). The loop turns that into reads, writes and timers; this file
//! never sees a socket or a `Poll`.
//!
//! The limits and answers here are the same on both ports: a bad head gets the same
//! status, text and counter wherever it arrives.

use std::io::Write;
use std::sync::atomic::AtomicU64;

use super::{Cx, Limits};
use crate::http::chunked::{self, Chunked, ChunkedError};
use crate::http::{
    parse_head, response, BodyLength, HeadError, Method, Parsed, Piece, RequestHead, Span, Status,
    WriteQueue,
};
use crate::stats::ConnStats;

/// The interim answer to `Expect: 100-continue`.
const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// Where an HTTP/1.1 connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Between requests: no byte of the next one since `since_ms` (the keep-alive
    /// timeout runs). Moved by the engine: a byte arrives → `Head`; the keep-alive
    /// timeout or the peer's close → closed.
    Idle { since_ms: u64 },
    /// Part of a head has arrived, or the connection is new: the header timeout runs
    /// from `since_ms`. Moved by the engine: the head completes → `Body` once the
    /// application accepts it, or `Answering` without a body; a bad head → `Closing`
    /// (answered); the header timeout → `Closing` (`408`) or closed; the peer's close
    /// → `Closing`.
    Head { since_ms: u64 },
    /// The application accepted a head and its body is arriving; the body timeout
    /// runs from the request's first byte. Moved by the engine: the body completes →
    /// `Answering`; too large or malformed → `Closing` (answered); the timeout →
    /// `Closing` (`408`).
    Body { since_ms: u64 },
    /// The application has the request and has not finished its answer: it is
    /// answering it now, or holds it (a long-poll waiting for an event, a publish
    /// waiting for storage). Requests pipelined behind it wait in the input. Moved by
    /// the application: answered (`complete`) → `Idle` or `Closing`; a stream begun
    /// (`stream`) → `Streaming`. Its deadline is the application's.
    Answering,
    /// The answer's head is out and the application writes its body over time (a
    /// stream). Moved by the application ending it (`complete`) → `Idle` or
    /// `Closing`. Its deadline is the application's.
    Streaming,
    /// The connection was upgraded to WebSocket (`upgrade`): its input is frames,
    /// which the application reads (`Application::on_input`), and the application
    /// writes frames over time. No HTTP request is read again. Moved by the
    /// application closing it → `Closing`. Its deadline is the application's.
    WebSocket,
    /// Writing its last output; the engine closes it once that is flushed. Terminal.
    Closing,
}

/// How the body of an answer is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `Content-Length`.
    Length(usize),
    /// `Transfer-Encoding: chunked` (HTTP/1.1) or the connection's close (HTTP/1.0).
    Stream,
    /// No body and no length header (204, 304).
    Empty,
}

/// Bad input that the engine answers itself, then closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The head cannot be served.
    Head(HeadError),
    /// The body is over the port's limit (`--max-message`).
    BodyTooLarge,
    /// The chunked body is not chunked syntax.
    BadChunks,
}

impl Refusal {
    /// The answer's status and text.
    pub fn answer(self) -> (Status, &'static [u8]) {
        match self {
            Refusal::Head(HeadError::TooLarge) => {
                (Status::HeadersTooLarge, b"request head too large\n")
            }
            Refusal::Head(HeadError::Malformed) => (Status::BadRequest, b"malformed request\n"),
            Refusal::Head(HeadError::BadHost) => (
                Status::BadRequest,
                b"HTTP/1.1 needs exactly one Host header\n",
            ),
            Refusal::Head(HeadError::AmbiguousLength | HeadError::BadLength) => {
                (Status::BadRequest, b"ambiguous or invalid message length\n")
            }
            Refusal::Head(HeadError::UnknownCoding) => {
                (Status::NotImplemented, b"unsupported transfer coding\n")
            }
            Refusal::BodyTooLarge => (Status::ContentTooLarge, b"body over --max-message\n"),
            Refusal::BadChunks => (Status::BadRequest, b"malformed chunked body\n"),
        }
    }

    /// The counter it is counted in.
    pub fn counter(self, stats: &ConnStats) -> &AtomicU64 {
        match self {
            Refusal::Head(HeadError::TooLarge) => &stats.heads_too_large,
            Refusal::Head(HeadError::Malformed | HeadError::BadHost) | Refusal::BadChunks => {
                &stats.bad_requests
            }
            Refusal::Head(HeadError::AmbiguousLength | HeadError::BadLength) => {
                &stats.ambiguous_lengths
            }
            Refusal::Head(HeadError::UnknownCoding) => &stats.unknown_codings,
            Refusal::BodyTooLarge => &stats.messages_too_large,
        }
    }
}

/// Where a request's body is: in the input after its head, or decoded from chunks.
#[derive(Debug, PartialEq, Eq)]
pub enum BodyAt {
    Input(std::ops::Range<usize>),
    Decoded(Vec<u8>),
}

/// What the input holds next (`Http1::next`).
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// Nothing to do until more input arrives (or the output drains).
    Wait,
    /// A head just completed; the request's flags are set from it. The application
    /// sees it (`on_head`) before its body is read (`Http1::body`).
    Head(RequestHead),
    /// A whole request: its head, its body, and how much input the two took.
    Request {
        head: RequestHead,
        body: BodyAt,
        consumed: usize,
    },
    /// Bad input: answer it (`Http1::refuse`) and close.
    Refuse(Refusal),
}

/// A whole request as the application gets it.
#[derive(Debug)]
pub struct Request<'a> {
    pub head: &'a RequestHead,
    /// The input the head was parsed from: its spans are into this.
    pub input: &'a [u8],
    pub body: &'a [u8],
}

impl<'a> Request<'a> {
    /// The bytes of a span of the head (a header's value), if it was present.
    pub fn span(&self, span: Option<Span>) -> Option<&'a [u8]> {
        span.map(|span| span.of(self.input))
    }

    /// The request target as sent.
    pub fn target(&self) -> &'a [u8] {
        self.head.target.of(self.input)
    }
}

/// Expired deadlines of a connection (`Http1::expired`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// Nothing is due yet.
    Nothing,
    /// Output made no progress for the write timeout.
    WriteStalled,
    /// Idle past the keep-alive timeout.
    KeepAlive,
    /// A head or body not complete in time.
    Incomplete,
    /// The application holds the connection: its deadline may have come.
    Application,
}

/// One HTTP/1.1 connection's protocol state and buffers.
#[derive(Debug)]
pub struct Http1 {
    pub phase: Phase,
    /// Received bytes not yet handled (a partial request, or pipelined ones).
    pub input: Vec<u8>,
    /// Output the byte layer has not taken yet.
    pub out: WriteQueue,
    /// When output last made progress (or started waiting), for the write timeout.
    pub last_progress_ms: u64,
    /// The request being answered is HTTP/1.0 (no chunked answers).
    pub http10: bool,
    /// The connection stays open after the current answer.
    pub keep_alive: bool,
    /// The request being answered is `HEAD`: answers leave out their body.
    pub head_only: bool,
    /// `100 Continue` was sent for the current request.
    continued: bool,
    /// The peer shut its side.
    pub read_closed: bool,
    /// The poll said the peer is closing: read on until its end is seen.
    pub peer_closing: bool,
    /// A read or write failed: the engine closes the connection when it sees this.
    pub broken: bool,
}

impl Http1 {
    /// A connection accepted at `now_ms`: the header timeout runs from then.
    pub fn new(now_ms: u64) -> Http1 {
        Http1 {
            phase: Phase::Head { since_ms: now_ms },
            input: Vec::new(),
            out: WriteQueue::default(),
            last_progress_ms: now_ms,
            http10: false,
            keep_alive: true,
            head_only: false,
            continued: false,
            read_closed: false,
            peer_closing: false,
            broken: false,
        }
    }

    /// Whether requests are read now (not while one is answered or streamed).
    pub fn reads_requests(&self) -> bool {
        matches!(
            self.phase,
            Phase::Idle { .. } | Phase::Head { .. } | Phase::Body { .. }
        )
    }

    /// Whether the connection should read: always but when closing (a held or
    /// streaming one reads to notice its peer leaving), up to `limit` bytes.
    pub fn wants_input(&self, limit: usize) -> bool {
        !self.read_closed && self.phase != Phase::Closing && self.input.len() < limit
    }

    /// Whether the connection is done: failed, flushed its last answer, or its peer
    /// left between requests (or in the middle of one) with nothing left to write.
    /// `layer_backlog`: the byte layer still holds output (TLS records).
    pub fn is_finished(&self, layer_backlog: bool) -> bool {
        let written = self.out.is_empty() && !layer_backlog;
        self.broken
            || (self.phase == Phase::Closing && written)
            || (self.read_closed && self.reads_requests() && written)
    }

    /// What the input holds next, while requests are read and the output is not
    /// backed up past `limits.max_pending`. Writes `100 Continue` when a body is
    /// awaited that the client holds back for it.
    pub fn next(&mut self, io: &mut impl Write, now_ms: u64, limits: &Limits) -> Next {
        if !self.reads_requests()
            || self.input.is_empty()
            || self.out.pending() >= limits.max_pending
        {
            return Next::Wait;
        }
        let parsed = parse_head(&self.input, limits.max_head);
        match (self.phase, parsed) {
            (_, Err(error)) => Next::Refuse(Refusal::Head(error)),
            (Phase::Body { .. }, Ok(Parsed::Complete(head))) => self.body(io, head, limits),
            (_, Ok(Parsed::Partial)) => {
                if let Phase::Idle { .. } = self.phase {
                    self.phase = Phase::Head { since_ms: now_ms };
                }
                if self.read_closed {
                    // The peer left in the middle of a head: nothing more will come.
                    self.phase = Phase::Closing;
                }
                Next::Wait
            }
            (_, Ok(Parsed::Complete(head))) => {
                self.http10 = head.http10;
                self.keep_alive = head.keep_alive;
                self.head_only = head.method == Method::Head;
                self.continued = false;
                if let Phase::Idle { .. } = self.phase {
                    self.phase = Phase::Head { since_ms: now_ms };
                }
                Next::Head(head)
            }
        }
    }

    /// The application accepted `head`: its body, once all of it is here. Moves to
    /// `Body` while it arrives.
    pub fn body(&mut self, io: &mut impl Write, head: RequestHead, limits: &Limits) -> Next {
        if let Phase::Head { since_ms } | Phase::Idle { since_ms } = self.phase {
            self.phase = Phase::Body { since_ms };
        }
        let received = &self.input[head.len..];
        match head.body {
            BodyLength::None => {
                let consumed = head.len;
                return Next::Request {
                    head,
                    body: BodyAt::Input(consumed..consumed),
                    consumed,
                };
            }
            BodyLength::Length(n) if n > limits.max_body as u64 => {
                return Next::Refuse(Refusal::BodyTooLarge)
            }
            BodyLength::Length(n) if received.len() as u64 >= n => {
                let end = head.len + n as usize;
                return Next::Request {
                    body: BodyAt::Input(head.len..end),
                    head,
                    consumed: end,
                };
            }
            BodyLength::Length(_) => {}
            BodyLength::Chunked => match chunked::decode(received, limits.max_body) {
                Ok(Chunked::Complete { body, consumed }) => {
                    return Next::Request {
                        consumed: head.len + consumed,
                        head,
                        body: BodyAt::Decoded(body),
                    }
                }
                Ok(Chunked::Partial) => {}
                Err(ChunkedError::TooLarge) => return Next::Refuse(Refusal::BodyTooLarge),
                Err(ChunkedError::Malformed) => return Next::Refuse(Refusal::BadChunks),
            },
        }
        if head.expect_continue && !self.continued {
            self.continued = true;
            // Nothing else is written while a request's body arrives, so the interim
            // answer goes out in order.
            if self
                .out
                .write_through(io, &[Piece::Copy(CONTINUE)])
                .is_err()
            {
                self.broken = true;
            }
        }
        Next::Wait
    }

    /// Starts an answer's head in `out`: status line, `Date`, `Content-Type`, framing.
    /// A stream to an HTTP/1.0 client is delimited by closing the connection.
    pub fn start_head(
        &mut self,
        out: &mut Vec<u8>,
        date: &[u8],
        status: Status,
        content_type: Option<&[u8]>,
        framing: Framing,
    ) {
        response::start(out, status, date);
        if let Some(content_type) = content_type {
            response::header(out, b"Content-Type", content_type);
        }
        match framing {
            Framing::Length(len) => response::content_length(out, len),
            Framing::Stream if self.http10 => self.keep_alive = false,
            Framing::Stream => response::header(out, b"Transfer-Encoding", b"chunked"),
            Framing::Empty => {}
        }
    }

    /// Ends an answer's head in `out`: `Connection` as keep-alive and the version
    /// need it, and the blank line.
    pub fn end_head(&self, out: &mut Vec<u8>) {
        if !self.keep_alive {
            response::header(out, b"Connection", b"close");
        } else if self.http10 {
            response::header(out, b"Connection", b"keep-alive");
        }
        response::end(out);
    }

    /// Writes `pieces` through the output queue to `io`, noting when output starts
    /// waiting. Returns the bytes `io` took now.
    pub fn send(&mut self, io: &mut impl Write, now_ms: u64, pieces: &[Piece<'_>]) -> usize {
        let was_empty = self.out.is_empty();
        match self.out.write_through(io, pieces) {
            Ok(written) => {
                if written > 0 || (was_empty && !self.out.is_empty()) {
                    self.last_progress_ms = now_ms;
                }
                written
            }
            Err(_) => {
                self.broken = true;
                0
            }
        }
    }

    /// Writes what waits in the output queue. Returns whether anything was written.
    /// An idle connection's keep-alive timeout runs from when its last answer is all
    /// written.
    pub fn flush(&mut self, io: &mut impl Write, now_ms: u64) -> bool {
        match self.out.flush(io) {
            Ok(0) => false,
            Ok(_) => {
                self.last_progress_ms = now_ms;
                if let (Phase::Idle { .. }, true) = (self.phase, self.out.is_empty()) {
                    self.phase = Phase::Idle { since_ms: now_ms };
                }
                true
            }
            Err(_) => {
                self.broken = true;
                false
            }
        }
    }

    /// The answer to the current request is all written: on to the next request, or
    /// to closing.
    pub fn complete(&mut self, now_ms: u64) {
        self.phase = if self.keep_alive {
            Phase::Idle { since_ms: now_ms }
        } else {
            Phase::Closing
        };
    }

    /// The answer's head is out and its body follows over time.
    pub fn stream(&mut self) {
        self.phase = Phase::Streaming;
    }

    /// The `101` is out: the connection speaks WebSocket from now on, and never
    /// HTTP again.
    pub fn upgrade(&mut self) {
        self.phase = Phase::WebSocket;
        self.keep_alive = false;
    }

    /// Whether the application writes frames to it over time: a stream, a WebSocket.
    pub fn streams(&self) -> bool {
        matches!(self.phase, Phase::Streaming | Phase::WebSocket)
    }

    /// Whether the application holds the connection: a request it has not finished
    /// answering, a stream, a WebSocket.
    pub fn is_held(&self) -> bool {
        matches!(
            self.phase,
            Phase::Answering | Phase::Streaming | Phase::WebSocket
        )
    }

    /// Writes a whole answer (its body left out for `HEAD`) and completes it.
    pub fn respond(
        &mut self,
        io: &mut impl Write,
        cx: &mut Cx,
        status: Status,
        content_type: &[u8],
        headers: &[(&[u8], &[u8])],
        body: &[u8],
    ) {
        cx.scratch.clear();
        self.start_head(
            &mut cx.scratch,
            cx.date.get(),
            status,
            Some(content_type),
            Framing::Length(body.len()),
        );
        for (name, value) in headers {
            response::header(&mut cx.scratch, name, value);
        }
        self.end_head(&mut cx.scratch);
        let body = if self.head_only { &[][..] } else { body };
        self.send(
            io,
            cx.now_ms,
            &[Piece::Copy(&cx.scratch), Piece::Copy(body)],
        );
        self.complete(cx.now_ms);
    }

    /// Answers bad input and closes after the answer; what is left of the input is
    /// never looked at.
    pub fn refuse(&mut self, io: &mut impl Write, cx: &mut Cx, refusal: Refusal) {
        let (status, text) = refusal.answer();
        self.answer_and_close(io, cx, status, text);
    }

    /// A plain-text answer after which the connection closes.
    fn answer_and_close(&mut self, io: &mut impl Write, cx: &mut Cx, status: Status, text: &[u8]) {
        self.keep_alive = false;
        self.head_only = false;
        self.input = Vec::new();
        let headers: [(&[u8], &[u8]); 1] = [(b"Cache-Control", b"no-store")];
        self.respond(io, cx, status, b"text/plain; charset=utf-8", &headers, text);
    }

    /// The connection's next deadline (ms) as far as HTTP knows: the keep-alive,
    /// header or body timeout by phase, or `application` while the application holds
    /// it; and the write timeout while output waits (in `out`, or in the byte layer:
    /// `layer_backlog`).
    pub fn deadline(
        &self,
        limits: &Limits,
        application: Option<u64>,
        layer_backlog: bool,
    ) -> Option<u64> {
        let waiting = !self.out.is_empty() || layer_backlog;
        let phase = match self.phase {
            // Not idle while its answer is still being written: the write timeout runs.
            Phase::Idle { .. } if waiting => None,
            Phase::Idle { since_ms } => Some(since_ms + limits.keepalive_ms),
            Phase::Head { since_ms } => Some(since_ms + limits.header_ms),
            Phase::Body { since_ms } => Some(since_ms + limits.body_ms),
            Phase::Answering | Phase::Streaming | Phase::WebSocket => application,
            Phase::Closing => None,
        };
        let write = waiting.then(|| self.last_progress_ms + limits.write_ms);
        match (phase, write) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Which deadline has come at `now_ms` (`layer_backlog` as for `deadline`).
    pub fn expired(&self, now_ms: u64, limits: &Limits, layer_backlog: bool) -> Expiry {
        let waiting = !self.out.is_empty() || layer_backlog;
        if waiting && now_ms >= self.last_progress_ms + limits.write_ms {
            return Expiry::WriteStalled;
        }
        match self.phase {
            Phase::Idle { since_ms } if !waiting && now_ms >= since_ms + limits.keepalive_ms => {
                Expiry::KeepAlive
            }
            Phase::Head { since_ms } if now_ms >= since_ms + limits.header_ms => Expiry::Incomplete,
            Phase::Body { since_ms } if now_ms >= since_ms + limits.body_ms => Expiry::Incomplete,
            Phase::Answering | Phase::Streaming | Phase::WebSocket => Expiry::Application,
            _ => Expiry::Nothing,
        }
    }

    /// A request not complete in time: answers `408` if it had begun and nothing else
    /// is being written (then closes after it), and returns whether it did; a silent
    /// connection gets no answer.
    pub fn time_out(&mut self, io: &mut impl Write, cx: &mut Cx) -> bool {
        if !self.out.is_empty() || self.input.is_empty() {
            return false;
        }
        self.answer_and_close(
            io,
            cx,
            Status::RequestTimeout,
            b"request not complete in time\n",
        );
        true
    }
}
