//! Driving whole connections of the engine with byte strings, for unit tests: no
//! socket, no poll. A `Harness` holds an application and its connections; each
//! connection's byte layer is a `Script` that hands over what the test sends and takes
//! what the connection writes a few bytes at a time. Time moves only when told.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::byte_layer::Script;
use super::{Application, ByteLayer, Connection, Conns, Phase};
use crate::admission::Admission;

/// An application and its connections.
pub struct Harness<A: Application> {
    pub app: A,
    pub conns: Conns<A::Conn>,
    /// What each connection (by key) wrote and the test has not taken yet.
    written: HashMap<usize, Arc<Mutex<Vec<u8>>>>,
}

impl<A: Application> Harness<A> {
    pub fn new(app: A) -> Harness<A> {
        let conns = Conns::new(app.limits(), Arc::new(Admission::new(1024)));
        Harness {
            app,
            conns,
            written: HashMap::new(),
        }
    }

    /// A new connection whose peer reads `per_write` bytes per write.
    pub fn connect(&mut self, per_write: usize) -> usize {
        assert!(self.conns.admission.try_admit());
        let script = Script::new(per_write);
        let written = script.written.clone();
        let io = ByteLayer::Script(script);
        let key = self.conns.insert(Connection::new(io, self.conns.cx.now_ms));
        self.written.insert(key, written);
        key
    }

    fn script(&mut self, key: usize) -> &mut Script {
        match &mut self.conns.get_mut(key).expect("open").io {
            ByteLayer::Script(script) => script,
            _ => unreachable!("the harness makes scripted connections"),
        }
    }

    /// The peer sends `bytes`; the connection is driven as a readiness event would.
    pub fn send(&mut self, key: usize, bytes: &[u8]) {
        self.script(key).unread.extend(bytes);
        self.conns.ready(key, true, false);
        self.conns.drive(&mut self.app, key);
    }

    /// The peer shuts its side.
    pub fn shut(&mut self, key: usize) {
        self.script(key).peer_closed = true;
        self.conns.ready(key, true, true);
        self.conns.drive(&mut self.app, key);
    }

    /// Everything the connection wrote since the last call (also once it is closed).
    pub fn take_output(&mut self, key: usize) -> Vec<u8> {
        let written = self
            .written
            .get(&key)
            .expect("a connection of this harness");
        std::mem::take(&mut *written.lock().expect("test lock"))
    }

    /// Everything the connection wrote, as text.
    pub fn output_text(&mut self, key: usize) -> String {
        String::from_utf8(self.take_output(key)).expect("UTF-8 output")
    }

    /// The peer stops reading: every write is refused from now on.
    pub fn stop_reading(&mut self, key: usize) {
        self.script(key).budget = 0;
    }

    /// The peer reads again: everything waiting is written.
    pub fn resume_reading(&mut self, key: usize) {
        self.script(key).budget = usize::MAX;
        self.conns.ready(key, false, false);
        self.conns.drive(&mut self.app, key);
    }

    /// Moves time on by `ms` and runs the timers due.
    pub fn advance(&mut self, ms: u64) {
        self.conns.cx.now_ms += ms;
        self.conns.expire(&mut self.app);
    }

    /// Advances `ms` to a deadline of the connection and checks it is still open
    /// there, then one millisecond more (a timer fires in the millisecond after its
    /// deadline: loop time is floored) and checks it is closed.
    pub fn closes_just_after(&mut self, key: usize, ms: u64) {
        self.advance(ms);
        assert!(self.is_open(key), "closed at its deadline, {ms} ms: early");
        self.advance(1);
        assert!(!self.is_open(key), "open a millisecond after its deadline");
    }

    /// Whether the connection is still open.
    pub fn is_open(&mut self, key: usize) -> bool {
        self.conns.get_mut(key).is_some()
    }

    /// Its phase, if open.
    pub fn phase(&mut self, key: usize) -> Option<Phase> {
        self.conns.get_mut(key).map(|c| c.http.phase)
    }
}

/// The answers to bad input that the engine gives on every port: the bytes sent, the
/// status line answered, and the `/stats` counter it is counted in.
pub const REFUSALS: &[(&[u8], &str, &str)] = &[
    (
        b"NOT HTTP AT ALL\r\n\r\n",
        "400 Bad Request",
        "bad_requests",
    ),
    (
        b"GET / HTTP/9.9\r\nHost: t\r\n\r\n",
        "400 Bad Request",
        "bad_requests",
    ),
    (b"GET / HTTP/1.1\r\n\r\n", "400 Bad Request", "bad_requests"),
    (
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        "400 Bad Request",
        "bad_requests",
    ),
    (
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        "400 Bad Request",
        "ambiguous_lengths",
    ),
    (
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
        "400 Bad Request",
        "ambiguous_lengths",
    ),
    (
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 0x10\r\n\r\n",
        "400 Bad Request",
        "ambiguous_lengths",
    ),
    (
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n",
        "501 Not Implemented",
        "unknown_codings",
    ),
];

/// A head over the default `--max-head` (8 KiB): `431`, counted in `heads_too_large`.
pub fn oversized_head() -> Vec<u8> {
    let mut head = b"GET / HTTP/1.1\r\nHost: t\r\nX-Big: ".to_vec();
    head.resize(9000, b'a');
    head.extend_from_slice(b"\r\n\r\n");
    head
}

/// Sends each refusal on a new connection and checks its answer, that the connection
/// closes after it, and its counter (read with `counter`).
pub fn check_refusals<A: Application>(harness: &mut Harness<A>, counter: impl Fn(&A, &str) -> u64) {
    let mut cases: Vec<(Vec<u8>, &str, &str)> = REFUSALS
        .iter()
        .map(|(bytes, status, name)| (bytes.to_vec(), *status, *name))
        .collect();
    cases.push((
        oversized_head(),
        "431 Request Header Fields Too Large",
        "heads_too_large",
    ));
    for (bytes, status, name) in cases {
        let before = counter(&harness.app, name);
        let key = harness.connect(7);
        // Whatever follows the bad input is never served.
        let mut sent = bytes.clone();
        sent.extend_from_slice(b"GET /after HTTP/1.1\r\nHost: t\r\n\r\n");
        harness.send(key, &sent);
        let output = harness.output_text(key);
        let shown = String::from_utf8_lossy(&bytes[..bytes.len().min(60)]).into_owned();
        assert!(
            output.starts_with(&format!("HTTP/1.1 {status}\r\n")),
            "{shown:?}: {output:?}"
        );
        assert!(output.contains("\r\nConnection: close\r\n"), "{shown:?}");
        assert_eq!(
            answer_len(&output),
            Some(output.len()),
            "{shown:?}: one answer"
        );
        assert!(!harness.is_open(key), "{shown:?}: closed after its answer");
        assert_eq!(counter(&harness.app, name), before + 1, "{shown:?}: {name}");
    }
}

/// The length of the one answer at the start of `output` (head and body, by its
/// `Content-Length`), if its head is whole.
pub fn answer_len(output: &str) -> Option<usize> {
    let end = output.find("\r\n\r\n")? + 4;
    let length: usize = output[..end]
        .lines()
        .find_map(|line| line.strip_prefix("Content-Length: "))
        .map_or(Some(0), |n| n.parse().ok())?;
    Some(end + length)
}
