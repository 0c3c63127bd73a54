//! Held subscribers: `count` connections that each send one request and then read
//! for as long as they live, finding the messages a publisher stamped in whatever
//! framing the server uses (SSE, NDJSON, a forever frame, WebSocket frames, Nchan's or
//! Pushpin's): each
//! message carries `lt:SEQ:NANOS;`, its number and the monotonic time it was published.

use std::io::{ErrorKind, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use mio::{Events, Interest, Poll, Token};

use crate::target::{channel_name, monotonic_ns, Sources, Target};

/// What a subscriber process holds.
#[derive(Debug, Clone)]
pub struct SubscriberSpec {
    /// Where subscribers go: one URL, or several (subscriber `i` to the `i`-th, in
    /// turn: the servers of a cluster, each subscriber on one of them).
    pub targets: Vec<Target>,
    pub channels: usize,
    pub count: usize,
    pub offset: usize,
    pub sources: usize,
    /// Messages each subscriber should get (it stops once every one has them all).
    pub messages: usize,
    /// Count a subscriber as in place once its request is sent (long-polls answer only
    /// when there is something), not when its answer's head arrives.
    pub ready_on_send: bool,
    pub extra_headers: String,
    /// Connections opened a second (0: all at once).
    pub ramp: u64,
}

/// What it saw.
#[derive(Debug)]
pub struct SubscriberResult {
    pub opened: u64,
    pub failed: u64,
    /// Messages received, over all subscribers, once each.
    pub received: u64,
    pub duplicates: u64,
    pub out_of_order: u64,
    /// Microseconds from publishing to arrival.
    pub latency: Histogram<u64>,
}

struct Sub {
    socket: crate::stream::Stream,
    request: Vec<u8>,
    written: usize,
    head_seen: bool,
    /// Bytes of a marker cut by a read boundary.
    carry: Vec<u8>,
    last_seq: u64,
    seen: Vec<u64>,
    got: usize,
}

/// A marker found in a subscriber's bytes.
fn markers(data: &[u8], mut found: impl FnMut(u64, u64)) -> usize {
    // Returns how many bytes at the end may start a marker not complete yet.
    let mut at = 0;
    while let Some(pos) = crate::http::find(&data[at..], b"lt:") {
        let start = at + pos;
        let rest = &data[start + 3..];
        let Some(end) = rest.iter().position(|&b| b == b';') else {
            return data.len() - start;
        };
        let text = std::str::from_utf8(&rest[..end]).unwrap_or("");
        if let Some((seq, ns)) = text.split_once(':') {
            if let (Ok(seq), Ok(ns)) = (seq.parse(), ns.parse()) {
                found(seq, ns);
            }
        }
        at = start + 3 + end;
    }
    data.len().saturating_sub(at).min(2)
}

/// Holds the subscribers; calls `ready` once every one is in place; returns when all
/// have every message, when `stop` is set, or at `deadline`.
pub fn run(
    spec: &SubscriberSpec,
    stop: &AtomicBool,
    deadline: Duration,
    ready: impl FnOnce(),
) -> std::io::Result<SubscriberResult> {
    let mut events = Events::with_capacity(1024);
    let mut held = SubscriberLoop::new(spec)?;
    let mut ready = Some(ready);
    let end = Instant::now() + deadline;
    while Instant::now() < end && !stop.load(Ordering::Relaxed) {
        held.open_due()?;
        if ready.is_some() && held.all_in_place() {
            (ready.take().expect("checked"))();
        }
        if spec.messages > 0 && held.complete + held.result.failed as usize >= spec.count {
            break;
        }
        // While ramping, wake often enough to open the next connections on time.
        let wait = if held.opened_up_to == spec.count {
            50
        } else {
            2
        };
        held.poll
            .poll(&mut events, Some(Duration::from_millis(wait)))?;
        for event in events.iter() {
            held.on_ready(event.token().0, event.is_read_closed());
        }
    }
    Ok(held.result)
}

/// The state of a process's subscribers.
struct SubscriberLoop<'a> {
    spec: &'a SubscriberSpec,
    poll: Poll,
    sources: Sources,
    subs: slab::Slab<Sub>,
    result: SubscriberResult,
    /// Words of each subscriber's seen-bitmap.
    words: usize,
    /// Subscribers `0..opened_up_to` have been opened (or failed to).
    opened_up_to: usize,
    ramp_started: Instant,
    /// Subscribers that have every message.
    complete: usize,
    buf: Vec<u8>,
}

