//! WebSocket subscriptions over real sockets, one test per rule of PROTOCOL.md's
//! "WebSocket" section: the handshake and its refusals, one text message per frame,
//! heartbeats, the client's frames (ping, close, violations and their close codes),
//! the server's closes (1000, 1001, 1008) and resuming by cursor after any of them.

mod util;

use std::time::Duration;

use util::ws::{WsClient, BINARY, CLOSE, PING, PONG, TEXT};
use util::{start, start_with, wait_until};

fn frame(channel: &str, id: u64, data: &str) -> String {
    format!("{{\"ch\":\"{channel}\",\"id\":{id},\"data\":\"{data}\"}}")
}

#[test]
fn the_handshake_answers_101_with_the_accept_key() {
    let server = start();
    let (_ws, response) = WsClient::try_open(server.client(), "/sub/a", "");
    assert_eq!(response.status, 101);
    assert_eq!(response.header("Sec-WebSocket-Protocol"), None);
    assert_eq!(server.counter("ws_handshakes"), 1);
}

#[test]
fn halley_v1_is_echoed_and_other_subprotocols_are_ignored() {
    let server = start();
    let offer = "Sec-WebSocket-Protocol: chat, halley.v1\r\n";
    let (_ws, response) = WsClient::try_open(server.client(), "/sub/a?t=ws", offer);
    assert_eq!(response.header("Sec-WebSocket-Protocol"), Some("halley.v1"));
    let other = "Sec-WebSocket-Protocol: chat\r\n";
    let (_ws, response) = WsClient::try_open(server.client(), "/sub/a", other);
    assert_eq!(response.status, 101);
    assert_eq!(response.header("Sec-WebSocket-Protocol"), None);
}

#[test]
fn a_bad_handshake_is_400_with_the_version() {
    let server = start();
    let cases = [
        ("Sec-WebSocket-Key: short\r\n", "Sec-WebSocket-Key"),
        ("Sec-WebSocket-Version: 8\r\n", "Sec-WebSocket-Version"),
    ];
    for (header, says) in cases {
        // The helper sends a good key and version; a second, bad one replaces them
        // as the last of a repeated header would not: build the request by hand.
        let name = header.split(':').next().unwrap();
        let request = util::ws::handshake_request("/sub/a", "")
            .lines()
            .filter(|line| !line.starts_with(name))
            .map(|line| format!("{line}\r\n"))
            .collect::<String>();
        let request = request.trim_end_matches("\r\n").to_string() + "\r\n" + header + "\r\n";
        let response = server.client().exchange(request.as_bytes());
        assert_eq!(response.status, 400, "{header}");
        assert_eq!(response.header("Sec-WebSocket-Version"), Some("13"));
        assert!(response.text().contains(says), "{}", response.text());
    }
    let missing_key = "GET /sub/a HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n";
    let response = server.client().exchange(missing_key.as_bytes());
    assert_eq!(response.status, 400);
    assert_eq!(response.header("Sec-WebSocket-Version"), Some("13"));
    assert_eq!(server.counter("ws_handshakes_refused"), 3);
    assert_eq!(server.counter("ws_handshakes"), 0);
}

#[test]
fn t_ws_without_a_handshake_and_a_handshake_for_another_transport_are_400() {
    let server = start();
    let response = server.get("/sub/a?t=ws");
    assert_eq!(response.status, 400);
    assert!(response.text().contains("t=ws needs a WebSocket handshake"));
    let (_ws, response) = WsClient::try_open(server.client(), "/sub/a?t=sse", "");
    assert_eq!(response.status, 400);
}

#[test]
fn an_origin_not_in_the_list_is_403() {
    let server = start_with(|c| {
        c.allow_origin = halley::config::AllowOrigin::parse("https://ok.example").unwrap()
    });
    let (_ws, refused) = WsClient::try_open(
        server.client(),
        "/sub/a",
        "Origin: https://evil.example\r\n",
    );
    assert_eq!(refused.status, 403);
    let (_ws, allowed) =
        WsClient::try_open(server.client(), "/sub/a", "Origin: https://ok.example\r\n");
    assert_eq!(allowed.status, 101);
    let (_ws, no_origin) = WsClient::try_open(server.client(), "/sub/a", "");
    assert_eq!(no_origin.status, 101, "not a browser: nothing to protect");
}

