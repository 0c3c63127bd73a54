//! The floor for fan-out: a program that holds streams and, for each message published
//! to it, does nothing but one `writev` of the same bytes Halley would send to every
//! held socket. Subscribers get Halley's `t=stream` head and frames (the frame is made
//! by `halley::channel::event::Event`, so the bytes are the same); publishes arrive on a
//! second port as `POST /pub/{channel}` and are answered `201` once every loop has the
//! frame. Loops are Halley's shape (one per thread, SO_REUSEPORT, a `mio::Waker`), so
//! the CPU the fan-out scenario measures here is the cost of the writes themselves:
//! what Halley spends per delivered frame beyond it is Halley's own.

use std::io::{BufRead, BufReader, ErrorKind, IoSlice, Read, Write};
use std::net::{SocketAddr, TcpListener as StdListener};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use halley::channel::event::Event;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;

/// What a stream gets first: a `t=stream` head (Halley's, less its `Date`, charset,
/// CORS and `X-Accel-Buffering` lines) and Halley's first heartbeat.
const STREAM_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nCache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n9\r\n{\"hb\":1}\n\r\n";

const LISTENER: Token = Token(usize::MAX);
const WAKER: Token = Token(usize::MAX - 1);

/// One loop's way in: its queue of frames and the waker that says one is there.
struct LoopHandle {
    frames: Sender<Bytes>,
    waker: Arc<Waker>,
}

/// Serves streams on `listen` with `threads` loops and publishes on `publish` until killed.
pub fn serve(listen: SocketAddr, publish: SocketAddr, threads: usize) -> std::io::Result<()> {
    let mut handles = Vec::new();
    for _ in 0..threads.max(1) {
        let listener = halley::net::bind_listener(listen, true, Duration::ZERO)?;
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let (frames, inbox) = channel();
        handles.push(LoopHandle { frames, waker });
        std::thread::spawn(move || {
            if let Err(e) = run_loop(poll, listener, inbox) {
                eprintln!("writev-floor: loop: {e}");
            }
        });
    }
    eprintln!("writev-floor: streams on {listen}, publishes on {publish}");
    serve_publishes(publish, &handles)
}

/// The publish port: one connection at a time, kept alive; each body becomes the next
/// event of its channel, handed to every loop.
fn serve_publishes(publish: SocketAddr, loops: &[LoopHandle]) -> std::io::Result<()> {
    let listener = StdListener::bind(publish)?;
    let mut id = 0u64;
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        stream.set_nodelay(true)?;
        let mut reader = BufReader::new(stream.try_clone()?);
        let mut writer = stream;
        while let Some((channel, body)) = read_publish(&mut reader) {
            id += 1;
            let event = Event::message(channel.into(), id, &body);
            let frame = event.stream_line(true);
            for handle in loops {
                let _ = handle.frames.send(frame.clone());
                let _ = handle.waker.wake();
            }
            let answer = format!("{{\"id\":{id}}}\n");
            let head = format!(
                "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                answer.len()
            );
            if writer
                .write_all(format!("{head}{answer}").as_bytes())
                .is_err()
            {
                break;
            }
        }
    }
    Ok(())
}

/// Reads one `POST /pub/{channel}` with a `Content-Length` body.
fn read_publish(reader: &mut impl BufRead) -> Option<(String, String)> {
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let channel = line.split(' ').nth(1)?.strip_prefix("/pub/")?.to_string();
    let mut length = 0usize;
    loop {
        line.clear();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().ok()?;
            }
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).ok()?;
    Some((channel, String::from_utf8(body).ok()?))
}

/// One loop: accepts streams and answers them with the head; on a wake-up, writes each
/// queued frame to every stream it holds, one `writev` each.
fn run_loop(
    mut poll: Poll,
    mut listener: TcpListener,
    inbox: Receiver<Bytes>,
) -> std::io::Result<()> {
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let mut events = Events::with_capacity(1024);
    let mut streams: Slab<TcpStream> = Slab::new();
    let mut input = [0u8; 4096];
    loop {
        super::wait(&mut poll, &mut events)?;
        for event in events.iter() {
            match event.token() {
                LISTENER => accept_all(&listener, &poll, &mut streams)?,
                WAKER => {
                    while let Ok(frame) = inbox.try_recv() {
                        let slices = [IoSlice::new(&frame)];
                        for (_, stream) in streams.iter_mut() {
                            let _ = stream.write_vectored(&slices);
                        }
                    }
                }
                Token(key) => read_request(&mut streams, key, &poll, &mut input),
            }
        }
    }
}

fn accept_all(
    listener: &TcpListener,
    poll: &Poll,
    streams: &mut Slab<TcpStream>,
) -> std::io::Result<()> {
    loop {
        match listener.accept() {
            Ok((mut stream, _)) => {
                let entry = streams.vacant_entry();
                poll.registry()
                    .register(&mut stream, Token(entry.key()), Interest::READABLE)?;
                entry.insert(stream);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
            Err(_) => return Ok(()),
        }
    }
}

/// A stream's request (answered with the head once its blank line is in) or its
/// close (the stream is dropped).
fn read_request(streams: &mut Slab<TcpStream>, key: usize, poll: &Poll, input: &mut [u8]) {
    let Some(stream) = streams.get_mut(key) else {
        return;
    };
    match stream.read(input) {
        Ok(n) if n > 0 => {
            if input[..n].ends_with(b"\r\n\r\n") {
                let _ = stream.write(STREAM_HEAD);
            }
        }
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        _ => {
            let mut gone = streams.remove(key);
            let _ = poll.registry().deregister(&mut gone);
        }
    }
}