impl SubscriberLoop<'_> {
    fn new(spec: &SubscriberSpec) -> std::io::Result<SubscriberLoop<'_>> {
        Ok(SubscriberLoop {
            spec,
            poll: Poll::new()?,
            sources: Sources::new(&spec.targets[0].addr, spec.sources, spec.offset),
            subs: slab::Slab::with_capacity(spec.count),
            result: SubscriberResult {
                opened: 0,
                failed: 0,
                received: 0,
                duplicates: 0,
                out_of_order: 0,
                latency: Histogram::new_with_bounds(1, 120_000_000, 3).expect("bounds"),
            },
            words: spec.messages.div_ceil(64).max(1),
            opened_up_to: 0,
            ramp_started: Instant::now(),
            complete: 0,
            buf: vec![0u8; 64 * 1024],
        })
    }

    /// Whether every subscriber is in place (or failed).
    fn all_in_place(&self) -> bool {
        self.result.opened + self.result.failed >= self.spec.count as u64
    }

    /// Opens the subscribers the ramp has made due (all at once without one).
    fn open_due(&mut self) -> std::io::Result<()> {
        let spec = self.spec;
        let due = if spec.ramp == 0 {
            spec.count
        } else {
            let elapsed = self.ramp_started.elapsed().as_secs_f64();
            ((elapsed * spec.ramp as f64) as usize + 1).min(spec.count)
        };
        for i in self.opened_up_to..due {
            let channel = channel_name(spec.offset + i, spec.channels);
            let target = &spec.targets[(spec.offset + i) % spec.targets.len()];
            let tls = target.tls.as_ref();
            let Ok(mut socket) = self
                .sources
                .connect(target.addr)
                .and_then(|socket| crate::stream::Stream::new(socket, tls))
            else {
                self.result.failed += 1;
                continue;
            };
            let entry = self.subs.vacant_entry();
            let interest = Interest::READABLE | Interest::WRITABLE;
            self.poll
                .registry()
                .register(socket.socket(), Token(entry.key()), interest)?;
            entry.insert(Sub {
                socket,
                request: target.get(&channel, true, &spec.extra_headers),
                written: 0,
                head_seen: false,
                carry: Vec::new(),
                last_seq: 0,
                seen: vec![0; self.words],
                got: 0,
            });
        }
        self.opened_up_to = self.opened_up_to.max(due);
        Ok(())
    }

    /// A subscriber is ready: send what is left of its request, read what came.
    fn on_ready(&mut self, key: usize, read_closed: bool) {
        let Some(sub) = self.subs.get_mut(key) else {
            return;
        };
        let mut closed = false;
        if sub.written < sub.request.len() {
            match sub.socket.write(&sub.request[sub.written..]) {
                Ok(n) => {
                    sub.written += n;
                    if sub.written == sub.request.len() && self.spec.ready_on_send {
                        self.result.opened += 1;
                    }
                }
                Err(e)
                    if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::NotConnected => {
                }
                Err(_) => closed = true,
            }
        }
        while !closed {
            match sub.socket.read(&mut self.buf) {
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Ok(0) | Err(_) => closed = true,
                Ok(n) => {
                    take(
                        self.spec,
                        &mut self.result,
                        &mut self.complete,
                        sub,
                        &self.buf[..n],
                    );
                    // A short read emptied the socket; more data raises a new edge, so
                    // only a peer's close needs the read that finds 0.
                    if n < self.buf.len() && !read_closed {
                        break;
                    }
                }
            }
        }
        if closed {
            if !sub.head_seen && !self.spec.ready_on_send {
                self.result.failed += 1;
            }
            let mut sub = self.subs.remove(key);
            let _ = self.poll.registry().deregister(sub.socket.socket());
        }
    }
}

/// Bytes a subscriber read: its answer's head (counted in place or failed), then the
/// markers in whatever framing, each counted once, in order or not, with its latency.
fn take(
    spec: &SubscriberSpec,
    result: &mut SubscriberResult,
    complete: &mut usize,
    sub: &mut Sub,
    read: &[u8],
) {
    let now = monotonic_ns();
    let mut data = std::mem::take(&mut sub.carry);
    data.extend_from_slice(read);
    if !sub.head_seen {
        if let Some(head_end) = crate::http::find(&data, b"\r\n\r\n") {
            sub.head_seen = true;
            let ok = crate::http::status(&data[..head_end]) == Some(spec.targets[0].held_status());
            if !spec.ready_on_send {
                if ok {
                    result.opened += 1
                } else {
                    result.failed += 1
                }
            }
        }
    }
    let keep = markers(&data, |seq, ns| {
        let word = (seq as usize / 64).min(sub.seen.len() - 1);
        let bit = 1u64 << (seq % 64);
        if sub.seen[word] & bit != 0 {
            result.duplicates += 1;
            return;
        }
        sub.seen[word] |= bit;
        if seq < sub.last_seq {
            result.out_of_order += 1;
        }
        sub.last_seq = seq;
        sub.got += 1;
        result.received += 1;
        let _ = result
            .latency
            .record(((now.saturating_sub(ns)) / 1000).max(1));
        if sub.got == spec.messages {
            *complete += 1;
        }
    });
    sub.carry = data[data.len() - keep..].to_vec();
}

#[cfg(test)]
mod tests {
    use super::markers;

    #[test]
    fn markers_in_any_framing_and_across_reads() {
        let mut got = Vec::new();
        let keep = markers(
            b"data: {\"data\":\"lt:1:500;\"}\n\nid: 2\ndata: lt:2:600;xx lt:3:7",
            |s, n| got.push((s, n)),
        );
        assert_eq!(got, [(1, 500), (2, 600)]);
        assert_eq!(keep, 6, "the cut marker is kept for the next read");
        let mut more = Vec::new();
        markers(b"lt:3:700;", |s, n| more.push((s, n)));
        assert_eq!(more, [(3, 700)]);
    }
}