#[test]
fn each_frame_is_one_text_message_of_its_json_from_the_cursor_on() {
    let server = start_with(|c| c.max_message = 128 << 10);
    server.publish_ok("a", "one");
    server.publish_ok("a", "two");
    let mut ws = WsClient::open(server.client(), "/sub/a?since=1");
    assert_eq!(ws.text(), frame("a", 2, "two"));
    server.publish_ok("a", "three");
    assert_eq!(ws.text(), frame("a", 3, "three"));
    let long = "x".repeat(70_000);
    server.publish_ok("a", &long);
    let message = ws.frame();
    assert!(message.fin && message.opcode == TEXT);
    assert_eq!(message.text(), frame("a", 4, &long), "64-bit length form");
}

#[test]
fn a_multiplexed_subscription_gets_every_channel_and_control_frames() {
    let server = start();
    server.publish_ok("b", "b1");
    let mut ws = WsClient::open(server.client(), "/sub/a,b?since=5,0");
    assert_eq!(ws.text(), "{\"ch\":\"a\",\"reset\":0}");
    assert_eq!(ws.text(), frame("b", 1, "b1"));
    server.publish_ok("a", "a1");
    assert_eq!(ws.text(), frame("a", 1, "a1"));
}

#[test]
fn a_heartbeat_follows_silence() {
    let server = start_with(|c| c.heartbeat = Duration::from_millis(200));
    let mut ws = WsClient::open(server.client(), "/sub/a");
    assert_eq!(ws.text(), "{\"hb\":1}");
    server.publish_ok("a", "x");
    assert_eq!(ws.text(), frame("a", 1, "x"));
    assert_eq!(ws.text(), "{\"hb\":1}");
    assert!(server.counter("heartbeats") >= 2);
}

#[test]
fn a_ping_gets_a_pong_with_its_payload() {
    let server = start();
    let mut ws = WsClient::open(server.client(), "/sub/a");
    ws.send_frame(true, PING, b"are you there", true);
    let pong = ws.frame();
    assert_eq!(
        (pong.opcode, pong.payload.as_slice()),
        (PONG, &b"are you there"[..])
    );
    ws.send_frame(true, PONG, b"unasked", true);
    ws.send_frame(true, PING, b"", true);
    assert_eq!(ws.frame().opcode, PONG, "an unasked pong is ignored");
    assert_eq!(server.counter("ws_pings"), 2);
}

#[test]
fn a_client_close_is_echoed_and_the_connection_ends() {
    let server = start();
    let mut ws = WsClient::open(server.client(), "/sub/a");
    server.wait_counter("subscribers", 1);
    ws.send_frame(true, CLOSE, &3000u16.to_be_bytes(), true);
    ws.expect_close(3000);
    wait_until(|| server.counter("subscribers") == 0, "subscription ended");
    assert_eq!(server.counter("ws_client_closes"), 1);

    let mut ws = WsClient::open(server.client(), "/sub/a");
    ws.send_frame(true, CLOSE, b"", true);
    let echo = ws.frame();
    assert_eq!(
        (echo.opcode, echo.payload.len()),
        (CLOSE, 0),
        "an empty close, echoed"
    );
    assert!(ws.http.until_close().is_empty());
}

/// Opens a WebSocket, sends `bytes`, and expects a close with `code`.
fn violation(bytes: &[u8], code: u16, counter: &str) {
    let server = start();
    let mut ws = WsClient::open(server.client(), "/sub/a");
    ws.http.send(bytes);
    ws.expect_close(code);
    assert_eq!(server.counter(counter), 1, "{counter}");
    wait_until(|| server.counter("connections") == 0, "closed");
}

#[test]
fn a_binary_message_is_close_1002() {
    violation(
        &util::ws::client_frame(true, BINARY, b"\x01", true),
        1002,
        "ws_protocol_errors",
    );
}

#[test]
fn an_unmasked_frame_is_close_1002() {
    violation(
        &util::ws::client_frame(true, TEXT, b"{}", false),
        1002,
        "ws_protocol_errors",
    );
}

