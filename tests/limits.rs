//! Every limit and bad-input row of PROTOCOL.md over real sockets: its answer, its
//! counter, and that nothing else is lost.

mod util;

use std::time::Duration;

use util::{start, start_with, wait_until, Client};

#[test]
fn a_slow_head_gets_408_and_is_closed() {
    // On the defaults, --defer-accept 1s: a connection that sends something is the
    // server's at once and its header timeout runs; a silent one stays with the kernel
    // for about a second, and then gets the same timeout.
    let server = start_with(|c| c.header_timeout = Duration::from_millis(200));
    let mut silent = server.client();
    let mut slow = server.client();
    slow.send(b"GET /sub/x HTTP/1.1\r\nHo");
    let response = slow.response();
    assert_eq!(response.status, 408);
    assert_eq!(response.header("Connection"), Some("close"));
    slow.expect_closed();
    assert_eq!(
        server.counter("connections_accepted"),
        1,
        "the silent connection was handed over before its defer-accept second"
    );
    assert!(
        silent.expect_closed().is_empty(),
        "a connection that sent nothing is closed without an answer"
    );
    assert_eq!(server.counter("header_timeouts"), 2);
    assert_eq!(server.counter("connections_accepted"), 2);
}

#[test]
fn without_defer_accept_a_silent_connection_meets_the_header_timeout_at_once() {
    let server = start_with(|c| {
        c.header_timeout = Duration::from_millis(200);
        c.defer_accept = Duration::ZERO;
    });
    let mut silent = server.client();
    let started = std::time::Instant::now();
    assert!(silent.expect_closed().is_empty());
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "closed after {:?}: the kernel held it as with defer-accept",
        started.elapsed()
    );
    assert_eq!(server.counter("header_timeouts"), 1);
}

#[test]
fn an_oversized_head_gets_431() {
    let server = start();
    let mut client = server.client();
    let big = format!(
        "GET /sub/x HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
        "a".repeat(9000)
    );
    client.send(big.as_bytes());
    assert_eq!(client.response().status, 431);
    client.expect_closed();
    let mut many = server.client();
    let headers: String = (0..100).map(|i| format!("X-{i}: v\r\n")).collect();
    many.send(format!("GET /sub/x HTTP/1.1\r\nHost: t\r\n{headers}\r\n").as_bytes());
    assert_eq!(many.response().status, 431);
    assert_eq!(server.counter("heads_too_large"), 2);
    // A head just under the limit is fine.
    let mut fits = server.client();
    let ok = format!(
        "GET /sub/x?t=poll HTTP/1.1\r\nHost: t\r\nX-Pad: {}\r\n\r\n",
        "a".repeat(8000)
    );
    assert_eq!(fits.exchange(ok.as_bytes()).status, 200);
}

#[test]
fn smuggling_attempts_are_400_and_nothing_behind_them_is_served() {
    let server = start();
    let attempts: &[&[u8]] = &[
        b"GET /sub/x?t=poll HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /sub/y?t=poll HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET /sub/x?t=poll HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nContent-Length: 44\r\n\r\nGET /sub/y?t=poll HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET /sub/x?t=poll HTTP/1.1\r\nHost: t\r\nContent-Length: 0x10\r\n\r\n",
        b"GET /sub/x?t=poll HTTP/1.1\r\nHost: t\r\nTransfer-Encoding : chunked\r\n\r\n",
    ];
    for attempt in attempts {
        let mut client = server.client();
        client.send(attempt);
        let response = client.response();
        assert_eq!(response.status, 400, "{}", String::from_utf8_lossy(attempt));
        assert_eq!(response.header("Connection"), Some("close"));
        assert!(client.expect_closed().is_empty(), "no second answer");
    }
    let mut client = server.client();
    client.send(b"GET /sub/x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n");
    assert_eq!(client.response().status, 501);
    assert_eq!(server.counter("ambiguous_lengths"), 3);
    assert_eq!(server.counter("bad_requests"), 1);
    assert_eq!(server.counter("unknown_codings"), 1);
}

#[test]
fn malformed_requests_are_400() {
    let server = start();
    for raw in [
        &b"NOT HTTP AT ALL\r\n\r\n"[..],
        b"GET /sub/x HTTP/1.1\r\n\r\n",
        b"GET /sub/x HTTP/9.9\r\nHost: t\r\n\r\n",
        b"GET sub/x HTTP/1.1\r\nHost: t\r\n\r\n",
    ] {
        let mut client = server.client();
        client.send(raw);
        assert_eq!(
            client.response().status,
            400,
            "{}",
            String::from_utf8_lossy(raw)
        );
    }
}

