//! Publishing from browsers over real sockets, one test per rule of PROTOCOL.md's
//! "Publishing from browsers": off by default, `POST /pub/...` on the subscriber port
//! answered as the admin port answers, WebSocket publishes acknowledged in order, each
//! refusal with its status or error and nothing stored by it, the rate limit, CORS,
//! and durability with `--data-dir`.

mod util;

use halley::channel::ChannelPatterns;
use util::ws::WsClient;
use util::{start, start_with, Client, Response, TestServer};

/// A server where browsers may publish to `room.*`.
fn open_demo() -> TestServer {
    start_with(|c| c.client_publish = ChannelPatterns::parse("room.*").unwrap())
}

/// `POST /pub/{channel}` on the subscriber port with `body`.
fn post(client: &mut Client, channel: &str, body: &str) -> Response {
    let raw = format!(
        "POST /pub/{channel} HTTP/1.1\r\nHost: t\r\nOrigin: https://page.example\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    client.exchange(raw.as_bytes())
}

/// The ids and data the admin port holds of `channel`, read as a subscriber would.
fn stored(server: &TestServer, channel: &str) -> Vec<(u64, String)> {
    let response = server.get(&format!("/sub/{channel}?t=poll&since=0"));
    response.json()["frames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["id"].as_u64().unwrap(),
                f["data"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn off_by_default_post_is_405_and_a_websocket_publish_is_forbidden() {
    let server = start();
    let response = post(&mut server.client(), "room.1", "hi");
    assert_eq!(response.status, 405);
    assert_eq!(response.header("Allow"), Some("OPTIONS"));
    assert!(response.text().contains("--client-publish"));
    let mut ws = WsClient::open(server.client(), "/sub/room.1");
    ws.send_text(r#"{"pub":"room.1","data":"hi","ref":1}"#);
    assert_eq!(ws.text(), r#"{"ack":1,"error":"forbidden"}"#);
    assert!(stored(&server, "room.1").is_empty());
}

#[test]
fn a_post_is_answered_201_as_the_admin_port_answers_and_delivered() {
    let server = open_demo();
    let mut ws = WsClient::open(server.client(), "/sub/room.1");
    server.wait_counter("subscribers", 1);
    let mut client = server.client();
    let response = post(&mut client, "room.1", "hello");
    assert_eq!(response.status, 201);
    assert_eq!(response.text(), "{\"channel\":\"room.1\",\"id\":1}\n");
    assert_eq!(response.header("Content-Type"), Some("application/json"));
    assert_eq!(response.header("Access-Control-Allow-Origin"), Some("*"));
    assert_eq!(ws.json()["data"], "hello");
    // Keep-alive: a second on the same connection.
    assert_eq!(post(&mut client, "room.1", "again").status, 201);
    assert_eq!(server.counter("client_publishes"), 2);
}

#[test]
fn a_websocket_publish_is_acknowledged_and_reaches_the_publisher_too() {
    let server = open_demo();
    let mut ws = WsClient::open(server.client(), "/sub/room.1");
    ws.send_text(r#"{"pub":"room.1","data":"mine","ref":7}"#);
    // The event reaches the publisher's own subscription; the ack comes after it.
    assert_eq!(ws.text(), r#"{"ch":"room.1","id":1,"data":"mine"}"#);
    assert_eq!(ws.text(), r#"{"ack":7,"ch":"room.1","id":1}"#);
    assert_eq!(stored(&server, "room.1"), [(1, "mine".to_string())]);
}

#[test]
fn refusals_are_answered_in_order_and_store_nothing() {
    let server = start_with(|c| {
        c.client_publish = ChannelPatterns::parse("room.*").unwrap();
        c.max_message = 10;
    });
    server.publish_ok("room.x", "before");
    let mut ws = WsClient::open(server.client(), "/sub/lobby");
    let requests = [
        r#"{"pub":"room.x","data":"a","ref":1}"#,
        r#"{"pub":"lobby","data":"b","ref":"two"}"#,
        r#"{"pub":"room.x","data":"far too long","ref":3}"#,
        r#"{"pub":"no/such","data":"c","ref":4}"#,
        r#"{"pub":"room.x","ref":5}"#,
        r#"not json, "ref":6"#,
        r#"{"pub":"room.x","data":"d","ref":true}"#,
        r#"{"pub":"room.x","data":"e","ref":8.5}"#,
    ];
    for request in requests {
        ws.send_text(request);
    }
    let answers: Vec<String> = (0..requests.len()).map(|_| ws.text()).collect();
    assert_eq!(
        answers,
        [
            r#"{"ack":1,"ch":"room.x","id":2}"#,
            r#"{"ack":"two","error":"forbidden"}"#,
            r#"{"ack":3,"error":"too_large"}"#,
            r#"{"ack":4,"error":"bad_request"}"#,
            r#"{"ack":5,"error":"bad_request"}"#,
            r#"{"ack":null,"error":"bad_request"}"#,
            r#"{"ack":null,"error":"bad_request"}"#,
            r#"{"ack":8.5,"ch":"room.x","id":3}"#,
        ]
    );
    assert_eq!(
        stored(&server, "room.x"),
        [(1, "before".into()), (2, "a".into()), (3, "e".into())]
    );
    assert_eq!(server.counter("client_publishes_forbidden"), 1);
    assert_eq!(server.counter("client_publishes_too_large"), 1);
    assert_eq!(server.counter("client_publishes_malformed"), 4);
}

#[test]
fn post_refusals_have_the_admin_port_s_statuses() {
    let server = start_with(|c| {
        c.client_publish = ChannelPatterns::parse("room.*").unwrap();
        c.max_message = 10;
    });
    let mut client = server.client();
    assert_eq!(post(&mut client, "lobby", "x").status, 403);
    assert_eq!(post(&mut client, "room.1", "eleven byte").status, 413);
    assert_eq!(post(&mut client, "room%2F1", "x").status, 400);
    server.close_channel("room.c");
    assert_eq!(post(&mut client, "room.c", "x").status, 409);
    // A body over --max-message plus the envelope's room is refused before it is read.
    let raw = "POST /pub/room.1 HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n";
    assert_eq!(server.client().exchange(raw.as_bytes()).status, 413);
    assert!(stored(&server, "room.1").is_empty());
}

#[test]
fn a_closed_channel_is_error_closed_on_a_websocket() {
    let server = open_demo();
    server.close_channel("room.c");
    let mut ws = WsClient::open(server.client(), "/sub/lobby");
    ws.send_text(r#"{"pub":"room.c","data":"late","ref":1}"#);
    assert_eq!(ws.text(), r#"{"ack":1,"error":"closed"}"#);
}

#[test]
fn over_the_rate_is_429_with_retry_after_and_rate_limited() {
    let server = start_with(|c| {
        c.client_publish = ChannelPatterns::parse("room.*").unwrap();
        c.client_publish_rate = 3;
    });
    let mut client = server.client();
    for _ in 0..3 {
        assert_eq!(post(&mut client, "room.1", "x").status, 201);
    }
    let refused = post(&mut client, "room.1", "x");
    assert_eq!(refused.status, 429);
    assert_eq!(refused.header("Retry-After"), Some("1"));
    // Per connection: another connection has its own allowance.
    assert_eq!(post(&mut server.client(), "room.1", "y").status, 201);

    let mut ws = WsClient::open(server.client(), "/sub/lobby");
    for r in 1..=4 {
        ws.send_text(&format!(r#"{{"pub":"room.2","data":"m","ref":{r}}}"#));
    }
    let last = (0..4).map(|_| ws.json()).last().unwrap();
    assert_eq!(last["error"], "rate_limited");
    assert_eq!(server.counter("client_publishes_rate_limited"), 2);
    assert_eq!(stored(&server, "room.2").len(), 3);
}

#[test]
fn preflights_for_publishing_are_answered() {
    let server = open_demo();
    let raw = "OPTIONS /pub/room.1 HTTP/1.1\r\nHost: t\r\nOrigin: https://page.example\r\nAccess-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: content-type\r\n\r\n";
    let response = server.client().exchange(raw.as_bytes());
    assert_eq!(response.status, 204);
    assert_eq!(
        response.header("Access-Control-Allow-Methods"),
        Some("POST, OPTIONS")
    );
    assert!(response
        .header("Access-Control-Allow-Headers")
        .unwrap()
        .contains("Content-Type"));
    assert_eq!(response.header("Access-Control-Allow-Origin"), Some("*"));
}

#[test]
fn with_a_data_dir_a_browser_publish_is_durable() {
    let dir = tempdir();
    let config = |c: &mut halley::config::Config| {
        c.client_publish = ChannelPatterns::parse("room.*").unwrap();
        c.data_dir = Some(dir.clone());
    };
    {
        let server = start_with(config);
        assert_eq!(post(&mut server.client(), "room.1", "kept").status, 201);
        let mut ws = WsClient::open(server.client(), "/sub/lobby");
        ws.send_text(r#"{"pub":"room.1","data":"kept too","ref":1}"#);
        assert_eq!(ws.json()["id"], 2);
    }
    let server = start_with(config);
    assert_eq!(
        stored(&server, "room.1"),
        [(1, "kept".into()), (2, "kept too".into())]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A fresh directory under the system's temporary one.
fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "halley-client-publish-{}-{:?}",
        std::process::id(),
        std::time::SystemTime::now()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