#[test]
fn reserved_bits_are_close_1002() {
    let mut frame = util::ws::client_frame(true, TEXT, b"{}", true);
    frame[0] |= 0x40;
    violation(&frame, 1002, "ws_protocol_errors");
}

#[test]
fn a_fragmented_control_frame_is_close_1002() {
    violation(
        &util::ws::client_frame(false, PING, b"x", true),
        1002,
        "ws_protocol_errors",
    );
}

#[test]
fn text_that_is_not_utf8_is_close_1007() {
    violation(
        &util::ws::client_frame(true, TEXT, b"\xff\xfe", true),
        1007,
        "ws_not_utf8",
    );
}

#[test]
fn a_message_over_max_message_plus_1kib_is_close_1009() {
    let server = start_with(|c| c.max_message = 1000);
    let mut ws = WsClient::open(server.client(), "/sub/a");
    // Just under the limit is read (and answered); one byte over is refused from
    // its head, before its payload arrives.
    let room = 1000 + 1024;
    let at_limit = format!("{{\"pub\":\"a\",\"data\":\"{}\"}}", "x".repeat(room - 21));
    assert_eq!(at_limit.len(), room);
    ws.send_text(&at_limit);
    assert_eq!(ws.json()["error"], "forbidden");
    let over = [
        0x81u8,
        0xFE,
        ((room + 1) >> 8) as u8,
        (room + 1) as u8,
        0,
        0,
        0,
        0,
    ];
    ws.http.send(&over);
    ws.expect_close(1009);
    assert_eq!(server.counter("ws_messages_too_big"), 1);
}

#[test]
fn every_channel_closed_is_close_1000_and_a_cursor_there_is_204() {
    let server = start();
    server.publish_ok("a", "one");
    let mut ws = WsClient::open(server.client(), "/sub/a?since=0");
    assert_eq!(ws.text(), frame("a", 1, "one"));
    let marker = server.close_channel("a");
    assert_eq!(
        ws.text(),
        format!("{{\"ch\":\"a\",\"id\":{marker},\"closed\":true}}")
    );
    ws.answer_close(1000);
    assert_eq!(server.counter("ws_closed_normal"), 1);
    let (_ws, response) =
        WsClient::try_open(server.client(), &format!("/sub/a?since={marker}"), "");
    assert_eq!(response.status, 204);
}

#[test]
fn a_close_the_server_began_ends_without_an_echo_after_the_write_timeout() {
    let server = start_with(|c| c.write_timeout = Duration::from_millis(300));
    let mut ws = WsClient::open(server.client(), "/sub/a");
    server.close_channel("a");
    let _marker = ws.text();
    assert_eq!(ws.frame().close_code(), Some(1000));
    // No echo: the server waits --write-timeout for it, then closes.
    assert!(ws.http.until_close().is_empty());
}

#[test]
fn shutdown_is_close_1001() {
    let server = start();
    let mut ws = WsClient::open(server.client(), "/sub/a");
    server.wait_counter("subscribers", 1);
    let stats = server.stats.clone();
    let stopping = std::thread::spawn(move || drop(server));
    ws.answer_close(1001);
    stopping.join().unwrap();
    let json: serde_json::Value = serde_json::from_str(&stats.to_json()).unwrap();
    assert_eq!(json["ws_going_away"], 1);
}

#[test]
fn a_slow_reader_is_closed_with_1008_after_what_it_was_sent() {
    let server = start_with(|c| c.max_pending = 64 << 10);
    // The client reads nothing until the server has dropped it: the kernel's buffers
    // fill (a few MiB on loopback), then the server's queue passes --max-pending.
    let mut ws = WsClient::open(server.client(), "/sub/a");
    server.wait_counter("subscribers", 1);
    let data = "y".repeat(60 << 10);
    let mut published = 0;
    while server.counter("slow_clients_dropped") == 0 {
        assert!(published < 1000, "never dropped");
        published += 1;
        server.publish_ok("a", &data);
    }
    // Everything queued before the drop arrives in order, then close 1008.
    let mut next = 1;
    loop {
        let frame = ws.frame();
        if frame.opcode == CLOSE {
            assert_eq!(frame.close_code(), Some(1008));
            break;
        }
        let json: serde_json::Value = serde_json::from_str(&frame.text()).unwrap();
        assert_eq!(json["id"], next);
        next += 1;
    }
    assert!(next > 1, "some frames came first");
}

