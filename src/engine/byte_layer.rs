//! The bytes between a connection's socket and its protocol: plain (what the socket
//! reads is the plaintext), or TLS (`tls::TlsSession`: reading processes records into
//! plaintext, writing seals plaintext into records). Nothing above this layer knows
//! which it talks to, but for two questions that only TLS can answer yes to: whether
//! records wait for the socket (`has_backlog`: the connection is not done until they
//! are written) and whether a handshake is under way (a failure then is counted as a
//! handshake's).

use std::io::{self, IoSlice, Write};

use mio::net::TcpStream;

use crate::net::{self, ReadChunk, ReadOutcome};
use crate::tls::TlsSession;

/// A connection's socket and what sits on it.
#[derive(Debug)]
pub enum ByteLayer {
    /// Bytes go to and from the socket as they are.
    Plain(TcpStream),
    /// TLS over the socket (boxed: a plain connection does not pay for its size).
    Tls(Box<TlsSession>),
    /// A byte string to read and a buffer that takes a few bytes per write (unit
    /// tests drive whole connections with it: no socket).
    #[cfg(test)]
    Script(Script),
}

impl ByteLayer {
    /// Reads plaintext into `input` until the socket would block, the peer closes, or
    /// `input` holds `limit` bytes (see `net::read_into`, and its `to_the_end`), through
    /// the loop's `chunk`.
    pub fn read_into(
        &mut self,
        input: &mut Vec<u8>,
        limit: usize,
        to_the_end: bool,
        chunk: &mut ReadChunk,
    ) -> io::Result<ReadOutcome> {
        match self {
            ByteLayer::Plain(socket) => net::read_into(socket, input, limit, to_the_end, chunk),
            ByteLayer::Tls(session) => session.read_into(input, limit, to_the_end),
            #[cfg(test)]
            ByteLayer::Script(script) => Ok(script.read_into(input, limit)),
        }
    }

    /// The socket, to register with a poll (`None` without one).
    pub fn socket(&mut self) -> Option<&mut TcpStream> {
        match self {
            ByteLayer::Plain(socket) => Some(socket),
            ByteLayer::Tls(session) => Some(session.socket()),
            #[cfg(test)]
            ByteLayer::Script(_) => None,
        }
    }

    /// Whether output the protocol has handed over still waits for the socket (TLS
    /// records sealed and not yet taken).
    pub fn has_backlog(&self) -> bool {
        match self {
            ByteLayer::Tls(session) => session.has_backlog(),
            _ => false,
        }
    }

    /// Writes what waits in the layer itself. Returns whether the socket took any.
    pub fn flush_backlog(&mut self) -> io::Result<bool> {
        match self {
            ByteLayer::Tls(session) => session.flush_backlog(),
            _ => Ok(false),
        }
    }

    /// Whether a TLS handshake is under way.
    pub fn is_handshaking(&self) -> bool {
        match self {
            ByteLayer::Tls(session) => session.is_handshaking(),
            _ => false,
        }
    }

    /// The connection closes cleanly: TLS says so to the peer (close_notify).
    pub fn close_cleanly(&mut self) {
        if let ByteLayer::Tls(session) = self {
            session.close_notify();
        }
    }
}

impl Write for ByteLayer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            ByteLayer::Plain(socket) => socket.write(buf),
            ByteLayer::Tls(session) => session.write(buf),
            #[cfg(test)]
            ByteLayer::Script(script) => script.write_vectored(&[IoSlice::new(buf)]),
        }
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            ByteLayer::Plain(socket) => socket.write_vectored(bufs),
            ByteLayer::Tls(session) => session.write_vectored(bufs),
            #[cfg(test)]
            ByteLayer::Script(script) => script.write_vectored(bufs),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The test byte layer: input handed over as the test sends it, output taken a few
/// bytes per write into a buffer the test keeps (it outlives the connection).
#[cfg(test)]
#[derive(Debug)]
pub struct Script {
    /// Bytes the peer has sent and the connection has not read.
    pub unread: std::collections::VecDeque<u8>,
    /// The peer has shut its side (after `unread`).
    pub peer_closed: bool,
    /// What the connection wrote.
    pub written: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    /// Most bytes taken per write.
    pub per_write: usize,
    /// Bytes taken before writes would block.
    pub budget: usize,
}

#[cfg(test)]
impl Script {
    /// A peer that will send nothing until told, and reads `per_write` bytes per write.
    pub fn new(per_write: usize) -> Script {
        Script {
            unread: Default::default(),
            peer_closed: false,
            written: Default::default(),
            per_write,
            budget: usize::MAX,
        }
    }

    fn read_into(&mut self, input: &mut Vec<u8>, limit: usize) -> ReadOutcome {
        let n = limit.saturating_sub(input.len()).min(self.unread.len());
        input.extend(self.unread.drain(..n));
        match (self.unread.is_empty(), self.peer_closed) {
            (true, true) => ReadOutcome::Closed(n),
            (true, false) => ReadOutcome::Drained(n),
            (false, _) => ReadOutcome::Data(n),
        }
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let mut written = self.written.lock().expect("test lock");
        crate::http::write_queue::tests::take_stingily(
            bufs,
            self.per_write,
            &mut self.budget,
            &mut written,
        )
    }
}
