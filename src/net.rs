//! Sockets, apart from any event loop: binding listeners (SO_REUSEPORT, one per loop),
//! raising the file-descriptor limit, reading into a bounded buffer, and refusing a
//! connection cheaply when the server is full.

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use mio::net::{TcpListener, TcpStream};
use socket2::{Domain, Protocol, Socket, Type};

/// Backlog of pending connections per listener (the kernel caps it at somaxconn).
const LISTEN_BACKLOG: i32 = 4096;

/// Binds a non-blocking listener on `addr`; with `reuse_port`, several listeners share
/// the address and the kernel spreads connections over them; a non-zero `defer_accept`
/// sets TCP_DEFER_ACCEPT (whole seconds, rounded up).
pub fn bind_listener(
    addr: SocketAddr,
    reuse_port: bool,
    defer_accept: Duration,
) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    socket.set_nonblocking(true)?;
    // Accepted sockets inherit TCP_NODELAY from the listener on Linux, which saves a
    // setsockopt per connection (tested: `accepted_sockets_inherit_nodelay`).
    socket.set_tcp_nodelay(true)?;
    if !defer_accept.is_zero() {
        set_defer_accept(&socket, defer_accept)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(TcpListener::from_std(socket.into()))
}

/// Sets TCP_DEFER_ACCEPT: the kernel completes a connection's handshake but keeps it
/// from `accept` until data arrives (or the time passes), so the first read after
/// `accept` finds the request and a silent connection costs the server nothing.
fn set_defer_accept(socket: &Socket, after: Duration) -> io::Result<()> {
    let seconds = after.as_secs() + u64::from(after.subsec_nanos() > 0);
    let seconds = libc::c_int::try_from(seconds).unwrap_or(libc::c_int::MAX);
    // SAFETY: a valid descriptor, and a c_int option value of the size given.
    let done = unsafe {
        libc::setsockopt(
            std::os::fd::AsRawFd::as_raw_fd(socket),
            libc::IPPROTO_TCP,
            libc::TCP_DEFER_ACCEPT,
            (&seconds as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if done == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Raises the soft limit on open files to the hard limit; returns the limit in force.
pub fn raise_fd_limit() -> io::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: setrlimit reads one rlimit from a struct we own.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit = raised;
        }
    }
    Ok(limit.rlim_cur)
}

/// What a read into a connection's buffer found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadOutcome {
    /// Read this many bytes (maybe 0 when the buffer was full) and the socket may have more.
    Data(usize),
    /// The socket has nothing more now.
    Drained(usize),
    /// The peer closed its side.
    Closed(usize),
}

/// Bytes read per call: the size of the loop's read buffer (`ReadChunk`).
pub const READ_CHUNK: usize = 4096;

/// The buffer every read of a loop goes through, zeroed once when the loop starts
/// (one on the stack per read was zeroed per read: 4 KiB of `memset` per request, a
/// third of the instructions of a new-connection poll, counted with callgrind).
#[derive(Debug)]
pub struct ReadChunk(Box<[u8; READ_CHUNK]>);

impl ReadChunk {
    pub fn new() -> ReadChunk {
        ReadChunk(Box::new([0; READ_CHUNK]))
    }
}

impl Default for ReadChunk {
    fn default() -> ReadChunk {
        ReadChunk::new()
    }
}

