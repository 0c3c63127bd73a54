//! Every transport over real sockets: what a client receives, byte for byte where the
//! protocol fixes the bytes.

mod util;

use util::{start, start_with, wait_until};

fn frame(channel: &str, id: u64, data: &str) -> String {
    format!("{{\"ch\":\"{channel}\",\"id\":{id},\"data\":\"{data}\"}}")
}

#[test]
fn longpoll_is_held_until_an_event() {
    let server = start();
    let mut client = server.client();
    client.get("/sub/live?t=longpoll");
    server.wait_counter("subscribers", 1);
    assert!(
        client.nothing_within(std::time::Duration::from_millis(50)),
        "held, not answered"
    );
    server.publish_ok("live", "hello");
    let response = client.response();
    assert_eq!(response.status, 200);
    assert_eq!(
        response.header("Content-Type"),
        Some("application/json; charset=utf-8")
    );
    assert_eq!(response.header("Cache-Control"), Some("no-cache, no-store"));
    assert_eq!(
        response.text(),
        format!(
            "{{\"cursor\":\"1\",\"frames\":[{}]}}",
            frame("live", 1, "hello")
        )
    );
    assert_eq!(server.counter("subscribers"), 0);
}

#[test]
fn longpoll_is_the_default_and_times_out_empty() {
    let timeout = std::time::Duration::from_millis(300);
    let server = start_with(|c| c.poll_timeout = timeout);
    server.publish_ok("a", "one");
    let mut client = server.client();
    let sent = std::time::Instant::now();
    client.get("/sub/a");
    // Held, as a long-poll is (a poll would be answered at once, and not counted).
    server.wait_counter("subscribers", 1);
    let response = client.response();
    assert!(
        sent.elapsed() >= timeout,
        "answered after {:?}, before the poll timeout",
        sent.elapsed()
    );
    assert_eq!(response.status, 200);
    assert_eq!(response.text(), "{\"cursor\":\"1\",\"frames\":[]}");
    assert!(
        response.header("ETag").is_none(),
        "a long-poll answer, not a poll's"
    );
    assert_eq!(server.counter("subscribers"), 0);
}

#[test]
fn longpoll_with_a_cursor_answers_at_once() {
    let server = start();
    for body in ["a", "b", "c"] {
        server.publish_ok("x", body);
    }
    let response = server.get("/sub/x?t=longpoll&since=1");
    assert_eq!(
        response.text(),
        format!(
            "{{\"cursor\":\"3\",\"frames\":[{},{}]}}",
            frame("x", 2, "b"),
            frame("x", 3, "c")
        )
    );
}

#[test]
fn jsonp_longpoll_and_poll() {
    let server = start();
    server.publish_ok("x", "a");
    let response = server.get("/sub/x?t=poll&since=0&callback=my.cb");
    assert_eq!(
        response.header("Content-Type"),
        Some("application/javascript; charset=utf-8")
    );
    assert_eq!(
        response.text(),
        format!(
            "my.cb({{\"cursor\":\"1\",\"frames\":[{}]}});\n",
            frame("x", 1, "a")
        )
    );
    let response = server.get("/sub/x?t=longpoll&since=0&callback=cb");
    assert!(response.text().starts_with("cb({\"cursor\":\"1\""));
}

#[test]
fn poll_answers_at_once_with_an_etag_and_304() {
    let server = start();
    let empty = server.get("/sub/p?t=poll");
    assert_eq!(
        (empty.status, empty.text().as_str()),
        (200, "{\"cursor\":\"0\",\"frames\":[]}")
    );
    assert_eq!(empty.header("ETag"), Some("\"0\""));
    assert_eq!(empty.header("Cache-Control"), Some("no-cache"));
    server.publish_ok("p", "one");
    let mut client = server.client();
    let first = client.exchange(b"GET /sub/p?t=poll&since=0 HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(first.header("ETag"), Some("\"1\""));
    assert_eq!(
        first.text(),
        format!("{{\"cursor\":\"1\",\"frames\":[{}]}}", frame("p", 1, "one"))
    );
    let unchanged = client
        .exchange(b"GET /sub/p?t=poll&since=1 HTTP/1.1\r\nHost: t\r\nIf-None-Match: \"1\"\r\n\r\n");
    assert_eq!(unchanged.status, 304);
    assert_eq!(unchanged.header("ETag"), Some("\"1\""));
    assert!(unchanged.header("Content-Length").is_none());
    // A browser cache revalidating the answer it stored for since=0: same tag, 304.
    let revalidated = client
        .exchange(b"GET /sub/p?t=poll&since=0 HTTP/1.1\r\nHost: t\r\nIf-None-Match: \"1\"\r\n\r\n");
    assert_eq!(revalidated.status, 304);
    server.publish_ok("p", "two");
    let changed = client
        .exchange(b"GET /sub/p?t=poll&since=1 HTTP/1.1\r\nHost: t\r\nIf-None-Match: \"1\"\r\n\r\n");
    assert_eq!(changed.status, 200);
    assert_eq!(changed.header("ETag"), Some("\"2\""));
}

#[test]
fn stream_sends_one_chunked_line_per_frame() {
    let server = start();
    let mut client = server.client();
    client.get("/sub/s?t=stream");
    let head = client.head();
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("Content-Type"),
        Some("application/x-ndjson; charset=utf-8")
    );
    assert_eq!(head.header("Transfer-Encoding"), Some("chunked"));
    assert_eq!(head.header("X-Accel-Buffering"), Some("no"));
    assert_eq!(head.header("Cache-Control"), Some("no-cache, no-store"));
    assert_eq!(
        client.chunk_text(),
        "{\"hb\":1}\n",
        "a stream starts with a heartbeat"
    );
    for (id, body) in [(1, "first"), (2, "second")] {
        server.publish_ok("s", body);
        assert_eq!(client.chunk_text(), format!("{}\n", frame("s", id, body)));
    }
}

