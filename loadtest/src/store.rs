//! Storage benchmarks, the same work against Halley and Redis: `publish-rate` (closed-loop
//! publishers, each on its own connection, each request timed until its answer) and
//! `catchup` (read back a channel's events from the start, timed). Halley is spoken to
//! over HTTP (`POST /pub/{channel}`, `GET /sub/{channel}?t=stream&since=0`); Redis over
//! RESP (`XADD {channel} * data PAYLOAD`, `XRANGE` in pages), so both store and return
//! the same payloads.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::http::read_answer;
use crate::procs::new_histogram;
use crate::target::Target;

/// Where the events go: Halley's publish URL, or a Redis server (`redis://host:port`).
#[derive(Debug, Clone)]
pub enum Store {
    Halley(Target),
    Redis(String),
}

impl Store {
    pub fn parse(url: &str) -> Result<Store, String> {
        match url.strip_prefix("redis://") {
            Some(addr) => Ok(Store::Redis(addr.trim_end_matches('/').to_string())),
            None => Target::parse(url).map(Store::Halley),
        }
    }

    fn addr(&self) -> String {
        match self {
            Store::Halley(target) => target.addr.to_string(),
            Store::Redis(addr) => addr.clone(),
        }
    }
}

/// One connection to the store.
struct Connection {
    stream: BufReader<TcpStream>,
    store: Store,
    request: Vec<u8>,
}

impl Connection {
    fn open(store: &Store) -> Result<Connection, String> {
        let stream =
            TcpStream::connect(store.addr()).map_err(|e| format!("{}: {e}", store.addr()))?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .map_err(|e| e.to_string())?;
        Ok(Connection {
            stream: BufReader::new(stream),
            store: store.clone(),
            request: Vec::with_capacity(1024),
        })
    }

    /// Stores `payload` in `channel`; returns when the store has answered.
    fn publish(&mut self, channel: &str, payload: &[u8]) -> Result<(), String> {
        self.request.clear();
        match &self.store {
            Store::Halley(target) => {
                let _ = write!(
                    self.request,
                    "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n\r\n",
                    target.path_for(channel),
                    target.host,
                    payload.len()
                );
                self.request.extend_from_slice(payload);
            }
            Store::Redis(_) => {
                push_resp_command(
                    &mut self.request,
                    &[b"XADD", channel.as_bytes(), b"*", b"data", payload],
                );
            }
        }
        self.stream
            .get_mut()
            .write_all(&self.request)
            .map_err(|e| e.to_string())?;
        match &self.store {
            Store::Halley(_) => self.read_http(),
            Store::Redis(_) => read_resp(&mut self.stream).map(drop),
        }
    }

    fn read_http(&mut self) -> Result<(), String> {
        match read_answer(&mut self.stream, &mut Vec::new())? {
            status if (200..300).contains(&status) => Ok(()),
            status => Err(format!("answer {status}")),
        }
    }
}

/// Appends a RESP array of bulk strings.
fn push_resp_command(out: &mut Vec<u8>, parts: &[&[u8]]) {
    let _ = write!(out, "*{}\r\n", parts.len());
    for part in parts {
        let _ = write!(out, "${}\r\n", part.len());
        out.extend_from_slice(part);
        out.extend_from_slice(b"\r\n");
    }
}

/// A RESP reply, as much as the benchmarks need.
#[derive(Debug)]
enum Resp {
    Simple,
    Bulk(Vec<u8>),
    Array(Vec<Resp>),
}

fn read_resp(stream: &mut BufReader<TcpStream>) -> Result<Resp, String> {
    let mut line = String::new();
    if stream.read_line(&mut line).map_err(|e| e.to_string())? == 0 {
        return Err("closed".into());
    }
    let line = line.trim_end();
    let (kind, rest) = line.split_at(1);
    match kind {
        "+" | ":" => Ok(Resp::Simple),
        "-" => Err(format!("redis: {rest}")),
        "$" => {
            let n: i64 = rest.parse().map_err(|_| "bad bulk length")?;
            if n < 0 {
                return Ok(Resp::Simple);
            }
            let mut data = vec![0; n as usize + 2];
            stream.read_exact(&mut data).map_err(|e| e.to_string())?;
            data.truncate(n as usize);
            Ok(Resp::Bulk(data))
        }
        "*" => {
            let n: i64 = rest.parse().map_err(|_| "bad array length")?;
            (0..n.max(0))
                .map(|_| read_resp(stream))
                .collect::<Result<_, _>>()
                .map(Resp::Array)
        }
        _ => Err(format!("unexpected reply {line:?}")),
    }
}

/// What `publish_rate` measured.
pub struct PublishRate {
    pub published: u64,
    pub errors: u64,
    pub elapsed: Duration,
    pub latency: Histogram<u64>,
}

