//! Helpers shared by the integration tests: a server on ephemeral loopback ports, and a
//! raw HTTP/1.1 client that sends exact bytes and reads exactly what comes back, with
//! every wait bounded by `WAIT`.
#![allow(dead_code)]

pub mod binary;
pub mod redis;
pub mod tls;
pub mod ws;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use halley::config::Config;
use halley::server::Server;
use halley::stats::Stats;

/// The longest any test waits for anything.
pub const WAIT: Duration = Duration::from_secs(5);

/// A server on 127.0.0.1 with ephemeral ports, shut down when dropped.
pub struct TestServer {
    server: Option<Server>,
    pub sub: SocketAddr,
    /// The subscriber port over TLS, with `tls_listen`.
    pub tls: Option<SocketAddr>,
    pub admin: SocketAddr,
    pub stats: Arc<Stats>,
}

/// A server with the default settings (two loops).
pub fn start() -> TestServer {
    start_with(|_| {})
}

/// A server with settings changed by `change`.
pub fn start_with(change: impl FnOnce(&mut Config)) -> TestServer {
    let mut config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        admin_listen: "127.0.0.1:0".parse().unwrap(),
        threads: 2,
        ..Config::default()
    };
    change(&mut config);
    let server = Server::start(config).expect("server starts");
    TestServer {
        sub: server.subscriber_addr(),
        tls: server.tls_addr(),
        admin: server.admin_addr(),
        stats: server.stats().clone(),
        server: Some(server),
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown();
        }
    }
}

impl TestServer {
    /// A new connection to the subscriber port.
    pub fn client(&self) -> Client {
        Client::connect(self.sub)
    }

    /// Publishes `body` to `channel`; returns the status and the answer's body.
    pub fn publish(&self, channel: &str, body: &str) -> (u16, String) {
        let raw = format!(
            "POST /pub/{channel} HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let response = Client::connect(self.admin).exchange(raw.as_bytes());
        (response.status, response.text())
    }

    /// Publishes and checks for `201`; returns the event's id.
    pub fn publish_ok(&self, channel: &str, body: &str) -> u64 {
        let (status, text) = self.publish(channel, body);
        assert_eq!(status, 201, "{text}");
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        json["id"].as_u64().unwrap()
    }

    /// Closes `channel`; returns the close marker's id.
    pub fn close_channel(&self, channel: &str) -> u64 {
        let raw = format!("POST /close/{channel} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        let response = Client::connect(self.admin).exchange(raw.as_bytes());
        assert_eq!(response.status, 200, "{}", response.text());
        let json: serde_json::Value = serde_json::from_str(&response.text()).unwrap();
        json["id"].as_u64().unwrap()
    }

    /// `GET path` on the admin port, one request on its own connection.
    pub fn admin_get(&self, path: &str) -> Response {
        Client::connect(self.admin).exchange(
            format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes(),
        )
    }

    /// `GET path` on the subscriber port, one request on its own connection.
    pub fn get(&self, path: &str) -> Response {
        self.client().exchange(
            format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes(),
        )
    }

    /// The `/stats` document.
    pub fn stats_json(&self) -> serde_json::Value {
        serde_json::from_str(&self.admin_get("/stats").text()).unwrap()
    }

    /// A loop counter summed over the loops, read in-process.
    pub fn counter(&self, name: &str) -> u64 {
        let json: serde_json::Value = serde_json::from_str(&self.stats.to_json()).unwrap();
        json[name]
            .as_u64()
            .unwrap_or_else(|| panic!("no counter {name}"))
    }

    /// Waits until a loop counter reaches `at_least` (subscriptions are registered by
    /// another thread; this is the event the test waits for).
    pub fn wait_counter(&self, name: &str, at_least: u64) {
        wait_until(
            || self.counter(name) >= at_least,
            &format!("{name} >= {at_least}"),
        );
    }
}

/// Polls `condition` until it holds, failing the test after `WAIT`.
pub fn wait_until(mut condition: impl FnMut() -> bool, what: &str) {
    let deadline = Instant::now() + WAIT;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Polls `value` until its number equals `want`, failing the test after `WAIT` with
/// the last value and its detail.
pub fn wait_until_eq(mut value: impl FnMut() -> (u64, String), want: u64, what: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        let (got, detail) = value();
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what} = {want}: last {got} ({detail})"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A response as read off the wire.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The head exactly as received.
    pub raw_head: String,
}

impl Response {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone()).expect("UTF-8 body")
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.text()))
    }
}

