//! One TLS connection on a non-blocking socket, on rustls's unbuffered API: rustls
//! keeps the protocol's state and keys, and every buffer is ours, so that a held
//! connection that is not reading or writing holds none.
//!
//! - **Reading.** What the socket has is read into the loop's scratch buffer, after
//!   the part of a record kept from the last read; every whole record is processed
//!   (handshake messages answered, application data appended to the connection's
//!   input) and only what is left of a record is kept, in a buffer of its own size.
//! - **Writing.** Plaintext is sealed into records in the loop's scratch buffer and
//!   written to the socket at once; only what the socket did not take is kept, and
//!   nothing new is sealed until that is written (so a slow reader's backlog stays in
//!   the engine's queue of shared frames, unsealed).
//!
//! The scratch buffers are the thread's, made once: a loop serves one connection at a
//! time, and the common case (a record read whole, a record written whole) copies into
//! no buffer of the connection's.

use std::cell::RefCell;
use std::io::{self, IoSlice, Read, Write};
use std::sync::Arc;

use mio::net::TcpStream;
use rustls::server::UnbufferedServerConnection;
use rustls::unbuffered::{ConnectionState, EncodeError, EncryptError, InsufficientSizeError};
use rustls::ServerConfig;

use crate::net::ReadOutcome;

/// Most plaintext sealed per write: one record's worth.
const MAX_PLAIN_PER_WRITE: usize = 16 * 1024;
/// The read scratch: a few records, and a client's first flight with room to spare.
const READ_SCRATCH: usize = 40 * 1024;

/// The answer to a plain-HTTP request on a TLS port (what nginx does too), written in
/// the clear before the connection closes.
const PLAIN_HTTP_ANSWER: &[u8] = b"HTTP/1.1 400 Bad Request\r\n\
Content-Type: text/plain; charset=utf-8\r\nContent-Length: 47\r\nConnection: close\r\n\r\n\
this port speaks TLS: use https:// (or wss://)\n";

/// A thread's scratch buffers.
struct Scratch {
    /// TLS bytes being processed.
    incoming: Box<[u8]>,
    /// Plaintext gathered from the engine's pieces for one record.
    plain: Vec<u8>,
    /// Records sealed and not yet written.
    sealed: Vec<u8>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch {
        incoming: vec![0; READ_SCRATCH].into_boxed_slice(),
        plain: Vec::with_capacity(MAX_PLAIN_PER_WRITE),
        sealed: vec![0; MAX_PLAIN_PER_WRITE + 1024],
    });
}

/// Where a session is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Nothing read yet.
    Fresh,
    /// The handshake is under way.
    Handshaking,
    /// Application data flows.
    Open,
    /// The peer sent its close_notify: nothing more will be read.
    PeerClosed,
}

/// A TLS connection: the socket, rustls's state, and what neither side has taken yet.
pub struct TlsSession {
    socket: TcpStream,
    tls: UnbufferedServerConnection,
    /// Part of a record (or of a handshake flight) read and not yet processable.
    incoming: Vec<u8>,
    /// Records made and not yet taken by the socket.
    outgoing: Vec<u8>,
    stage: Stage,
}

impl std::fmt::Debug for TlsSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSession")
            .field("socket", &self.socket)
            .field("stage", &self.stage)
            .field("incoming", &self.incoming.len())
            .field("outgoing", &self.outgoing.len())
            .finish()
    }
}

impl TlsSession {
    /// A session on a socket just accepted; the handshake begins with its first read.
    pub fn new(socket: TcpStream, config: &Arc<ServerConfig>) -> io::Result<TlsSession> {
        let tls = UnbufferedServerConnection::new(config.clone()).map_err(invalid)?;
        Ok(TlsSession {
            socket,
            tls,
            incoming: Vec::new(),
            outgoing: Vec::new(),
            stage: Stage::Fresh,
        })
    }

    /// The socket, to register with a poll.
    pub fn socket(&mut self) -> &mut TcpStream {
        &mut self.socket
    }

    /// Whether the handshake has not finished (a failure now is a handshake failure).
    pub fn is_handshaking(&self) -> bool {
        matches!(self.stage, Stage::Fresh | Stage::Handshaking)
    }

    /// Whether records wait for the socket.
    pub fn has_backlog(&self) -> bool {
        !self.outgoing.is_empty()
    }

    /// Reads what the socket has, up to `limit` bytes of plaintext in `input` (a
    /// record may take it a little past), as `net::read_into` reads a plain socket.
    /// A peer that closes during the handshake, or sends what is not TLS, is an error.
    /// Never inlined, as `write_plain`.
    #[inline(never)]
    pub fn read_into(
        &mut self,
        input: &mut Vec<u8>,
        limit: usize,
        to_the_end: bool,
    ) -> io::Result<ReadOutcome> {
        SCRATCH.with_borrow_mut(|scratch| {
            let buf = &mut scratch.incoming[..];
            let mut filled = self.incoming.len();
            buf[..filled].copy_from_slice(&self.incoming);
            let result = self.read_records(buf, &mut filled, input, limit, to_the_end);
            if filled == 0 {
                self.incoming = Vec::new();
            } else {
                self.incoming.clear();
                self.incoming.extend_from_slice(&buf[..filled]);
            }
            result
        })
    }

