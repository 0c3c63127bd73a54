//! The admin port over real sockets: publishing, closing, channel info, stats, metrics,
//! health; request bodies in every framing; and a publish that is answered promptly
//! while the subscriber port is flooded.

mod util;

use std::time::{Duration, Instant};

use util::{start, start_with, Client};

#[test]
fn publish_answers_201_with_the_id() {
    let server = start();
    let mut client = Client::connect(server.admin);
    let response =
        client.exchange(b"POST /pub/live HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello");
    assert_eq!(response.status, 201);
    assert_eq!(response.header("Content-Type"), Some("application/json"));
    assert_eq!(response.text(), "{\"channel\":\"live\",\"id\":1}\n");
    let second =
        client.exchange(b"POST /pub/live HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(
        second.text(),
        "{\"channel\":\"live\",\"id\":2}\n",
        "keep-alive, and an empty message is a message"
    );
}

#[test]
fn chunked_bodies_and_expect_continue() {
    let server = start();
    let mut client = Client::connect(server.admin);
    let response = client.exchange(b"POST /pub/c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
    assert_eq!(response.status, 201);
    assert_eq!(
        server.get("/sub/c?t=poll&since=0").json()["frames"][0]["data"],
        "hello world"
    );

    client.send(
        b"POST /pub/c HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n",
    );
    assert_eq!(client.head().status, 100, "100 Continue before the body");
    client.send(b"body");
    assert_eq!(client.response().status, 201);

    let too_big = format!(
        "POST /pub/c HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        1 << 20
    );
    client.send(too_big.as_bytes());
    assert_eq!(client.head().status, 413, "refused before the body is sent");
}

#[test]
fn close_is_idempotent_and_creates_unknown_channels_closed() {
    let server = start();
    server.publish_ok("ev", "x");
    assert_eq!(server.close_channel("ev"), 2);
    assert_eq!(server.close_channel("ev"), 2);
    assert_eq!(server.close_channel("never"), 1);
    let info = server.admin_get("/channels/never").json();
    assert_eq!(
        info,
        serde_json::json!({"channel": "never", "first_id": 1, "last_id": 1, "closed": true, "subscribers": 0})
    );
}

#[test]
fn channel_info_counts_subscribers_on_every_loop() {
    let server = start_with(|c| c.history = 2);
    for i in 0..5 {
        server.publish_ok("info", &format!("{i}"));
    }
    let mut clients = Vec::new();
    for _ in 0..6 {
        let mut client = server.client();
        client.get("/sub/info?t=stream");
        client.head();
        clients.push(client);
    }
    let info = server.admin_get("/channels/info").json();
    assert_eq!(
        info,
        serde_json::json!({"channel": "info", "first_id": 4, "last_id": 5, "closed": false, "subscribers": 6})
    );
    assert_eq!(server.admin_get("/channels/nothing").status, 404);
    assert_eq!(server.admin_get("/channels/bad%20name").status, 400);
}

#[test]
fn stats_metrics_health_and_console() {
    let server = start();
    server.publish_ok("s", "x");
    server.get("/nowhere");
    let stats = server.stats_json();
    assert_eq!(stats["events_published"], 1);
    assert_eq!(stats["not_found"], 1);
    assert_eq!(stats["loops"].as_array().unwrap().len(), 2);
    for key in [
        "connections",
        "subscribers",
        "events_delivered",
        "slow_clients_dropped",
        "header_timeouts",
        "bad_requests",
        "heads_too_large",
        "conns_refused",
        "write_timeouts",
        "keepalive_timeouts",
    ] {
        assert!(stats[key].is_u64(), "{key}");
    }
    let metrics = server.admin_get("/metrics");
    assert!(metrics
        .header("Content-Type")
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = metrics.text();
    assert!(text.contains("# TYPE halley_not_found_total counter"));
    assert!(text.contains("halley_admin_events_published_total 1\n"));
    let health = server.admin_get("/healthz");
    assert_eq!((health.status, health.text().as_str()), (200, "ok\n"));
    assert!(server.admin_get("/").text().contains("<form"));
    assert_eq!(server.admin_get("/unknown").status, 404);
    let mut client = Client::connect(server.admin);
    assert_eq!(
        client
            .exchange(b"GET /pub/x HTTP/1.1\r\nHost: t\r\n\r\n")
            .status,
        405
    );
    let admin = server.stats_json()["admin"].clone();
    assert_eq!(admin["not_found"].as_u64(), Some(1));
    assert_eq!(admin["methods_not_allowed"].as_u64(), Some(1));
    client.send(b"HEAD /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(client.head().header("Content-Length"), Some("3"));
    let next = client.exchange(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
    assert!(
        next.raw_head.starts_with("HTTP/1.1 200 "),
        "no body followed the HEAD answer: {:?}",
        next.raw_head
    );
    assert_eq!(next.text(), "ok\n");
}

#[test]
fn publish_is_answered_promptly_while_the_subscriber_port_is_flooded() {
    let server = start_with(|c| c.max_conns = Some(200));
    let sub = server.sub;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flooders: Vec<_> = (0..4)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut opened = 0u64;
                let mut held = Vec::new();
                let deadline = Instant::now() + Duration::from_secs(10);
                while !stop.load(std::sync::atomic::Ordering::Relaxed) && Instant::now() < deadline
                {
                    if let Ok(mut stream) = std::net::TcpStream::connect(sub) {
                        // A first byte, so that defer-accept hands the connection to
                        // the server (a silent flood stays in the kernel).
                        let _ = std::io::Write::write_all(&mut stream, b"G");
                        opened += 1;
                        held.push(stream);
                        if held.len() > 100 {
                            held.clear();
                        }
                    }
                }
                opened
            })
        })
        .collect();
    util::wait_until(
        || server.counter("conns_refused") > 0,
        "the subscriber port is full",
    );
    let mut client = Client::connect(server.admin);
    let mut slowest = Duration::ZERO;
    for i in 0..50 {
        let started = Instant::now();
        let body = format!("m{i}");
        let raw = format!(
            "POST /pub/flood HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        assert_eq!(client.exchange(raw.as_bytes()).status, 201);
        slowest = slowest.max(started.elapsed());
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let opened: u64 = flooders.into_iter().map(|f| f.join().unwrap()).sum();
    assert!(opened > 200, "the flood opened {opened} connections");
    // Generous bound: this checks that publishing is not blocked behind the flood (it
    // would then wait for --header-timeout, a second), not how fast it is.
    assert!(
        slowest < Duration::from_millis(500),
        "slowest publish took {slowest:?}"
    );
    assert_eq!(server.admin_get("/channels/flood").json()["last_id"], 50);
}