/// `publishers` connections publish `payload`-byte messages over `channels` channels,
/// each one after the other's answer, for `duration`.
pub fn publish_rate(
    store: &Store,
    publishers: usize,
    channels: usize,
    payload: usize,
    duration: Duration,
) -> Result<PublishRate, String> {
    let stop = Arc::new(AtomicBool::new(false));
    let body: Arc<Vec<u8>> = Arc::new((0..payload).map(|i| b'a' + (i % 26) as u8).collect());
    let started = Instant::now();
    let threads: Vec<_> = (0..publishers)
        .map(|p| {
            let (store, stop, body) = (store.clone(), stop.clone(), body.clone());
            std::thread::spawn(move || -> Result<(u64, Histogram<u64>), String> {
                let mut connection = Connection::open(&store)?;
                let mut latency = new_histogram();
                let mut errors = 0;
                let channel = format!("bench-{}", p % channels.max(1));
                while !stop.load(Ordering::Relaxed) {
                    let sent = Instant::now();
                    match connection.publish(&channel, &body) {
                        Ok(()) => {
                            let _ = latency.record((sent.elapsed().as_micros() as u64).max(1));
                        }
                        Err(_) => {
                            errors += 1;
                            connection = Connection::open(&store)?;
                        }
                    }
                }
                Ok((errors, latency))
            })
        })
        .collect();
    std::thread::sleep(duration);
    stop.store(true, Ordering::Relaxed);
    let mut result = PublishRate {
        published: 0,
        errors: 0,
        elapsed: started.elapsed(),
        latency: new_histogram(),
    };
    for thread in threads {
        let (errors, latency) = thread.join().map_err(|_| "publisher panicked")??;
        result.errors += errors;
        result.published += latency.len();
        result.latency.add(&latency).map_err(|e| e.to_string())?;
    }
    Ok(result)
}

/// What `catchup` measured.
pub struct Catchup {
    pub events: u64,
    pub bytes: u64,
    pub elapsed: Duration,
}

/// Fills `channel` with `events` messages of `payload` bytes (through 16 connections),
/// then reads them all back from the start on one connection and times that read.
pub fn catchup(
    store: &Store,
    sub_url: Option<&str>,
    channel: &str,
    events: u64,
    payload: usize,
) -> Result<Catchup, String> {
    let body: Vec<u8> = (0..payload).map(|i| b'a' + (i % 26) as u8).collect();
    let per = events.div_ceil(16);
    let fillers: Vec<_> = (0..16)
        .map(|i| {
            let (store, body, channel) = (store.clone(), body.clone(), channel.to_string());
            let count = per.min(events.saturating_sub(i * per));
            std::thread::spawn(move || -> Result<(), String> {
                let mut connection = Connection::open(&store)?;
                for _ in 0..count {
                    connection.publish(&channel, &body)?;
                }
                Ok(())
            })
        })
        .collect();
    for filler in fillers {
        filler.join().map_err(|_| "filler panicked")??;
    }
    let started = Instant::now();
    let bytes = match store {
        Store::Halley(_) => {
            let url = sub_url.ok_or("catchup against Halley needs --sub-url")?;
            read_halley_stream(&Target::parse(url)?, channel, events)?
        }
        Store::Redis(_) => read_redis_stream(store, channel, events)?,
    };
    Ok(Catchup {
        events,
        bytes,
        elapsed: started.elapsed(),
    })
}

/// Reads a `t=stream` subscription from `since=0` until `events` lines have come.
fn read_halley_stream(target: &Target, channel: &str, events: u64) -> Result<u64, String> {
    let mut stream = TcpStream::connect(target.addr).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "GET {} HTTP/1.1\r\nHost: {}\r\n\r\n",
        target.path_for(channel),
        target.host
    )
    .map_err(|e| e.to_string())?;
    let mut seen = 0u64;
    let mut bytes = 0u64;
    // Each event is counted by its `"id":`, which may straddle two reads: the buffer
    // keeps the last bytes of one read before the next.
    let needle = memchr::memmem::Finder::new(b"\"id\":");
    let keep = needle.needle().len() - 1;
    let mut buffer = vec![0u8; keep + (1 << 16)];
    let mut kept = 0;
    while seen < events {
        let n = stream
            .read(&mut buffer[kept..])
            .map_err(|e| e.to_string())?;
        if n == 0 {
            // A stream ends itself at --stream-max-bytes; resume from where it was.
            return Err(format!("the stream ended after {seen} events"));
        }
        bytes += n as u64;
        let filled = kept + n;
        seen += needle.find_iter(&buffer[..filled]).count() as u64;
        kept = keep.min(filled);
        buffer.copy_within(filled - kept..filled, 0);
    }
    Ok(bytes)
}

/// Reads a Redis stream from the start with `XRANGE`, 1000 entries a page.
fn read_redis_stream(store: &Store, channel: &str, events: u64) -> Result<u64, String> {
    let mut connection = Connection::open(store)?;
    let mut start = b"-".to_vec();
    let mut seen = 0u64;
    let mut bytes = 0u64;
    while seen < events {
        connection.request.clear();
        push_resp_command(
            &mut connection.request,
            &[
                b"XRANGE",
                channel.as_bytes(),
                &start,
                b"+",
                b"COUNT",
                b"1000",
            ],
        );
        connection
            .stream
            .get_mut()
            .write_all(&connection.request)
            .map_err(|e| e.to_string())?;
        let Resp::Array(entries) = read_resp(&mut connection.stream)? else {
            return Err("XRANGE: not an array".into());
        };
        if entries.is_empty() {
            return Err(format!("the stream ended after {seen} events"));
        }
        for entry in &entries {
            let Resp::Array(parts) = entry else { continue };
            if let (Some(Resp::Bulk(id)), Some(Resp::Array(fields))) = (parts.first(), parts.get(1))
            {
                start = [b"(", id.as_slice()].concat();
                bytes += fields
                    .iter()
                    .map(|f| {
                        if let Resp::Bulk(b) = f {
                            b.len() as u64
                        } else {
                            0
                        }
                    })
                    .sum::<u64>();
                seen += 1;
            }
        }
    }
    Ok(bytes)
}