    fn read_records(
        &mut self,
        buf: &mut [u8],
        filled: &mut usize,
        input: &mut Vec<u8>,
        limit: usize,
        to_the_end: bool,
    ) -> io::Result<ReadOutcome> {
        let mut total = self.process(buf, filled, input)?;
        loop {
            if self.stage == Stage::PeerClosed {
                return Ok(ReadOutcome::Closed(total));
            }
            if input.len() >= limit {
                return Ok(ReadOutcome::Data(total));
            }
            let room = buf.len() - *filled;
            if room == 0 {
                return Err(invalid("a TLS message larger than the read buffer"));
            }
            match self.socket.read(&mut buf[*filled..]) {
                Ok(0) if self.is_handshaking() => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "closed during the TLS handshake",
                    ))
                }
                Ok(0) => return Ok(ReadOutcome::Closed(total)),
                Ok(n) => {
                    if self.stage == Stage::Fresh {
                        self.refuse_plain_http(buf[0])?;
                        self.stage = Stage::Handshaking;
                    }
                    *filled += n;
                    total += self.process(buf, filled, input)?;
                    if n < room && !to_the_end && self.stage != Stage::PeerClosed {
                        return Ok(ReadOutcome::Drained(total));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Ok(ReadOutcome::Drained(total))
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// A TLS connection begins with a handshake record (content type 22). One that
    /// begins with a letter is a plain HTTP request: it gets a plain `400` saying so.
    fn refuse_plain_http(&mut self, first: u8) -> io::Result<()> {
        if first == 22 {
            return Ok(());
        }
        if first.is_ascii_uppercase() {
            let _ = self.socket.write(PLAIN_HTTP_ANSWER);
            return Err(invalid("plain HTTP on the TLS port"));
        }
        Err(invalid("not a TLS handshake"))
    }

    /// Processes every whole record in `buf[..filled]`: handshake messages are
    /// answered, application data goes to `input`, and what was processed is removed
    /// from the front of `buf`. Returns the plaintext bytes added.
    fn process(
        &mut self,
        buf: &mut [u8],
        filled: &mut usize,
        input: &mut Vec<u8>,
    ) -> io::Result<usize> {
        let mut plain = 0;
        loop {
            let TlsSession {
                socket,
                tls,
                outgoing,
                stage,
                ..
            } = self;
            let status = tls.process_tls_records(&mut buf[..*filled]);
            let mut discard = status.discard;
            let mut settled = false;
            match status.state.map_err(invalid)? {
                ConnectionState::ReadTraffic(mut traffic) => {
                    while let Some(record) = traffic.next_record() {
                        let record = record.map_err(invalid)?;
                        discard += record.discard;
                        input.extend_from_slice(record.payload);
                        plain += record.payload.len();
                    }
                }
                ConnectionState::EncodeTlsData(mut encode) => {
                    encode_into(outgoing, |out| encode.encode(out))?
                }
                ConnectionState::TransmitTlsData(transmit) => {
                    // Ours to send from now on: what the socket does not take now
                    // waits in `outgoing`.
                    send_backlog(socket, outgoing)?;
                    transmit.done();
                }
                ConnectionState::BlockedHandshake => settled = true,
                ConnectionState::WriteTraffic(_) => {
                    if *stage != Stage::PeerClosed {
                        *stage = Stage::Open;
                    }
                    settled = true;
                }
                ConnectionState::PeerClosed | ConnectionState::Closed => {
                    *stage = Stage::PeerClosed;
                    settled = true;
                }
                // Early data is not offered; nothing else is known.
                _ => return Err(invalid("an unexpected TLS state")),
            }
            buf.copy_within(discard..*filled, 0);
            *filled -= discard;
            if settled {
                return Ok(plain);
            }
        }
    }

    /// Writes the records that wait. Returns whether the socket took any.
    pub fn flush_backlog(&mut self) -> io::Result<bool> {
        send_backlog(&mut self.socket, &mut self.outgoing)
    }

    /// Seals up to one record of `bufs` and writes it, keeping what the socket does
    /// not take. Returns the plaintext taken; `WouldBlock` while the handshake runs
    /// or records still wait. Never inlined: a plain connection's write path (the
    /// byte layer's other arm) stays as small as it was.
    #[inline(never)]
    fn write_plain(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        if self.is_handshaking() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        send_backlog(&mut self.socket, &mut self.outgoing)?;
        if !self.outgoing.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        SCRATCH.with_borrow_mut(|scratch| {
            let Scratch { plain, sealed, .. } = scratch;
            plain.clear();
            for buf in bufs {
                let take = buf.len().min(MAX_PLAIN_PER_WRITE - plain.len());
                plain.extend_from_slice(&buf[..take]);
                if plain.len() == MAX_PLAIN_PER_WRITE {
                    break;
                }
            }
            if plain.is_empty() {
                return Ok(0);
            }
            let len = self.seal(|traffic, out| traffic.encrypt(plain, out), sealed)?;
            self.send_sealed(&sealed[..len])?;
            Ok(plain.len())
        })
    }

    /// Seals with `seal` into `sealed` once rustls is ready for application data
    /// (writing first any handshake message it has, such as a key update's answer).
    /// Returns the bytes sealed.
    fn seal(
        &mut self,
        mut seal: impl FnMut(
            &mut rustls::unbuffered::WriteTraffic<'_, rustls::server::ServerConnectionData>,
            &mut [u8],
        ) -> Result<usize, EncryptError>,
        sealed: &mut Vec<u8>,
    ) -> io::Result<usize> {
        loop {
            let TlsSession {
                socket,
                tls,
                incoming,
                outgoing,
                ..
            } = self;
            let status = tls.process_tls_records(incoming);
            let discard = status.discard;
            let result = match status.state.map_err(invalid)? {
                ConnectionState::WriteTraffic(mut traffic) => loop {
                    match seal(&mut traffic, &mut sealed[..]) {
                        Ok(len) => break Some(Ok(len)),
                        Err(EncryptError::InsufficientSize(InsufficientSizeError {
                            required_size,
                        })) => sealed.resize(required_size, 0),
                        Err(e) => break Some(Err(invalid(e))),
                    }
                },
                ConnectionState::EncodeTlsData(mut encode) => {
                    encode_into(outgoing, |out| encode.encode(out))?;
                    None
                }
                ConnectionState::TransmitTlsData(transmit) => {
                    send_backlog(socket, outgoing)?;
                    transmit.done();
                    None
                }
                // Every whole record was processed when it was read, so no other state
                // can come here; a connection in one is closed rather than guessed at.
                _ => Some(Err(invalid("an unexpected TLS state while writing"))),
            };
            incoming.drain(..discard);
            if let Some(result) = result {
                return result;
            }
        }
    }

    /// Writes sealed records after any that wait, keeping what the socket does not take.
    fn send_sealed(&mut self, sealed: &[u8]) -> io::Result<()> {
        if !self.outgoing.is_empty() {
            self.outgoing.extend_from_slice(sealed);
            return Ok(());
        }
        let sent = write_all_it_takes(&mut self.socket, sealed)?;
        self.outgoing.extend_from_slice(&sealed[sent..]);
        Ok(())
    }

    /// The connection is closing cleanly: tells the peer with a close_notify, if the
    /// socket takes it now (it is not waited for).
    pub fn close_notify(&mut self) {
        if self.is_handshaking() || send_backlog(&mut self.socket, &mut self.outgoing).is_err() {
            return;
        }
        if !self.outgoing.is_empty() {
            return;
        }
        let mut alert = Vec::new();
        let Ok(len) = self.seal(|traffic, out| traffic.queue_close_notify(out), &mut alert) else {
            return;
        };
        let _ = self.socket.write(&alert[..len]);
    }
}

impl Write for TlsSession {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_plain(&[IoSlice::new(buf)])
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.write_plain(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Encodes a handshake record at the end of `outgoing`, growing it as rustls asks.
fn encode_into(
    outgoing: &mut Vec<u8>,
    mut encode: impl FnMut(&mut [u8]) -> Result<usize, EncodeError>,
) -> io::Result<()> {
    let start = outgoing.len();
    let mut room = 4096;
    loop {
        outgoing.resize(start + room, 0);
        match encode(&mut outgoing[start..]) {
            Ok(len) => {
                outgoing.truncate(start + len);
                return Ok(());
            }
            Err(EncodeError::InsufficientSize(InsufficientSizeError { required_size })) => {
                room = required_size
            }
            Err(e) => {
                outgoing.truncate(start);
                return Err(invalid(e));
            }
        }
    }
}

/// Writes what `outgoing` holds until the socket takes no more; frees it once empty.
/// Returns whether the socket took any.
fn send_backlog(socket: &mut TcpStream, outgoing: &mut Vec<u8>) -> io::Result<bool> {
    if outgoing.is_empty() {
        return Ok(false);
    }
    let sent = write_all_it_takes(socket, outgoing)?;
    if sent == outgoing.len() {
        *outgoing = Vec::new();
    } else {
        outgoing.drain(..sent);
    }
    Ok(sent > 0)
}

/// Writes `bytes` until the socket would block. Returns the bytes it took.
fn write_all_it_takes(socket: &mut TcpStream, bytes: &[u8]) -> io::Result<usize> {
    let mut sent = 0;
    while sent < bytes.len() {
        match socket.write(&bytes[sent..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => sent += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(sent)
}

fn invalid(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, error)
}
