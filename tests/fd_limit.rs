//! The real binary at the file-descriptor limit: `--max-conns` derived from the limit
//! leaves room for the admin port; past the limit itself, connections are refused
//! with 503 through a reserve descriptor, without spinning, and the admin port still
//! answers.

mod util;

use std::time::Duration;

use util::{binary, wait_until, wait_until_eq, Client, Response};

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
fn dealt_with(halley: &binary::Halley) -> (u64, String) {
    let stats = halley.stats();
    let keys = ["connections", "conns_refused", "fd_refusals"];
    let total = keys.iter().map(|k| stats[k].as_u64().unwrap()).sum();
    let detail = keys
        .iter()
        .map(|k| format!("{k}={}", stats[k]))
        .collect::<Vec<_>>()
        .join(" ");
    (total, detail)
}

#[test]
fn max_conns_from_the_limit_leaves_the_admin_port_room() {
    // 128 descriptors, 64 + 8 (admin) + 4 per loop held back: 48 subscriber connections.
    let halley = binary::spawn_limited(
        &["--admin-max-conns", "8", "--header-timeout", "30s"],
        Some(128),
        0,
    );
    assert!(
        halley.start_line.contains("at most 48 connections"),
        "{}",
        halley.start_line
    );
    let streams = open(halley.sub, 60);
    wait_until_eq(|| dealt_with(&halley), 60, "connections kept or refused");
    let stats = halley.stats();
    assert_eq!(stats["connections"], 48);
    let refused: Vec<Response> = streams.iter().filter_map(refusal).collect();
    assert_eq!(refused.len(), 12);
    assert!(refused
        .iter()
        .all(|r| r.status == 503 && r.header("Retry-After") == Some("1")));
}

#[test]
fn a_max_conns_above_the_limit_is_lowered_to_fit() {
    let halley = binary::spawn_limited(
        &["--admin-max-conns", "8", "--max-conns", "1000"],
        Some(128),
        0,
    );
    assert!(
        halley.start_line.contains("at most 48 connections"),
        "{}",
        halley.start_line
    );
}

#[test]
fn out_of_descriptors_refusals_are_clean_cost_no_cpu_and_the_admin_port_answers() {
    // 80 descriptors the server does not know of: it runs out long before --max-conns.
    let halley = binary::spawn_limited(
        &["--admin-max-conns", "8", "--header-timeout", "30s"],
        Some(128),
        80,
    );
    let streams = open(halley.sub, 60);
    wait_until_eq(|| dealt_with(&halley), 60, "connections kept or refused");
    let stats = halley.stats();
    // Running out is counted each time; a refusal after it may be counted as a
    // descriptor refusal or, once the limit was lowered, as a --max-conns refusal.
    assert!(stats["fd_exhaustions"].as_u64().unwrap() > 0, "{stats}");
    let kept = stats["connections"].as_u64().unwrap();
    assert!(kept < 48, "{kept} connections kept");
    let refused: Vec<Response> = streams.iter().filter_map(refusal).collect();
    assert_eq!(refused.len() as u64, 60 - kept);
    assert!(refused.iter().all(|r| r.status == 503));
    // More connections keep arriving while the process is full; it must not spin.
    let before = halley.cpu_ticks();
    let extra = open(halley.sub, 20);
    // A measurement window, not a wait for an event: CPU used while full.
    std::thread::sleep(Duration::from_millis(1000));
    let used = halley.cpu_ticks() - before;
    assert!(
        used < 20,
        "{used} ticks of CPU in a second while full: an accept spin?"
    );
    wait_until_eq(|| dealt_with(&halley), 80, "connections kept or refused");
    // None of the 20 was kept (the count of kept ones did not move): each got its 503.
    assert_eq!(halley.stats()["connections"].as_u64(), Some(kept));
    let refused_extra: Vec<Response> = extra.iter().filter_map(refusal).collect();
    assert_eq!(refused_extra.len(), 20, "every extra connection answered");
    assert!(refused_extra.iter().all(|r| r.status == 503));
    // The admin port answers, again and again, with every descriptor in use.
    for _ in 0..20 {
        assert_eq!(halley.stats()["connections"].as_u64(), Some(kept));
    }
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
