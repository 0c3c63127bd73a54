//! Token-protected subscriptions over real sockets, one test per rule of PROTOCOL.md's
//! "Authentication" built so far: the key file, public channels, the token in the
//! header and in the query on several transports, and each refusal with its status,
//! header and counter.

mod util;

use std::time::{SystemTime, UNIX_EPOCH};

use halley::channel::ChannelPatterns;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use util::ws::WsClient;
use util::{start_with, TestServer};

const SECRET: &[u8] = b"the secret of this test, thirty-two bytes or more";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A token for `channels`, valid for `seconds` from now (negative: expired).
fn token(channels: &[&str], seconds: i64) -> String {
    let claims = serde_json::json!({
        "exp": (now() as i64 + seconds) as u64, "sub": "ada", "channels": channels
    });
    let key = EncodingKey::from_secret(SECRET).unwrap();
    encode(&Header::new(Algorithm::HS256), &claims, &key).unwrap()
}

/// A server whose key file is written by the test; `public.*` needs no token.
fn protected() -> (TestServer, std::path::PathBuf) {
    let path = std::env::temp_dir().join(format!(
        "halley-auth-{}-{:?}.key",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::write(&path, [SECRET, b"\n"].concat()).unwrap();
    let key_file = path.clone();
    let server = start_with(move |c| {
        c.token_key_file = Some(key_file);
        c.public_channels = ChannelPatterns::parse("public.*").unwrap();
    });
    (server, path)
}

fn get(server: &TestServer, path: &str, header: &str) -> util::Response {
    server.client().exchange(
        format!("GET {path} HTTP/1.1\r\nHost: t\r\n{header}Connection: close\r\n\r\n").as_bytes(),
    )
}

#[test]
fn without_a_token_a_protected_channel_is_401_bearer() {
    let (server, key) = protected();
    let response = server.get("/sub/private?t=poll");
    assert_eq!(response.status, 401);
    assert_eq!(response.header("WWW-Authenticate"), Some("Bearer"));
    assert!(response.text().contains("a token is needed"));
    assert_eq!(server.counter("auth_missing"), 1);
    let _ = std::fs::remove_file(key);
}

#[test]
fn public_channels_need_no_token() {
    let (server, key) = protected();
    server.publish_ok("public.news", "hi");
    let response = server.get("/sub/public.news?t=poll&since=0");
    assert_eq!(response.status, 200);
    assert_eq!(response.json()["frames"][0]["data"], "hi");
    let mixed = server.get("/sub/public.news,private?t=poll");
    assert_eq!(mixed.status, 401, "one protected channel is enough");
    let _ = std::fs::remove_file(key);
}

#[test]
fn a_token_in_the_header_or_the_query_opens_its_channels() {
    let (server, key) = protected();
    server.publish_ok("room.1", "one");
    let t = token(&["room.*"], 60);
    let by_header = get(
        &server,
        "/sub/room.1?t=poll&since=0",
        &format!("Authorization: Bearer {t}\r\n"),
    );
    assert_eq!(by_header.status, 200);
    let lower_case = get(
        &server,
        "/sub/room.1?t=poll&since=0",
        &format!("Authorization: bearer {t}\r\n"),
    );
    assert_eq!(lower_case.status, 200);
    let by_query = server.get(&format!("/sub/room.1?t=poll&since=0&token={t}"));
    assert_eq!(by_query.status, 200);
    assert_eq!(by_query.json()["frames"][0]["data"], "one");
    let _ = std::fs::remove_file(key);
}

#[test]
fn every_transport_takes_a_token() {
    let (server, key) = protected();
    server.publish_ok("room.1", "one");
    let t = token(&["room.1"], 60);
    for transport in ["longpoll", "stream", "sse"] {
        let mut client = server.client();
        client.get(&format!("/sub/room.1?t={transport}&since=0&token={t}"));
        let head = client.head();
        assert_eq!(head.status, 200, "{transport}");
    }
    let callback = format!("/sub/room.1?t=iframe&callback=f&since=0&token={t}");
    let mut client = server.client();
    client.get(&callback);
    assert_eq!(client.head().status, 200, "iframe");
    let mut ws = WsClient::open(server.client(), &format!("/sub/room.1?since=0&token={t}"));
    assert_eq!(ws.json()["data"], "one");
    let (_ws, refused) = WsClient::try_open(server.client(), "/sub/room.1?since=0", "");
    assert_eq!(refused.status, 401, "a WebSocket without a token");
    let _ = std::fs::remove_file(key);
}

#[test]
fn a_bad_token_is_401_invalid_token() {
    let (server, key) = protected();
    let good = token(&["room.1"], 60);
    let mut tampered = good.clone().into_bytes();
    let last = tampered.len() - 3;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    for bad in ["garbage", tampered.as_str()] {
        let response = server.get(&format!("/sub/room.1?t=poll&token={bad}"));
        assert_eq!(response.status, 401, "{bad}");
        assert_eq!(
            response.header("WWW-Authenticate"),
            Some("Bearer error=\"invalid_token\"")
        );
    }
    assert_eq!(server.counter("auth_invalid"), 2);
    let _ = std::fs::remove_file(key);
}

#[test]
fn an_expired_token_is_401_and_counted_as_expired() {
    let (server, key) = protected();
    let response = server.get(&format!(
        "/sub/room.1?t=poll&token={}",
        token(&["room.1"], -5)
    ));
    assert_eq!(response.status, 401);
    assert_eq!(
        response.header("WWW-Authenticate"),
        Some("Bearer error=\"invalid_token\"")
    );
    assert!(response.text().contains("expired"));
    assert_eq!(server.counter("auth_expired"), 1);
    let _ = std::fs::remove_file(key);
}

#[test]
fn a_token_that_does_not_cover_a_channel_is_403_naming_it_existing_or_not() {
    let (server, key) = protected();
    server.publish_ok("secret", "x");
    let t = token(&["room.*"], 60);
    for channel in ["secret", "never.published"] {
        let response = server.get(&format!("/sub/room.1,{channel}?t=poll&token={t}"));
        assert_eq!(response.status, 403);
        assert_eq!(
            response.text(),
            format!("the token does not cover channel {channel}\n")
        );
    }
    assert_eq!(server.counter("auth_forbidden"), 2);
    let _ = std::fs::remove_file(key);
}

#[test]
fn a_key_file_that_cannot_be_used_stops_the_start() {
    let path = std::env::temp_dir().join(format!("halley-auth-short-{}.key", std::process::id()));
    std::fs::write(&path, b"short").unwrap();
    let config = halley::config::Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        admin_listen: "127.0.0.1:0".parse().unwrap(),
        token_key_file: Some(path.clone()),
        ..halley::config::Config::default()
    };
    let error = halley::server::Server::start(config)
        .err()
        .expect("refused");
    assert!(error.to_string().contains("at least 32 bytes"), "{error}");
    let _ = std::fs::remove_file(path);
}

/// Waits until a clock second has just begun, so that a token valid for `seconds`
/// lives between `seconds - 1` and `seconds` seconds from now, not less.
fn at_a_second_s_start() {
    let start = now();
    util::wait_until(|| now() > start, "the next second");
}

#[test]
fn a_websocket_closes_4001_when_its_token_expires_and_resumes_with_a_new_one() {
    let (server, key) = protected();
    at_a_second_s_start();
    let short = token(&["room.1"], 2);
    let mut ws = WsClient::open(server.client(), &format!("/sub/room.1?token={short}"));
    server.wait_counter("subscribers", 1);
    server.publish_ok("room.1", "before");
    assert_eq!(ws.json()["id"], 1);
    ws.answer_close(4001);
    assert_eq!(server.counter("auth_subscriptions_expired"), 1);
    server.publish_ok("room.1", "while away");
    let fresh = token(&["room.1"], 60);
    let mut ws = WsClient::open(
        server.client(),
        &format!("/sub/room.1?since=1&token={fresh}"),
    );
    assert_eq!(ws.json()["data"], "while away", "nothing lost");
    let _ = std::fs::remove_file(key);
}

#[test]
fn a_stream_ends_and_a_long_poll_answers_when_their_token_expires() {
    let (server, key) = protected();
    at_a_second_s_start();
    let short = token(&["room.1"], 2);
    let mut stream = server.client();
    stream.get(&format!("/sub/room.1?t=sse&token={short}"));
    assert_eq!(stream.head().status, 200);
    stream.prelude("sse");
    let mut poll = server.client();
    poll.get(&format!("/sub/room.1?t=longpoll&token={short}"));
    server.wait_counter("subscribers", 2);
    // The default poll timeout is 30 s: the token's 2 s end both, within the wait.
    assert_eq!(stream.chunk(), None, "the stream's last chunk");
    let answer = poll.response();
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json()["frames"], serde_json::json!([]));
    assert_eq!(server.counter("auth_subscriptions_expired"), 2);
    let _ = std::fs::remove_file(key);
}