#[test]
fn output_stalled_for_the_write_timeout_drops_the_connection() {
    let server = start_with(|c| {
        c.write_timeout = Duration::from_millis(300);
        c.max_pending = 16 << 20; // the write timeout, not --max-pending, ends it
    });
    let ws = WsClient::open(server.client(), "/sub/a");
    server.wait_counter("subscribers", 1);
    // The client reads nothing: 15 MiB fill the kernel's buffers (a few MiB on
    // loopback) and the rest waits in the server's queue, under --max-pending; after
    // --write-timeout without progress the connection is dropped.
    let data = "w".repeat(60 << 10);
    for _ in 0..256 {
        server.publish_ok("a", &data);
    }
    wait_until(
        || server.counter("write_timeouts") == 1,
        "the write timeout",
    );
    wait_until(|| server.counter("subscribers") == 0, "dropped");
    assert_eq!(
        server.counter("slow_clients_dropped"),
        0,
        "not for --max-pending"
    );
    drop(ws);
}

#[test]
fn stream_max_bytes_and_age_do_not_apply() {
    let server = start_with(|c| {
        c.stream_max_bytes = 100;
        c.stream_max_age = Duration::from_millis(200);
    });
    let mut ws = WsClient::open(server.client(), "/sub/a");
    for i in 1..=5 {
        server.publish_ok("a", &"z".repeat(50));
        assert_eq!(ws.json()["id"], i);
    }
    std::thread::sleep(Duration::from_millis(300)); // past --stream-max-age
    server.publish_ok("a", "still here");
    assert_eq!(ws.json()["data"], "still here");
}

#[test]
fn a_client_resumes_by_cursor_after_a_cut_and_loses_nothing() {
    let server = start();
    let mut ws = WsClient::open(server.client(), "/sub/a");
    server.wait_counter("subscribers", 1);
    for i in 1..=3 {
        server.publish_ok("a", &format!("m{i}"));
        assert_eq!(ws.text(), frame("a", i, &format!("m{i}")));
    }
    drop(ws); // the network cuts it
    wait_until(|| server.counter("subscribers") == 0, "the cut is noticed");
    server.publish_ok("a", "m4");
    server.publish_ok("a", "m5");
    let mut ws = WsClient::open(server.client(), "/sub/a?t=ws&since=3");
    assert_eq!(ws.text(), frame("a", 4, "m4"));
    assert_eq!(ws.text(), frame("a", 5, "m5"));
    server.publish_ok("a", "m6");
    assert_eq!(ws.text(), frame("a", 6, "m6"));
}

#[test]
fn a_fragmented_text_message_is_assembled() {
    let server = start();
    let mut ws = WsClient::open(server.client(), "/sub/a");
    ws.send_frame(false, TEXT, b"{\"pub\":\"a\",", true);
    ws.send_frame(true, PING, b"between", true);
    assert_eq!(
        ws.frame().opcode,
        PONG,
        "control frames may come between fragments"
    );
    ws.send_frame(false, 0x0, b"\"data\":\"x\",", true);
    ws.send_frame(true, 0x0, b"\"ref\":1}", true);
    let ack = ws.json();
    assert_eq!(
        (ack["ack"].as_u64(), ack["error"].as_str()),
        (Some(1), Some("forbidden"))
    );
}

#[test]
fn catch_up_older_than_memory_is_read_from_the_log() {
    let dir = std::env::temp_dir().join(format!("halley-ws-catchup-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let server = start_with(|c| {
        c.data_dir = Some(dir.clone());
        c.history = 2;
    });
    for i in 1..=6 {
        server.publish_ok("a", &format!("m{i}"));
    }
    let mut ws = WsClient::open(server.client(), "/sub/a?since=0");
    for i in 1..=6 {
        assert_eq!(ws.text(), frame("a", i, &format!("m{i}")));
    }
    server.publish_ok("a", "live");
    assert_eq!(ws.text(), frame("a", 7, "live"));
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
