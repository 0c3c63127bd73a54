//! The references the benchmarks measure Halley against, run as `halley-load` runs
//! them: the minimal responder answers a request with its fixed 200 and closes; the
//! writev floor delivers every published frame to every stream, in a form the fan-out
//! scenario counts.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `halley-load` reference server, killed when dropped.
struct Reference(Child);

impl Drop for Reference {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A loopback address nothing listens on now (the references bind one port per loop
/// with SO_REUSEPORT, so they cannot take port 0).
fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn spawn(args: &[&str], ports: &[SocketAddr]) -> Reference {
    let child = Command::new(env!("CARGO_BIN_EXE_halley-load"))
        .args(args)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let reference = Reference(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    for addr in ports {
        while TcpStream::connect(addr).is_err() {
            assert!(Instant::now() < deadline, "nothing listens on {addr}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    reference
}

#[test]
fn the_minimal_responder_answers_once_and_closes() {
    let addr = free_addr();
    let _responder = spawn(
        &["minimal-responder", "--listen", &addr.to_string()],
        &[addr],
    );
    for _ in 0..3 {
        let mut client = TcpStream::connect(addr).unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        let mut answer = Vec::new();
        client.read_to_end(&mut answer).unwrap();
        let text = String::from_utf8(answer).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(text.ends_with("\r\n\r\nok\n"), "{text}");
    }
}

#[test]
fn the_writev_floor_delivers_every_frame_to_every_stream() {
    let (streams, publish) = (free_addr(), free_addr());
    let floor = spawn(
        &[
            "writev-floor",
            "--listen",
            &streams.to_string(),
            "--publish",
            &publish.to_string(),
        ],
        &[streams, publish],
    );
    let output = Command::new(env!("CARGO_BIN_EXE_halley-load"))
        .args(["fanout", "--url"])
        .arg(format!("http://{streams}/sub/{{channel}}?t=stream"))
        .arg("--pub-url")
        .arg(format!("http://{publish}/pub/{{channel}}"))
        .args(["--count", "200", "--channels", "1", "--messages", "4"])
        .args(["--interval", "20ms", "--procs", "2", "--json"])
        .arg("--server-pid")
        .arg(floor.0.id().to_string())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(report["subscribers"], 200, "{report}");
    assert_eq!(report["delivered"], 800, "{report}");
    assert_eq!(report["lost"], 0, "{report}");
    assert_eq!(report["out_of_order"], 0, "{report}");
}