/// A token with `publish` claims.
fn publish_token(publish: &[&str], seconds: i64) -> String {
    let claims = serde_json::json!({"exp": (now() as i64 + seconds) as u64, "publish": publish});
    let key = EncodingKey::from_secret(SECRET).unwrap();
    encode(&Header::new(Algorithm::HS256), &claims, &key).unwrap()
}

fn post(server: &TestServer, path: &str, header: &str, body: &str) -> util::Response {
    server.client().exchange(
        format!(
            "POST {path} HTTP/1.1\r\nHost: t\r\n{header}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
}

#[test]
fn a_browser_publish_needs_a_token_whose_publish_claim_covers_the_channel() {
    let (server, key) = protected();
    let t = publish_token(&["room.*"], 60);
    let by_header = post(
        &server,
        "/pub/room.1",
        &format!("Authorization: Bearer {t}\r\n"),
        "hi",
    );
    assert_eq!(by_header.status, 201, "{}", by_header.text());
    let by_query = post(&server, &format!("/pub/room.1?token={t}"), "", "again");
    assert_eq!(by_query.status, 201);
    let missing = post(&server, "/pub/room.1", "", "x");
    assert_eq!(
        (missing.status, missing.header("WWW-Authenticate")),
        (401, Some("Bearer"))
    );
    let invalid = post(&server, "/pub/room.1?token=nope", "", "x");
    assert_eq!(invalid.status, 401);
    let uncovered = post(&server, &format!("/pub/lobby?token={t}"), "", "x");
    assert_eq!(uncovered.status, 403);
    let stored = server.get("/sub/public.x?t=poll"); // the port still serves
    assert_eq!(stored.status, 200);
    let _ = std::fs::remove_file(key);
}

#[test]
fn a_websocket_publishes_with_its_handshake_s_token() {
    let (server, key) = protected();
    let claims = serde_json::json!({
        "exp": now() + 60, "channels": ["room.*"], "publish": ["room.1"]
    });
    let enc = EncodingKey::from_secret(SECRET).unwrap();
    let t = encode(&Header::new(Algorithm::HS256), &claims, &enc).unwrap();
    let mut ws = WsClient::open(server.client(), &format!("/sub/room.1?token={t}"));
    ws.send_text(r#"{"pub":"room.1","data":"mine","ref":1}"#);
    assert_eq!(ws.json()["data"], "mine");
    assert_eq!(ws.text(), r#"{"ack":1,"ch":"room.1","id":1}"#);
    ws.send_text(r#"{"pub":"room.2","data":"not mine","ref":2}"#);
    assert_eq!(ws.text(), r#"{"ack":2,"error":"forbidden"}"#);
    // On public channels too: the token is read for its publish claim.
    let mut public = WsClient::open(server.client(), &format!("/sub/public.a?token={t}"));
    public.send_text(r#"{"pub":"room.1","data":"from a public reader","ref":3}"#);
    assert_eq!(public.json()["ack"], 3);
    let _ = std::fs::remove_file(key);
}

#[test]
fn the_admin_port_needs_its_token_but_for_healthz() {
    let path = std::env::temp_dir().join(format!("halley-admin-{}.token", std::process::id()));
    std::fs::write(&path, b"an-admin-token-of-this-test\n").unwrap();
    let file = path.clone();
    let server = start_with(move |c| c.admin_token_file = Some(file));
    let admin = |raw: String| util::Client::connect(server.admin).exchange(raw.as_bytes());
    let publish = |auth: &str| {
        admin(format!(
            "POST /pub/a HTTP/1.1\r\nHost: t\r\n{auth}Content-Length: 2\r\nConnection: close\r\n\r\nhi"
        ))
    };
    let refused = publish("");
    assert_eq!(
        (refused.status, refused.header("WWW-Authenticate")),
        (401, Some("Bearer"))
    );
    assert_eq!(
        publish("Authorization: Bearer an-admin-token-of-this-tesT\r\n").status,
        401
    );
    assert_eq!(
        publish("Authorization: Bearer an-admin-token\r\n").status,
        401
    );
    assert_eq!(
        publish("Authorization: Bearer an-admin-token-of-this-test\r\n").status,
        201
    );
    let stats = admin("GET /stats HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".into());
    assert_eq!(stats.status, 401);
    let health = admin("GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".into());
    assert_eq!((health.status, health.text()), (200, "ok\n".to_string()));
    let json: serde_json::Value = serde_json::from_str(&server.stats.to_json()).unwrap();
    assert_eq!(json["admin"]["auth_refused"], 4);
    let _ = std::fs::remove_file(path);
}
