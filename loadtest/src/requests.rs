//! Request loops: `concurrency` connections, each sending a request, reading the whole
//! answer, then either sending the next on the same connection (keep-alive) or closing
//! and opening a new one; or, for live-blog readers, waiting `interval` (with jitter)
//! before polling again on a new connection. One mio poll drives them all.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{ErrorKind, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use mio::{Events, Interest, Poll, Token};

use crate::http::{answer, Answer};
use crate::target::{channel_name, monotonic_ns, Sources, Target};

/// What a request loop does.
#[derive(Debug, Clone)]
pub struct RequestSpec {
    pub target: Target,
    pub channels: usize,
    pub concurrency: usize,
    pub keep_alive: bool,
    pub duration: Duration,
    pub sources: usize,
    /// Index of this process's first connection, to spread channels and sources.
    pub offset: usize,
    /// Live-blog readers: poll every `interval`, ±`jitter`, starting spread over
    /// `interval`.
    pub interval: Option<Duration>,
    pub jitter: Duration,
}

/// What it measured.
#[derive(Debug)]
pub struct RequestResult {
    pub completed: u64,
    pub errors: u64,
    /// Microseconds from sending a request to its whole answer.
    pub latency: Histogram<u64>,
}

struct Conn {
    socket: mio::net::TcpStream,
    request: Vec<u8>,
    written: usize,
    input: Vec<u8>,
    sent_ns: u64,
}

/// Runs the loop until `spec.duration` passes or `stop` is set.
pub fn run(spec: &RequestSpec, stop: &AtomicBool) -> std::io::Result<RequestResult> {
    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(1024);
    let mut sources = Sources::new(&spec.target.addr, spec.sources, spec.offset);
    let mut conns: slab::Slab<Conn> = slab::Slab::new();
    let mut result = RequestResult {
        completed: 0,
        errors: 0,
        latency: Histogram::new_with_bounds(1, 120_000_000, 3).expect("bounds"),
    };
    // Readers waiting for their next poll: (when, reader number).
    let mut waiting: BinaryHeap<Reverse<(Instant, usize)>> = BinaryHeap::new();
    let start = Instant::now();
    let end = start + spec.duration;
    let mut seed = 0x9E37_79B9_7F4A_7C15u64 ^ spec.offset as u64;
    let mut random = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let open =
        |poll: &Poll, conns: &mut slab::Slab<Conn>, sources: &mut Sources, number: usize| -> bool {
            let Ok(mut socket) = sources.connect(spec.target.addr) else {
                return false;
            };
            let entry = conns.vacant_entry();
            if poll
                .registry()
                .register(
                    &mut socket,
                    Token(entry.key()),
                    Interest::READABLE | Interest::WRITABLE,
                )
                .is_err()
            {
                return false;
            }
            let channel = channel_name(spec.offset + number, spec.channels);
            entry.insert(Conn {
                socket,
                request: spec.target.get(&channel, spec.keep_alive, ""),
                written: 0,
                input: Vec::new(),
                sent_ns: monotonic_ns(),
            });
            true
        };
    for number in 0..spec.concurrency {
        match spec.interval {
            Some(interval) => {
                let delay = Duration::from_nanos(random() % interval.as_nanos().max(1) as u64);
                waiting.push(Reverse((start + delay, number)));
            }
            None => {
                if !open(&poll, &mut conns, &mut sources, number) {
                    result.errors += 1;
                }
            }
        }
    }
    let mut buf = vec![0u8; 16 * 1024];
    while Instant::now() < end && !stop.load(Ordering::Relaxed) {
        while let Some(Reverse((due, number))) = waiting.peek().copied() {
            if due > Instant::now() {
                break;
            }
            waiting.pop();
            if !open(&poll, &mut conns, &mut sources, number) {
                result.errors += 1;
            }
        }
        let next = waiting
            .peek()
            .map_or(Duration::from_millis(50), |Reverse((due, _))| {
                due.saturating_duration_since(Instant::now())
                    .min(Duration::from_millis(50))
            });
        poll.poll(&mut events, Some(next))?;
        for event in events.iter() {
            let key = event.token().0;
            let Some(conn) = conns.get_mut(key) else {
                continue;
            };
            let mut failed = false;
            let mut done: Option<u16> = None;
            if conn.written < conn.request.len() {
                match conn.socket.write(&conn.request[conn.written..]) {
                    Ok(n) => conn.written += n,
                    Err(e)
                        if e.kind() == ErrorKind::WouldBlock
                            || e.kind() == ErrorKind::NotConnected => {}
                    Err(_) => failed = true,
                }
            }
            if !failed && conn.written == conn.request.len() {
                loop {
                    match conn.socket.read(&mut buf) {
                        Ok(0) => {
                            failed = true;
                            break;
                        }
                        Ok(n) => conn.input.extend_from_slice(&buf[..n]),
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(_) => {
                            failed = true;
                            break;
                        }
                    }
                }
                match answer(&conn.input) {
                    Answer::Complete { status, len } => {
                        conn.input.drain(..len);
                        done = Some(status);
                        failed = false;
                    }
                    Answer::Invalid => failed = true,
                    Answer::Partial => {}
                }
            }
            if let Some(status) = done {
                let micros = (monotonic_ns() - conn.sent_ns) / 1000;
                let _ = result.latency.record(micros.max(1));
                if (200..400).contains(&status) {
                    result.completed += 1;
                } else {
                    result.errors += 1;
                }
                if spec.keep_alive && spec.interval.is_none() {
                    conn.written = 0;
                    conn.sent_ns = monotonic_ns();
                    if let Ok(n) = conn.socket.write(&conn.request) {
                        conn.written = n;
                    }
                    continue;
                }
            } else if !failed {
                continue;
            } else {
                result.errors += 1;
            }
            let mut conn = conns.remove(key);
            let _ = poll.registry().deregister(&mut conn.socket);
            drop(conn);
            match spec.interval {
                Some(interval) => {
                    let spread = spec.jitter.as_nanos() as u64;
                    let jitter = if spread > 0 {
                        random() % (2 * spread)
                    } else {
                        spread
                    };
                    let wait = (interval.as_nanos() as u64 + jitter).saturating_sub(spread);
                    waiting.push(Reverse((Instant::now() + Duration::from_nanos(wait), key)));
                }
                None => {
                    if !open(&poll, &mut conns, &mut sources, key) {
                        result.errors += 1;
                    }
                }
            }
        }
    }
    Ok(result)
}
