//! The reference for the new-connection limit: the smallest mio program that answers
//! one HTTP request per connection with a fixed `200 ok` and closes. It binds as Halley
//! does (`halley::net::bind_listener`: a listener per thread with SO_REUSEPORT,
//! TCP_NODELAY, TCP_DEFER_ACCEPT, the same backlog), reads at once after `accept` (the
//! deferred listener hands over connections whose request is already there), writes,
//! and closes. No timers, no parsing beyond the blank line that ends a head, no state
//! kept for a connection that answered on its first read. Whatever Halley spends per
//! new-connection poll beyond this program is Halley's own.

use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use slab::Slab;

/// The answer: what nginx's `return 200 "ok\n"` sends, less its `Server` and `Date`.
const ANSWER: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n";

const LISTENER: Token = Token(usize::MAX);

/// Serves on `listen` with `threads` event loops until killed.
pub fn serve(listen: SocketAddr, threads: usize, defer_accept: Duration) -> std::io::Result<()> {
    let mut listeners = Vec::new();
    for _ in 0..threads.max(1) {
        listeners.push(halley::net::bind_listener(listen, true, defer_accept)?);
    }
    eprintln!("minimal-responder: listening on {listen} with {threads} loops");
    let handles: Vec<_> = listeners
        .into_iter()
        .map(|listener| std::thread::spawn(move || run_loop(listener)))
        .collect();
    for handle in handles {
        handle
            .join()
            .map_err(|_| std::io::Error::other("a loop panicked"))??;
    }
    Ok(())
}

/// One loop: accept everything ready, answer what has arrived, and wait for the rest.
fn run_loop(mut listener: TcpListener) -> std::io::Result<()> {
    let mut poll = Poll::new()?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let mut events = Events::with_capacity(1024);
    let mut waiting: Slab<TcpStream> = Slab::new();
    let mut input = [0u8; 4096];
    loop {
        super::wait(&mut poll, &mut events)?;
        for event in events.iter() {
            if event.token() == LISTENER {
                accept_all(&listener, &poll, &mut waiting, &mut input)?;
            } else if let Some(mut stream) = waiting.try_remove(event.token().0) {
                match answer(&mut stream, &mut input) {
                    Outcome::Done => {
                        let _ = poll.registry().deregister(&mut stream);
                    }
                    Outcome::Wait => {
                        let entry = waiting.vacant_entry();
                        let token = Token(entry.key());
                        poll.registry()
                            .reregister(&mut stream, token, Interest::READABLE)?;
                        entry.insert(stream);
                    }
                }
            }
        }
    }
}

fn accept_all(
    listener: &TcpListener,
    poll: &Poll,
    waiting: &mut Slab<TcpStream>,
    input: &mut [u8],
) -> std::io::Result<()> {
    loop {
        match listener.accept() {
            Ok((mut stream, _)) => {
                if let Outcome::Wait = answer(&mut stream, input) {
                    let entry = waiting.vacant_entry();
                    poll.registry().register(
                        &mut stream,
                        Token(entry.key()),
                        Interest::READABLE,
                    )?;
                    entry.insert(stream);
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
            // Out of descriptors or a connection reset before accept: keep serving.
            Err(_) => return Ok(()),
        }
    }
}

enum Outcome {
    /// Answered (or the peer left): the connection closes when dropped.
    Done,
    /// The head has not arrived yet.
    Wait,
}

/// Reads what is there; if a blank line ends it, writes the answer. This program keeps
/// nothing between reads, so a head that arrives in pieces is dropped: the reference is
/// for heads that arrive whole, as the load tester's do.
fn answer(stream: &mut TcpStream, input: &mut [u8]) -> Outcome {
    match stream.read(input) {
        Ok(0) => Outcome::Done,
        Ok(n) if input[..n].ends_with(b"\r\n\r\n") => {
            let _ = stream.write(ANSWER);
            Outcome::Done
        }
        Ok(_) => Outcome::Done,
        Err(e) if e.kind() == ErrorKind::WouldBlock => Outcome::Wait,
        Err(_) => Outcome::Done,
    }
}
