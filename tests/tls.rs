//! TLS over real sockets, one test per rule of PROTOCOL.md's "TLS": every transport
//! over TLS 1.3 and 1.2, ALPN, the admin port under TLS, a plain request on the TLS
//! port, handshakes that fail or never finish, and output larger than a record to a
//! reader that falls behind. The certificates are made by the tests. (SIGHUP's reload
//! is tested on the binary, in `tls_reload.rs`.)

mod util;

use std::io::Write;
use std::time::{Duration, Instant};

use util::tls::{TestCert, TLS12, TLS13};
use util::ws::WsClient;
use util::{start_with, wait_until, Client, TestServer};

fn frame(channel: &str, id: u64, data: &str) -> String {
    format!("{{\"ch\":\"{channel}\",\"id\":{id},\"data\":\"{data}\"}}")
}

/// A server with `--tls-listen` on a loopback port and a pair made for the test.
fn tls_server(
    label: &str,
    change: impl FnOnce(&mut halley::config::Config),
) -> (TestServer, TestCert) {
    let cert = TestCert::new(label);
    let (cert_path, key_path) = (cert.cert.clone(), cert.key.clone());
    let server = start_with(move |c| {
        c.tls_listen = Some("127.0.0.1:0".parse().unwrap());
        c.tls_cert = Some(cert_path);
        c.tls_key = Some(key_path);
        change(c);
    });
    (server, cert)
}

#[test]
fn every_transport_over_tls_1_3_and_1_2() {
    let (server, cert) = tls_server("transports", |_| {});
    let tls = server.tls.expect("a TLS address");
    for (versions, version, channel) in [
        (TLS13, rustls::ProtocolVersion::TLSv1_3, "v13"),
        (TLS12, rustls::ProtocolVersion::TLSv1_2, "v12"),
    ] {
        let config = cert.client(versions);
        let mut streams = Vec::new();
        for transport in ["stream", "sse", "iframe&callback=f"] {
            let mut client = Client::connect_tls(tls, config.clone());
            let negotiated = client.tls.as_ref().unwrap().protocol_version();
            assert_eq!(negotiated, Some(version));
            client.get(&format!("/sub/{channel}?t={transport}"));
            assert_eq!(client.head().status, 200);
            client.prelude(transport.split('&').next().unwrap());
            streams.push(client);
        }
        let mut longpoll = Client::connect_tls(tls, config.clone());
        longpoll.get(&format!("/sub/{channel}?t=longpoll"));
        let mut ws = WsClient::open(
            Client::connect_tls(tls, config.clone()),
            &format!("/sub/{channel}?t=ws"),
        );
        wait_until(|| server.counter("subscribers") >= 5, "five subscribers");
        let id = server.publish_ok(channel, "over TLS");
        let expected = frame(channel, id, "over TLS");
        for client in &mut streams {
            assert!(client.chunk_text().contains(&expected));
        }
        assert!(longpoll.response().text().contains(&expected));
        assert!(ws.frame().text().contains(&expected));
        // Poll, on a keep-alive connection: two answers, the second a 304.
        let mut poll = Client::connect_tls(tls, config);
        poll.get(&format!("/sub/{channel}?t=poll&since=0"));
        let first = poll.response();
        assert!(first.text().contains(&expected));
        let etag = first.header("ETag").unwrap().to_string();
        poll.send(
            format!(
                "GET /sub/{channel}?t=poll HTTP/1.1\r\nHost: t\r\nIf-None-Match: {etag}\r\n\r\n"
            )
            .as_bytes(),
        );
        assert_eq!(poll.response().status, 304);
    }
    assert_eq!(
        server.counter("tls_handshakes"),
        12,
        "six connections per version"
    );
    assert_eq!(server.counter("tls_handshake_failures"), 0);
}

#[test]
fn alpn_offers_http_1_1() {
    let (server, cert) = tls_server("alpn", |_| {});
    let client = Client::connect_tls(server.tls.unwrap(), cert.client(TLS13));
    let alpn = client.tls.as_ref().unwrap().alpn_protocol();
    assert_eq!(
        alpn,
        Some(&b"http/1.1"[..]),
        "h2 was offered first and not taken"
    );
}