/// A raw HTTP client on one connection, plain or over TLS.
pub struct Client {
    pub stream: TcpStream,
    /// The TLS client over `stream`, if the connection speaks TLS.
    pub tls: Option<Box<rustls::ClientConnection>>,
    /// Received and not yet consumed.
    buf: Vec<u8>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect_timeout(&addr, WAIT).expect("connect");
        Client::from_stream(stream)
    }

    /// A client over a socket connected elsewhere (with special options, say).
    pub fn from_stream(stream: TcpStream) -> Client {
        stream.set_nodelay(true).unwrap();
        Client {
            stream,
            tls: None,
            buf: Vec::new(),
        }
    }

    /// A client over TLS to `addr`, with its handshake done (bounded by `WAIT`).
    pub fn connect_tls(addr: SocketAddr, config: Arc<rustls::ClientConfig>) -> Client {
        Client::tls_over(
            TcpStream::connect_timeout(&addr, WAIT).expect("connect"),
            config,
        )
    }

    /// A client over TLS on a socket connected elsewhere, with its handshake done.
    pub fn tls_over(stream: TcpStream, config: Arc<rustls::ClientConfig>) -> Client {
        let mut client = Client::from_stream(stream);
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let mut tls = rustls::ClientConnection::new(config, name).expect("TLS client");
        client.stream.set_read_timeout(Some(WAIT)).unwrap();
        while tls.is_handshaking() {
            tls.complete_io(&mut client.stream).expect("TLS handshake");
        }
        client.tls = Some(Box::new(tls));
        client
    }

    /// Writes through TLS when the connection speaks it.
    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match &mut self.tls {
            Some(tls) => rustls::Stream::new(tls.as_mut(), &mut self.stream).write_all(bytes),
            None => self.stream.write_all(bytes),
        }
    }

    /// Reads through TLS when the connection speaks it.
    fn read_some(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match &mut self.tls {
            Some(tls) => rustls::Stream::new(tls.as_mut(), &mut self.stream).read(buf),
            None => self.stream.read(buf),
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.write_all(bytes).expect("send");
    }

    /// Sends a GET for `path` (keep-alive).
    pub fn get(&mut self, path: &str) {
        self.send(format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
    }

    /// Sends `raw` and reads one response.
    pub fn exchange(&mut self, raw: &[u8]) -> Response {
        self.send(raw);
        self.response()
    }

    /// Reads more bytes into the buffer; returns false at end of stream.
    fn fill(&mut self, deadline: Instant) -> bool {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "timed out reading; have {:?}",
            String::from_utf8_lossy(&self.buf)
        );
        self.stream.set_read_timeout(Some(left)).unwrap();
        let mut chunk = [0u8; 16384];
        match self.read_some(&mut chunk) {
            Ok(0) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
            Err(e) if e.kind() == ErrorKind::ConnectionReset => false,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                panic!(
                    "timed out reading; have {:?}",
                    String::from_utf8_lossy(&self.buf)
                )
            }
            Err(e) => panic!("read: {e}"),
        }
    }

    /// Takes bytes through the first `needle`, reading as needed.
    pub fn read_through(&mut self, needle: &[u8]) -> Vec<u8> {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(at) = self.buf.windows(needle.len()).position(|w| w == needle) {
                return self.buf.drain(..at + needle.len()).collect();
            }
            assert!(
                self.fill(deadline),
                "closed before {:?}; have {:?}",
                String::from_utf8_lossy(needle),
                String::from_utf8_lossy(&self.buf)
            );
        }
    }

    /// Takes exactly `n` bytes.
    pub fn read_exact(&mut self, n: usize) -> Vec<u8> {
        let deadline = Instant::now() + WAIT;
        while self.buf.len() < n {
            assert!(
                self.fill(deadline),
                "closed with {} of {n} bytes",
                self.buf.len()
            );
        }
        self.buf.drain(..n).collect()
    }

    /// Reads a response head.
    pub fn head(&mut self) -> Response {
        let raw = String::from_utf8(self.read_through(b"\r\n\r\n")).expect("UTF-8 head");
        let mut lines = raw.split("\r\n");
        let status_line = lines.next().unwrap();
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("status line {status_line:?}"));
        let headers = lines
            .filter(|l| !l.is_empty())
            .map(|l| {
                let (name, value) = l.split_once(':').expect("header line");
                (name.to_string(), value.trim().to_string())
            })
            .collect();
        Response {
            status,
            headers,
            body: Vec::new(),
            raw_head: raw,
        }
    }

    /// Reads one whole response (not to a HEAD request).
    pub fn response(&mut self) -> Response {
        let mut response = self.head();
        if response.status == 100 {
            response = self.head();
        }
        if matches!(response.status, 204 | 304) {
            return response;
        }
        if let Some(len) = response.header("Content-Length") {
            response.body = self.read_exact(len.parse().unwrap());
        } else if response.header("Transfer-Encoding") == Some("chunked") {
            while let Some(chunk) = self.chunk() {
                response.body.extend_from_slice(&chunk);
            }
        } else {
            response.body = self.until_close();
        }
        response
    }

    /// Reads one chunk of a chunked body; `None` at the last chunk.
    pub fn chunk(&mut self) -> Option<Vec<u8>> {
        let line = self.read_through(b"\r\n");
        let size_text = std::str::from_utf8(&line[..line.len() - 2]).unwrap();
        let size = usize::from_str_radix(size_text, 16)
            .unwrap_or_else(|_| panic!("chunk size {size_text:?}"));
        if size == 0 {
            assert_eq!(self.read_exact(2), b"\r\n", "end of chunked body");
            return None;
        }
        let data = self.read_exact(size);
        assert_eq!(self.read_exact(2), b"\r\n", "chunk trailer");
        Some(data)
    }

    /// Reads what a stream sends right after its head, checking it: SSE's `retry:`
    /// line; the heartbeat that `stream` starts with; the forever frame's padded
    /// document start and its heartbeat call.
    pub fn prelude(&mut self, transport: &str) {
        match transport {
            "sse" => assert_eq!(self.chunk_text(), "retry: 2000\n\n"),
            "stream" => assert_eq!(self.chunk_text(), "{\"hb\":1}\n"),
            "iframe" => {
                let start = self.chunk_text();
                assert!(
                    start.starts_with("<!DOCTYPE html>") && start.len() > 1024,
                    "{start}"
                );
                let call = self.chunk_text();
                assert!(
                    call.starts_with("<script>") && call.ends_with("({\"hb\":1});</script>\n"),
                    "{call}"
                );
            }
            other => panic!("no prelude for {other}"),
        }
    }

    /// Reads one chunk and returns it as text.
    pub fn chunk_text(&mut self) -> String {
        String::from_utf8(self.chunk().expect("a chunk, not the end")).unwrap()
    }

    /// Reads everything until the server closes.
    pub fn until_close(&mut self) -> Vec<u8> {
        let deadline = Instant::now() + WAIT;
        while self.fill(deadline) {}
        std::mem::take(&mut self.buf)
    }

    /// Asserts the server closes the connection (after anything still unread).
    pub fn expect_closed(&mut self) -> Vec<u8> {
        self.until_close()
    }

    /// Whether anything arrives within `window` (a bounded check that nothing was sent).
    pub fn nothing_within(&mut self, window: Duration) -> bool {
        if !self.buf.is_empty() {
            return false;
        }
        self.stream.set_read_timeout(Some(window)).unwrap();
        let mut byte = [0u8; 1];
        match self.read_some(&mut byte) {
            Ok(0) => false,
            Ok(_) => {
                self.buf.push(byte[0]);
                false
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => true,
            Err(_) => false,
        }
    }
}

/// A path named `name` in this test binary's own scratch directory (`halley-{test}-{pid}`
/// under the system's temporary directory), with no file there yet.
pub fn scratch(test: &str, name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("halley-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    let _ = std::fs::remove_file(&path);
    path
}