#[test]
fn an_idle_keep_alive_connection_is_closed() {
    let server = start_with(|c| c.keepalive_timeout = Duration::from_millis(150));
    let mut client = server.client();
    assert_eq!(
        client
            .exchange(b"GET /sub/k?t=poll HTTP/1.1\r\nHost: t\r\n\r\n")
            .status,
        200
    );
    assert!(client.expect_closed().is_empty());
    assert_eq!(server.counter("keepalive_timeouts"), 1);
}

/// A stream subscriber whose socket never reads, with a small receive buffer.
fn sleeping_subscriber(server: &util::TestServer, channel: &str) -> Client {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(&server.sub.into()).unwrap();
    let mut client = Client::from_stream(socket.into());
    client.get(&format!("/sub/{channel}?t=stream"));
    client.head();
    client
}

#[test]
fn a_subscriber_that_never_reads_is_dropped_over_max_pending() {
    let server = start_with(|c| {
        c.max_pending = 64 << 10;
        c.stream_max_bytes = 1 << 40;
    });
    let _sleeper = sleeping_subscriber(&server, "flood");
    let mut reader = server.client();
    reader.get("/sub/flood?t=stream");
    reader.head();
    reader.prelude("stream");
    server.wait_counter("subscribers", 2);
    let body = "z".repeat(60_000);
    let mut published = 0;
    while server.counter("slow_clients_dropped") == 0 {
        server.publish_ok("flood", &body);
        published += 1;
        assert!(published < 2000, "the sleeper should have been dropped");
        // The reader keeps up and loses nothing.
        let line = reader.chunk_text();
        assert!(line.contains(&format!("\"id\":{published},")));
    }
    assert_eq!(server.counter("slow_clients_dropped"), 1);
    assert_eq!(server.counter("subscribers"), 1, "only the reader is left");
}

#[test]
fn a_subscriber_whose_output_stalls_is_dropped_after_write_timeout() {
    let server = start_with(|c| {
        c.max_pending = 256 << 20;
        c.stream_max_bytes = 1 << 40;
        c.write_timeout = Duration::from_millis(300);
    });
    let _sleeper = sleeping_subscriber(&server, "stall");
    server.wait_counter("subscribers", 1);
    // More than the kernel's socket buffers hold (a few MiB on loopback).
    let body = "z".repeat(60_000);
    for _ in 0..300 {
        server.publish_ok("stall", &body);
    }
    server.wait_counter("write_timeouts", 1);
    assert_eq!(server.counter("slow_clients_dropped"), 0);
    wait_until(
        || server.counter("subscribers") == 0,
        "the stalled subscriber is gone",
    );
}

#[test]
fn over_max_conns_new_connections_get_503_and_the_admin_port_stays_up() {
    let server = start_with(|c| {
        c.max_conns = Some(3);
        c.header_timeout = Duration::from_secs(30);
    });
    let mut held: Vec<Client> = (0..3).map(|_| server.client()).collect();
    wait_until(|| server.counter("connections") == 3, "3 connections");
    let mut refused = server.client();
    let response = refused.response();
    assert_eq!(response.status, 503);
    assert_eq!(response.header("Retry-After"), Some("1"));
    server.wait_counter("conns_refused", 1);
    assert_eq!(
        server.publish_ok("still", "up"),
        1,
        "the admin port answers"
    );
    // The held connections are still served, and a slot frees when one leaves.
    assert_eq!(
        held[0]
            .exchange(b"GET /sub/still?t=poll&since=0 HTTP/1.1\r\nHost: t\r\n\r\n")
            .status,
        200
    );
    held.pop();
    wait_until(|| server.counter("connections") == 2, "a slot frees");
    assert_eq!(server.get("/sub/still?t=poll").status, 200);
}

#[test]
fn publish_limits_and_bad_input() {
    let server = start_with(|c| c.max_message = 10);
    assert_eq!(server.publish("m", "0123456789").0, 201);
    assert_eq!(server.publish("m", "0123456789A").0, 413);
    assert_eq!(server.publish("bad%2Fname", "x").0, 400);
    let mut client = Client::connect(server.admin);
    let response =
        client.exchange(b"POST /pub/m HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\n\xff\xfe");
    assert_eq!(response.status, 400);
    server.close_channel("m");
    assert_eq!(server.publish("m", "late").0, 409);
    let stats = server.stats_json();
    assert_eq!(stats["admin"]["messages_too_large"], 1);
    assert_eq!(stats["admin"]["publishes_to_closed"], 1);
    assert_eq!(stats["admin"]["bad_requests"], 2);
    // Nothing refused was stored: the channel holds exactly the one message and the marker.
    let info = server.admin_get("/channels/m").json();
    assert_eq!(
        (info["last_id"].as_u64(), info["closed"].as_bool()),
        (Some(2), Some(true))
    );
}
