//! The connection engine: one for both ports. A connection is a stack, each layer a
//! type of its own:
//!
//! ```text
//!   application   SubscriberApp | AdminApp       what the port does with a request
//!   protocol      Http1                          requests in, answers out; frames after
//!                                                an upgrade (`Phase::WebSocket`)
//!   byte layer    ByteLayer::Plain | Tls         plaintext to and from the socket, or
//!                                                through a TLS session (`tls/`)
//!   socket        mio::net::TcpStream
//! ```
//!
//! - `byte_layer.rs`: the bytes between the socket and the protocol: plain, or a
//!   `tls::TlsSession` reading and writing the socket and handing plaintext up.
//! - `http1.rs`: the HTTP/1.1 state machine. It reads the connection's input buffer,
//!   writes through a `std::io::Write` (the byte layer, or a byte string in tests),
//!   and says what it wants next (more input, a deadline, to close); it never sees a
//!   socket or a `Poll`. After an upgrade it keeps the buffers and timeouts and the
//!   application reads the frames (`Application::on_input`, with `websocket/`).
//! - `connection.rs`: one connection, the layers stacked, and its timer.
//! - `conns.rs`: a loop's connections: driving one (read, answer in order, flush,
//!   close), its one timer, shutdown. Generic over the [`Application`].
//! - `event_loop.rs`: the loop skeleton, once for both ports: poll, tokens, accepting
//!   (with `accept.rs`: the limit, the reserve descriptor), wake-ups and timers.
//!
//! What differs between the ports is an [`Application`] and its [`Limits`]: the
//! subscriber loops run `subscriber::SubscriberApp`, the admin thread `admin::AdminApp`.

mod accept;
mod byte_layer;
mod connection;
mod conns;
mod event_loop;
mod http1;
#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;

pub use byte_layer::ByteLayer;
pub use connection::Connection;
pub use conns::{Conns, Cx};
pub use event_loop::{EventLoop, Flow, Listening, WAKER};
pub use http1::{Framing, Http1, Phase, Refusal, Request};

use crate::http::RequestHead;
use crate::stats::ConnStats;

/// When the process runs out of descriptors, what a port does with the connection
/// waiting in its backlog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnExhaustion {
    /// Accept it on the reserve descriptor, answer `503` and close it (the subscriber
    /// port: a full server refuses cleanly instead of leaving connections hanging).
    Refuse,
    /// Serve it on the reserve descriptor, which comes back when it closes (the admin
    /// port: an operator must get in however full the server is).
    ServeOne,
}

/// The limits of one port. Times are in milliseconds of loop time.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest request head (`--max-head`).
    pub max_head: usize,
    /// Largest request body (`--max-message`); 0 where the application refuses every
    /// body in `on_head`.
    pub max_body: usize,
    /// Output waiting for a slow reader past which no further request is answered
    /// (and a streaming application drops it): `--max-pending`.
    pub max_pending: usize,
    /// Input buffer capacity kept between requests; a larger one is freed.
    pub kept_input: usize,
    /// A request head must be complete this long after its first byte (or the accept).
    pub header_ms: u64,
    /// A body must be complete this long after its request's first byte.
    pub body_ms: u64,
    /// An idle keep-alive connection is closed after this long.
    pub keepalive_ms: u64,
    /// Output that makes no progress for this long drops the connection.
    pub write_ms: u64,
    /// Whether a held or streaming answer is abandoned when its peer shuts its side
    /// (a subscriber that left); otherwise it is still given (a publisher that sent
    /// its request and shut its side waits for the answer).
    pub abandon_on_peer_close: bool,
    /// The whole answer to a connection over the port's connection limit.
    pub refusal: &'static [u8],
    /// What the port does when the process is out of descriptors.
    pub on_exhaustion: OnExhaustion,
}

impl Limits {
    /// Most bytes of input buffered: a head, or a head and the largest body (chunked
    /// framing included).
    pub fn max_input(&self) -> usize {
        if self.max_body == 0 {
            self.max_head + 1
        } else {
            self.max_head + self.max_body * 2 + 4096
        }
    }
}

/// What the application says of a head before its body is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadVerdict {
    /// Read the body (if any) and hand over the whole request.
    Accept,
    /// The application has answered the request (and, unless it kept it alive,
    /// closed the connection): its body, if any, is not read.
    Answered,
}

/// A port's application: what it does with requests, and with its own events between
/// them (published events, storage reports). The engine calls it; it answers through
/// the connection's `Http1` and tells the engine what it holds through the phase.
pub trait Application: Sized {
    /// What the application keeps per connection (a subscription, an answer waiting
    /// for storage).
    type Conn: Default;

    /// Its limits.
    fn limits(&self) -> Limits;

    /// Its share of the connection counters.
    fn conn_stats(&self) -> &ConnStats;

    /// A log prefix (`loop 0`, `admin`).
    fn name(&self) -> &str;

    /// A complete head, before its body is read; `input` holds it. The application may
    /// answer it now (a method it does not take) instead of having its body read.
    fn on_head(
        &mut self,
        _cx: &mut Cx,
        _conn: &mut Connection<Self::Conn>,
        _head: &RequestHead,
        _input: &[u8],
    ) -> HeadVerdict {
        HeadVerdict::Accept
    }

    /// A whole request, the connection in `Phase::Answering`. The application answers
    /// it (`Http1::complete`), starts a stream (`Http1::stream`), or holds it and
    /// answers later (a held long-poll, a publish waiting for storage).
    fn on_request(
        &mut self,
        cx: &mut Cx,
        key: usize,
        conn: &mut Connection<Self::Conn>,
        request: &Request<'_>,
    );

    /// A streaming (or WebSocket) connection whose output has room: write what it is
    /// owed. Returns
    /// whether it wrote anything.
    fn feed(&mut self, _cx: &mut Cx, _key: usize, _conn: &mut Connection<Self::Conn>) -> bool {
        false
    }

    /// A WebSocket connection (`Phase::WebSocket`) has input: read the frames that
    /// are whole, answer them, and drop them from `conn.http.input`. Returns whether
    /// it did anything.
    fn on_input(&mut self, _cx: &mut Cx, _key: usize, _conn: &mut Connection<Self::Conn>) -> bool {
        false
    }

    /// The application's deadline for a connection it holds or streams to.
    fn deadline(&self, conn: &Connection<Self::Conn>) -> Option<u64>;

    /// That deadline came.
    fn on_timer(&mut self, cx: &mut Cx, key: usize, conn: &mut Connection<Self::Conn>);

    /// Shutdown: end what the connection is held for (answer a held poll, end a stream).
    fn on_shutdown(&mut self, _cx: &mut Cx, _key: usize, _conn: &mut Connection<Self::Conn>) {}

    /// The connection is closing: release what the application holds for it.
    fn on_close(&mut self, key: usize, conn: &mut Connection<Self::Conn>);

    /// Before the loop sleeps: finish the turn's work (the admin thread writes and
    /// syncs its turn's events and answers what is stored).
    fn before_poll(&mut self, _conns: &mut Conns<Self::Conn>) {}

    /// When the application needs the loop awake again (ms of loop time), if ever.
    fn next_deadline(&self) -> Option<u64> {
        None
    }

    /// Once every turn, after the poll and before the sockets' events: the
    /// application's own inbox.
    fn on_wake(&mut self, conns: &mut Conns<Self::Conn>) -> Flow;

    /// The loop has ended and closed its connections.
    fn on_exit(&mut self) {}
}