#[test]
fn a_plain_request_on_the_tls_port_gets_400_and_is_counted() {
    let (server, _cert) = tls_server("plain", |_| {});
    let mut client = Client::connect(server.tls.unwrap());
    let response = client.exchange(b"GET /sub/live HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(response.status, 400);
    assert_eq!(
        response.text(),
        "this port speaks TLS: use https:// (or wss://)\n"
    );
    client.expect_closed();
    server.wait_counter("tls_handshake_failures", 1);
    assert_eq!(server.counter("tls_handshakes"), 0);
}

#[test]
fn a_handshake_that_is_not_tls_is_closed_and_counted() {
    let (server, _cert) = tls_server("garbage", |_| {});
    let mut client = Client::connect(server.tls.unwrap());
    // A handshake record header, then bytes that are no ClientHello.
    client.send(&[22, 3, 1, 0, 8, 0xff, 0, 0, 4, 1, 2, 3, 4]);
    client.expect_closed();
    server.wait_counter("tls_handshake_failures", 1);
}

#[test]
fn a_handshake_not_finished_within_the_header_timeout_is_closed() {
    let (server, _cert) = tls_server("slow", |c| {
        c.header_timeout = Duration::from_millis(300);
        c.defer_accept = Duration::ZERO;
    });
    // One client sends half a ClientHello's record; another sends nothing at all.
    let mut partial = Client::connect(server.tls.unwrap());
    partial.send(&[22, 3, 1, 0x02, 0x00, 1, 0, 1]);
    let mut silent = Client::connect(server.tls.unwrap());
    let started = Instant::now();
    partial.expect_closed();
    silent.expect_closed();
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(290), "closed after {took:?}");
    server.wait_counter("tls_handshake_failures", 2);
    assert_eq!(
        server.counter("header_timeouts"),
        0,
        "counted once, as TLS's"
    );
}

#[test]
fn the_admin_port_under_tls_takes_publishes_and_refuses_plain_http() {
    let admin_cert = TestCert::new("admin");
    let (cert_path, key_path) = (admin_cert.cert.clone(), admin_cert.key.clone());
    let server = start_with(move |c| {
        c.admin_tls_cert = Some(cert_path);
        c.admin_tls_key = Some(key_path);
    });
    let mut subscriber = server.client();
    subscriber.get("/sub/news?t=longpoll");
    wait_until(
        || {
            server
                .stats
                .loops
                .iter()
                .map(|l| l.subscribers.load(std::sync::atomic::Ordering::Relaxed))
                .sum::<u64>()
                == 1
        },
        "a subscriber",
    );
    let mut admin = Client::connect_tls(server.admin, admin_cert.client(TLS13));
    let answer =
        admin.exchange(b"POST /pub/news HTTP/1.1\r\nHost: t\r\nContent-Length: 6\r\n\r\nsealed");
    assert_eq!(answer.status, 201, "{}", answer.text());
    assert!(subscriber
        .response()
        .text()
        .contains(&frame("news", 1, "sealed")));
    let stats = admin.exchange(b"GET /stats HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    assert_eq!(stats.json()["admin"]["tls_handshakes"], 1);
    let mut plain = Client::connect(server.admin);
    assert_eq!(
        plain
            .exchange(b"GET /stats HTTP/1.1\r\nHost: t\r\n\r\n")
            .status,
        400
    );
}

#[test]
fn output_larger_than_a_record_reaches_a_reader_that_fell_behind() {
    let (server, cert) = tls_server("backlog", |c| {
        c.max_message = 256 << 10;
        c.max_pending = 8 << 20;
        c.stream_max_bytes = 64 << 20;
    });
    // A receive buffer of a few KiB, so that the server's socket fills at once and
    // records wait in the session and frames in the queue.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(&server.tls.unwrap().into()).unwrap();
    let mut client = Client::tls_over(socket.into(), cert.client(TLS13));
    client.get("/sub/big?t=stream");
    assert_eq!(client.head().status, 200);
    client.prelude("stream");
    wait_until(|| server.counter("subscribers") == 1, "a subscriber");
    // 20 messages of 100 KiB while the client reads nothing.
    let body: String = (0..100 * 1024)
        .map(|i| (b'a' + (i % 26) as u8) as char)
        .collect();
    for _ in 0..20 {
        let mut admin = Client::connect(server.admin);
        let raw = format!(
            "POST /pub/big HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        admin.stream.write_all(raw.as_bytes()).unwrap();
        assert_eq!(admin.response().status, 201);
    }
    for id in 1..=20 {
        let line = client.chunk_text();
        assert!(
            line == format!("{}\n", frame("big", id, &body)),
            "event {id} whole, in order"
        );
    }
    assert_eq!(server.counter("slow_clients_dropped"), 0);
}

#[test]
fn a_closing_answer_ends_with_close_notify() {
    let (server, cert) = tls_server("close", |_| {});
    let mut client = Client::connect_tls(server.tls.unwrap(), cert.client(TLS13));
    let response =
        client.exchange(b"GET /sub/x?t=poll HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    assert_eq!(response.status, 200);
    // The TLS client reports a close without close_notify as an error (a truncation
    // attack); `expect_closed` reads to a clean end.
    assert!(client.expect_closed().is_empty());
}
