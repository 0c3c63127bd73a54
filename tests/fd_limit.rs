//! The real binary at the file-descriptor limit: `--max-conns` derived from the limit
//! leaves room for the admin port; past the limit itself, connections are refused
//! with 503 through a reserve descriptor, without spinning, and the admin port still
//! answers.

mod util;

use std::time::Duration;

use util::{binary, wait_until, Client, Response};

/// Opens `count` connections and returns them with the answers of those refused.
fn open(addr: std::net::SocketAddr, count: usize) -> Vec<std::net::TcpStream> {
    (0..count)
        .map(|_| std::net::TcpStream::connect(addr).expect("connect"))
        .collect()
}

/// Reads the 503 of a refused connection, or `None` if it was kept. Call once the
/// counters say every connection was dealt with: refusals are counted after they
/// are written, and loopback delivers at once.
fn refusal(stream: &std::net::TcpStream) -> Option<Response> {
    stream.set_nonblocking(true).unwrap();
    let mut probe = [0u8; 1];
    let answered = matches!(stream.peek(&mut probe), Ok(n) if n > 0);
    stream.set_nonblocking(false).unwrap();
    answered.then(|| Client::from_stream(stream.try_clone().unwrap()).response())
}

/// Connections kept plus connections refused, per `/stats`.
fn dealt_with(halley: &binary::Halley) -> u64 {
    let stats = halley.stats();
    ["connections", "conns_refused", "fd_refusals"]
        .iter()
        .map(|k| stats[k].as_u64().unwrap())
        .sum()
}

#[test]
fn max_conns_from_the_limit_leaves_the_admin_port_room() {
    // 128 descriptors, 64 + 8 (admin) + 4 per loop held back: 48 subscriber connections.
    let halley = binary::spawn(
        &["--admin-max-conns", "8", "--header-timeout", "30s"],
        Some(128),
    );
    let streams = open(halley.sub, 60);
    wait_until(
        || dealt_with(&halley) == 60,
        "every connection kept or refused",
    );
    let stats = halley.stats();
    assert_eq!(stats["connections"], 48);
    let refused: Vec<Response> = streams.iter().filter_map(refusal).collect();
    assert_eq!(refused.len(), 12);
    assert!(refused
        .iter()
        .all(|r| r.status == 503 && r.header("Retry-After") == Some("1")));
}

#[test]
fn past_the_descriptor_limit_refusals_are_clean_and_cost_no_cpu() {
    let halley = binary::spawn(
        &["--max-conns", "1000", "--header-timeout", "30s"],
        Some(128),
    );
    let streams = open(halley.sub, 140);
    // The admin port answers even with every descriptor in use.
    wait_until(
        || dealt_with(&halley) == 140,
        "every connection kept or refused",
    );
    let kept = halley.stats()["connections"].as_u64().unwrap();
    assert!(kept > 80 && kept < 128, "{kept} connections kept");
    let refused: Vec<Response> = streams.iter().filter_map(refusal).collect();
    assert!(!refused.is_empty());
    assert!(refused.iter().all(|r| r.status == 503));
    // More connections keep arriving while the process is full; it must not spin.
    let before = halley.cpu_ticks();
    let extra = open(halley.sub, 20);
    // A measurement window, not a wait for an event: CPU used while full and idle.
    std::thread::sleep(Duration::from_millis(1000));
    let used = halley.cpu_ticks() - before;
    assert!(
        used < 20,
        "{used} ticks of CPU in a second while full: an accept spin?"
    );
    wait_until(
        || dealt_with(&halley) == 160,
        "the extra connections refused",
    );
    assert!(extra.iter().filter_map(refusal).all(|r| r.status == 503));
    // Once connections close, new ones are served again.
    drop(streams);
    drop(extra);
    wait_until(
        || halley.stats()["connections"].as_u64() == Some(0),
        "connections closed",
    );
    let mut client = Client::connect(halley.sub);
    assert_eq!(
        client
            .exchange(b"GET /sub/x?t=poll HTTP/1.1\r\nHost: t\r\n\r\n")
            .status,
        200
    );
}