#[test]
fn sse_sends_retry_then_ids_and_data() {
    let server = start();
    let mut client = server.client();
    client.get("/sub/e?t=sse");
    let head = client.head();
    assert_eq!(
        head.header("Content-Type"),
        Some("text/event-stream; charset=utf-8")
    );
    assert_eq!(head.header("X-Accel-Buffering"), Some("no"));
    assert_eq!(client.chunk_text(), "retry: 2000\n\n");
    server.publish_ok("e", "hi");
    assert_eq!(
        client.chunk_text(),
        format!("id: 1\ndata: {}\n\n", frame("e", 1, "hi"))
    );
}

#[test]
fn accept_event_stream_selects_sse_without_t() {
    let server = start();
    let mut client = server.client();
    client.send(b"GET /sub/e HTTP/1.1\r\nHost: t\r\nAccept: text/event-stream\r\n\r\n");
    assert_eq!(
        client.head().header("Content-Type"),
        Some("text/event-stream; charset=utf-8")
    );
}

#[test]
fn iframe_sends_padding_then_script_calls() {
    let server = start();
    let mut client = server.client();
    client.get("/sub/f?t=iframe&callback=parent.halley.push");
    let head = client.head();
    assert_eq!(
        head.header("Content-Type"),
        Some("text/html; charset=utf-8")
    );
    let prelude = client.chunk_text();
    assert!(
        prelude.len() >= 1024 && prelude.starts_with("<!DOCTYPE html>"),
        "{prelude}"
    );
    assert_eq!(
        client.chunk_text(),
        "<script>parent.halley.push({\"hb\":1});</script>\n"
    );
    server.publish_ok("f", "x");
    assert_eq!(
        client.chunk_text(),
        format!(
            "<script>parent.halley.push({});</script>\n",
            frame("f", 1, "x")
        )
    );
}

#[test]
fn payloads_cannot_end_the_script_element() {
    let server = start();
    let mut client = server.client();
    client.get("/sub/f?t=iframe&callback=cb");
    client.head();
    client.prelude("iframe");
    let hostile = "</script><script>alert(1)</script><!--\u{2028}";
    server.publish_ok("f", hostile);
    let chunk = client.chunk_text();
    let inner = &chunk["<script>".len()..chunk.len() - "</script>\n".len()];
    assert!(!inner.to_ascii_lowercase().contains("</script"), "{chunk}");
    assert!(
        !inner.contains("<!--") && !inner.contains('\u{2028}'),
        "{chunk}"
    );
    let json = &inner["cb(".len()..inner.len() - ");".len()];
    let parsed: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(parsed["data"], hostile, "the payload arrives intact");
}

#[test]
fn heartbeats_on_idle_streams() {
    let server = start_with(|c| c.heartbeat = std::time::Duration::from_millis(100));
    let mut stream = server.client();
    stream.get("/sub/h?t=stream");
    stream.head();
    stream.prelude("stream");
    assert_eq!(
        stream.chunk_text(),
        "{\"hb\":1}\n",
        "and after --heartbeat of silence"
    );
    let mut sse = server.client();
    sse.get("/sub/h?t=sse");
    sse.head();
    sse.chunk();
    assert_eq!(sse.chunk_text(), ": hb\n\n");
    let mut iframe = server.client();
    iframe.get("/sub/h?t=iframe&callback=f");
    iframe.head();
    iframe.prelude("iframe");
    assert_eq!(iframe.chunk_text(), "<script>f({\"hb\":1});</script>\n");
}

#[test]
fn one_publish_reaches_every_transport_on_both_loops() {
    let server = start();
    let mut clients = Vec::new();
    for _ in 0..3 {
        for path in [
            "/sub/all?t=stream",
            "/sub/all?t=sse",
            "/sub/all?t=iframe&callback=f",
        ] {
            let mut client = server.client();
            client.get(path);
            client.head();
            client.prelude(path.split("t=").nth(1).unwrap().split('&').next().unwrap());
            clients.push(client);
        }
    }
    let mut polls = Vec::new();
    for _ in 0..4 {
        let mut client = server.client();
        client.get("/sub/all");
        polls.push(client);
    }
    wait_until(|| server.counter("subscribers") == 13, "13 subscribers");
    server.publish_ok("all", "to everyone");
    for client in &mut clients {
        assert!(client
            .chunk_text()
            .contains(&frame("all", 1, "to everyone")));
    }
    for client in &mut polls {
        assert!(client
            .response()
            .text()
            .contains(&frame("all", 1, "to everyone")));
    }
    let stats = server.stats_json();
    assert_eq!(stats["events_delivered"], 13);
    assert!(stats["loops"][0]["connections_accepted"].as_u64().unwrap() > 0);
    assert!(
        stats["loops"][1]["connections_accepted"].as_u64().unwrap() > 0,
        "SO_REUSEPORT spreads connections"
    );
}

#[test]
fn regression_longpoll_timeout_on_a_channel_that_never_had_an_event() {
    // Ending the subscription first forgot the empty channel, and collecting the
    // answer then read a channel that was gone (a panic in the loop).
    let server = start_with(|c| c.poll_timeout = std::time::Duration::from_millis(100));
    let response = server.get("/sub/never-published?t=longpoll");
    assert_eq!(response.text(), "{\"cursor\":\"0\",\"frames\":[]}");
    let multiplexed = server.get("/sub/n1,n2?t=longpoll");
    assert_eq!(multiplexed.text(), "{\"cursor\":\"0,0\",\"frames\":[]}");
    assert_eq!(
        server.get("/sub/never-published?t=poll").status,
        200,
        "the loop is alive"
    );
}