/// Reads from `socket` into `input` until it would block, the peer closes, or `input`
/// holds `limit` bytes. Reads go through the loop's `chunk`, so a connection that is
/// only being watched for its close (a held subscriber) never grows a buffer.
///
/// A read shorter than asked has emptied the socket's receive queue, so the next
/// arrival raises a new edge-triggered event and the read that would only find
/// nothing is skipped (a syscall per request), unless `to_the_end`: the caller knows
/// the peer closed, and reads on to see the end.
pub fn read_into(
    socket: &mut TcpStream,
    input: &mut Vec<u8>,
    limit: usize,
    to_the_end: bool,
    chunk: &mut ReadChunk,
) -> io::Result<ReadOutcome> {
    let mut total = 0;
    let chunk = &mut chunk.0;
    loop {
        let room = limit.saturating_sub(input.len()).min(READ_CHUNK);
        if room == 0 {
            return Ok(ReadOutcome::Data(total));
        }
        match socket.read(&mut chunk[..room]) {
            Ok(0) => return Ok(ReadOutcome::Closed(total)),
            Ok(n) => {
                input.extend_from_slice(&chunk[..n]);
                total += n;
                if n < room && !to_the_end {
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

/// Answers a connection the server will not keep: whatever it already sent is read and
/// dropped (so closing sends FIN, not RST, and the answer is seen), the answer is
/// written if the socket takes it at once, and the socket is closed. Never blocks.
pub fn refuse(mut socket: TcpStream, answer: &[u8]) {
    let mut sink = [0u8; 2048];
    let _ = socket.read(&mut sink);
    let _ = socket.write(answer);
    let _ = socket.shutdown(std::net::Shutdown::Write);
}

/// A descriptor kept open so that, when the process runs out, one can be released to
/// accept and refuse a connection instead of leaving it in the backlog (where it would
/// wake the loop again and again).
#[derive(Debug)]
pub struct ReserveFd(Option<File>);

impl ReserveFd {
    pub fn new() -> ReserveFd {
        ReserveFd(File::open("/dev/null").ok())
    }

    /// Releases the descriptor, runs `f` (which may use it), and takes it back.
    /// Returns `None` when there was no descriptor to release.
    pub fn with_released<T>(&mut self, f: impl FnOnce() -> T) -> Option<T> {
        self.0.take()?;
        let result = f();
        self.reacquire();
        Some(result)
    }

    /// Releases the descriptor for a use that outlives this call; returns whether
    /// there was one. `reacquire` takes it back once that use is over.
    pub fn release(&mut self) -> bool {
        self.0.take().is_some()
    }

    /// Takes a descriptor back (if one is free) after `release`.
    pub fn reacquire(&mut self) {
        if self.0.is_none() {
            self.0 = File::open("/dev/null").ok();
        }
    }
}

impl Default for ReserveFd {
    fn default() -> Self {
        ReserveFd::new()
    }
}

/// Whether an accept error means the process or system is out of descriptors.
pub fn is_fd_exhaustion(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::EMFILE) | Some(libc::ENFILE)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_sockets_inherit_nodelay() {
        let listener =
            bind_listener("127.0.0.1:0".parse().unwrap(), false, Duration::ZERO).unwrap();
        let _client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let accepted = loop {
            match listener.accept() {
                Ok((socket, _)) => break socket,
                Err(e)
                    if e.kind() == io::ErrorKind::WouldBlock
                        && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(1))
                }
                Err(e) => panic!("{e}"),
            }
        };
        assert!(
            accepted.nodelay().unwrap(),
            "TCP_NODELAY was not inherited from the listener"
        );
    }

    #[test]
    fn defer_accept_is_set_on_subscriber_listeners_only_when_asked() {
        let read = |listener: &TcpListener| {
            let mut value: libc::c_int = 0;
            let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
            // SAFETY: a valid descriptor and a c_int-sized out value.
            let done = unsafe {
                libc::getsockopt(
                    std::os::fd::AsRawFd::as_raw_fd(listener),
                    libc::IPPROTO_TCP,
                    libc::TCP_DEFER_ACCEPT,
                    (&mut value as *mut libc::c_int).cast(),
                    &mut len,
                )
            };
            assert_eq!(done, 0);
            value
        };
        let addr = "127.0.0.1:0".parse().unwrap();
        assert_eq!(
            read(&bind_listener(addr, false, Duration::ZERO).unwrap()),
            0
        );
        // The kernel keeps it as a count of SYN-ACK retransmissions and reports back
        // the time they cover, at least what was asked (half a second rounds up to 1).
        let deferred = bind_listener(addr, false, Duration::from_millis(500)).unwrap();
        assert!(read(&deferred) >= 1, "TCP_DEFER_ACCEPT not set");
    }
}
