//! The real binary: started on ephemeral ports, stopped with SIGTERM and SIGINT; streams
//! and held polls end cleanly and the process exits within 2 s.

mod util;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use util::Client;

/// The child process, killed and reaped if a test fails before it exits.
struct Halley(Child);

impl Drop for Halley {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `halley` on ephemeral loopback ports; returns it and its two addresses, read
/// from its start-up log line.
fn spawn_halley() -> (Halley, std::net::SocketAddr, std::net::SocketAddr) {
    let child = Command::new(env!("CARGO_BIN_EXE_halley"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--threads",
            "2",
        ])
        .env_remove("RUST_LOG")
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn halley");
    let mut child = Halley(child);
    let stderr = child.0.stderr.take().unwrap();
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = sender.send(line);
        }
    });
    let deadline = Instant::now() + util::WAIT;
    loop {
        let line = receiver
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("the start-up line");
        if let Some(rest) = line.split("subscribers on ").nth(1) {
            let sub = rest.split(' ').next().unwrap().parse().unwrap();
            let admin = line
                .rsplit("admin on ")
                .next()
                .unwrap()
                .trim()
                .parse()
                .unwrap();
            return (child, sub, admin);
        }
    }
}

fn wait_exit(child: &mut Halley, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "halley did not exit within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn stop_with(signal: i32) {
    let (mut child, sub, admin) = spawn_halley();
    let mut stream = Client::connect(sub);
    stream.get("/sub/s?t=stream");
    stream.head();
    let mut sse = Client::connect(sub);
    sse.get("/sub/s?t=sse");
    sse.head();
    sse.chunk();
    let mut held = Client::connect(sub);
    held.get("/sub/s?t=longpoll");
    // Held: it is answered once something is published, which proves it is registered.
    let mut publisher = Client::connect(admin);
    let mut probe = Client::connect(sub);
    probe.get("/sub/probe?t=longpoll");
    util::wait_until(
        || {
            let stats = publisher
                .exchange(b"GET /stats HTTP/1.1\r\nHost: t\r\n\r\n")
                .json();
            stats["subscribers"].as_u64() == Some(4)
        },
        "four subscribers",
    );
    let started = Instant::now();
    // SAFETY: kill sends a signal to our own child process.
    assert_eq!(unsafe { libc::kill(child.0.id() as i32, signal) }, 0);
    assert_eq!(stream.chunk(), None, "the stream ends with its last chunk");
    assert_eq!(
        sse.chunk(),
        None,
        "the event stream ends with its last chunk"
    );
    let answer = held.response();
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("Connection"), Some("close"));
    assert_eq!(answer.json()["frames"], serde_json::json!([]));
    stream.expect_closed();
    let status = wait_exit(&mut child, Duration::from_secs(2));
    assert!(status.success(), "{status:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[test]
fn sigterm_ends_streams_cleanly_and_exits() {
    stop_with(libc::SIGTERM);
}

#[test]
fn sigint_does_the_same() {
    stop_with(libc::SIGINT);
}

#[test]
fn help_explains_every_flag() {
    let output = Command::new(env!("CARGO_BIN_EXE_halley"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8(output.stdout).unwrap();
    for flag in [
        "--listen",
        "--admin-listen",
        "--threads",
        "--history",
        "--max-message",
        "--max-channels",
        "--poll-timeout",
        "--heartbeat",
        "--stream-max-bytes",
        "--stream-max-age",
        "--sse-retry",
        "--allow-origin",
        "--header-timeout",
        "--max-head",
        "--keepalive-timeout",
        "--max-pending",
        "--write-timeout",
        "--max-conns",
        "--admin-max-conns",
        "--log-level",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}");
    }
    let bad = Command::new(env!("CARGO_BIN_EXE_halley"))
        .args(["--poll-timeout", "30"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unit"));
}
