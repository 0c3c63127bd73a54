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
    socket: crate::stream::Stream,
    request: Vec<u8>,
    written: usize,
    input: Vec<u8>,
    sent_ns: u64,
}

/// What one readiness event did to a connection.
enum Outcome {
    /// Its request is under way.
    Pending,
    /// Its answer came whole, with this status.
    Answered(u16),
    /// The connection failed (or the server closed it).
    Failed,
}

/// The state of a process's request loops.
struct RequestLoop<'a> {
    spec: &'a RequestSpec,
    poll: Poll,
    conns: slab::Slab<Conn>,
    sources: Sources,
    /// Readers waiting for their next poll: (when, reader number).
    waiting: BinaryHeap<Reverse<(Instant, usize)>>,
    result: RequestResult,
    /// xorshift state, for start offsets and jitter.
    seed: u64,
    buf: Vec<u8>,
}

/// Runs the loop until `spec.duration` passes or `stop` is set.
pub fn run(spec: &RequestSpec, stop: &AtomicBool) -> std::io::Result<RequestResult> {
    let mut events = Events::with_capacity(1024);
    let mut requests = RequestLoop::new(spec)?;
    let end = Instant::now() + spec.duration;
    while Instant::now() < end && !stop.load(Ordering::Relaxed) {
        requests.open_due_readers();
        let timeout = requests.next_timeout();
        requests.poll.poll(&mut events, Some(timeout))?;
        for event in events.iter() {
            requests.on_ready(event.token().0);
        }
    }
    Ok(requests.result)
}

impl RequestLoop<'_> {
    /// Opens every connection, or (live-blog readers) schedules each first poll at a
    /// random point of the first interval.
    fn new(spec: &RequestSpec) -> std::io::Result<RequestLoop<'_>> {
        let mut requests = RequestLoop {
            spec,
            poll: Poll::new()?,
            conns: slab::Slab::new(),
            sources: Sources::new(&spec.target.addr, spec.sources, spec.offset),
            waiting: BinaryHeap::new(),
            result: RequestResult {
                completed: 0,
                errors: 0,
                latency: Histogram::new_with_bounds(1, 120_000_000, 3).expect("bounds"),
            },
            seed: 0x9E37_79B9_7F4A_7C15u64 ^ spec.offset as u64,
            buf: vec![0u8; 16 * 1024],
        };
        let start = Instant::now();
        for number in 0..spec.concurrency {
            match spec.interval {
                Some(interval) => {
                    let spread = interval.as_nanos().max(1) as u64;
                    let delay = Duration::from_nanos(requests.random() % spread);
                    requests.waiting.push(Reverse((start + delay, number)));
                }
                None => requests.open(number),
            }
        }
        Ok(requests)
    }

    fn random(&mut self) -> u64 {
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        self.seed
    }

    /// Opens connection `number` and sends its request when it is writable.
    fn open(&mut self, number: usize) {
        let tls = self.spec.target.tls.as_ref();
        let Ok(mut socket) = self
            .sources
            .connect(self.spec.target.addr)
            .and_then(|socket| crate::stream::Stream::new(socket, tls))
        else {
            self.result.errors += 1;
            return;
        };
        let entry = self.conns.vacant_entry();
        let interest = Interest::READABLE | Interest::WRITABLE;
        if self
            .poll
            .registry()
            .register(socket.socket(), Token(entry.key()), interest)
            .is_err()
        {
            self.result.errors += 1;
            return;
        }
        let channel = channel_name(self.spec.offset + number, self.spec.channels);
        entry.insert(Conn {
            socket,
            request: self.spec.target.get(&channel, self.spec.keep_alive, ""),
            written: 0,
            input: Vec::new(),
            sent_ns: monotonic_ns(),
        });
    }

    /// Opens the connections of the readers whose next poll is due.
    fn open_due_readers(&mut self) {
        while let Some(Reverse((due, number))) = self.waiting.peek().copied() {
            if due > Instant::now() {
                break;
            }
            self.waiting.pop();
            self.open(number);
        }
    }

    /// How long the poll may sleep: until the next reader is due, at most 50 ms (to
    /// look at the clock and `stop`).
    fn next_timeout(&self) -> Duration {
        self.waiting
            .peek()
            .map_or(Duration::from_millis(50), |Reverse((due, _))| {
                due.saturating_duration_since(Instant::now())
                    .min(Duration::from_millis(50))
            })
    }

    /// A connection is ready: write what is left of its request, read its answer, and
    /// go on with the next request, or close it and open the next connection.
    fn on_ready(&mut self, key: usize) {
        let outcome = match self.conns.get_mut(key) {
            Some(conn) => exchange(conn, &mut self.buf),
            None => return,
        };
        match outcome {
            Outcome::Pending => return,
            Outcome::Failed => self.result.errors += 1,
            Outcome::Answered(status) => {
                let conn = &mut self.conns[key];
                let micros = (monotonic_ns() - conn.sent_ns) / 1000;
                let _ = self.result.latency.record(micros.max(1));
                if (200..400).contains(&status) {
                    self.result.completed += 1;
                } else {
                    self.result.errors += 1;
                }
                if self.spec.keep_alive && self.spec.interval.is_none() {
                    conn.written = 0;
                    conn.sent_ns = monotonic_ns();
                    if let Ok(n) = conn.socket.write(&conn.request) {
                        conn.written = n;
                    }
                    return;
                }
            }
        }
        let mut conn = self.conns.remove(key);
        let _ = self.poll.registry().deregister(conn.socket.socket());
        drop(conn);
        self.next_for(key);
    }

    /// Connection `number` is done: open the next one now, or (live-blog readers) at
    /// its next poll, an interval later, ±jitter.
    fn next_for(&mut self, number: usize) {
        let Some(interval) = self.spec.interval else {
            return self.open(number);
        };
        let spread = self.spec.jitter.as_nanos() as u64;
        let jitter = if spread > 0 {
            self.random() % (2 * spread)
        } else {
            spread
        };
        let wait = (interval.as_nanos() as u64 + jitter).saturating_sub(spread);
        let due = Instant::now() + Duration::from_nanos(wait);
        self.waiting.push(Reverse((due, number)));
    }
}

/// Writes what is left of the connection's request, then reads what has come of its
/// answer.
fn exchange(conn: &mut Conn, buf: &mut [u8]) -> Outcome {
    if conn.written < conn.request.len() {
        match conn.socket.write(&conn.request[conn.written..]) {
            Ok(n) => conn.written += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::NotConnected => {}
            Err(_) => return Outcome::Failed,
        }
    }
    if conn.written < conn.request.len() {
        return Outcome::Pending;
    }
    let mut closed = false;
    loop {
        match conn.socket.read(buf) {
            Ok(0) => {
                closed = true;
                break;
            }
            Ok(n) => conn.input.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(_) => return Outcome::Failed,
        }
    }
    match answer(&conn.input) {
        Answer::Complete { status, len } => {
            conn.input.drain(..len);
            Outcome::Answered(status)
        }
        Answer::Invalid => Outcome::Failed,
        Answer::Partial if closed => Outcome::Failed,
        Answer::Partial => Outcome::Pending,
    }
}
