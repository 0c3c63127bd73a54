//! Random and mutated requests, sent over real sockets to both ports: whatever they
//! are, the server answers or closes, never panics (a panicking loop exits the
//! process, failing this test) and never wedges a loop (every loop still answers).

mod util;

use std::io::Write;
use std::net::Shutdown;

use proptest::prelude::*;
use util::{start_with, wait_until, Client};

const VALID: &[&[u8]] = &[
    b"GET /sub/a,b?t=sse&since=1,2 HTTP/1.1\r\nHost: t\r\nLast-Event-ID: 3,4\r\n\r\n",
    b"GET /sub/a?t=iframe&callback=parent.x HTTP/1.1\r\nHost: t\r\n\r\n",
    b"GET /sub/a?t=poll HTTP/1.1\r\nHost: t\r\nIf-None-Match: \"1\", W/\"2,3\"\r\n\r\nGET /sub/b?t=stream HTTP/1.1\r\nHost: t\r\n\r\n",
    b"POST /pub/a HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello",
    b"POST /pub/a HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    b"OPTIONS /sub/a HTTP/1.1\r\nHost: t\r\nOrigin: http://o\r\n\r\n",
    b"GET /channels/a HTTP/1.0\r\n\r\n",
];

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Insert(usize, Vec<u8>),
    Remove(usize, usize),
    Truncate(usize),
}

fn mutated() -> impl Strategy<Value = Vec<u8>> {
    let mutation = prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..40))
            .prop_map(|(i, v)| Mutation::Insert(i, v)),
        (any::<usize>(), 1usize..20).prop_map(|(i, n)| Mutation::Remove(i, n)),
        any::<usize>().prop_map(Mutation::Truncate),
    ];
    (0..VALID.len(), prop::collection::vec(mutation, 1..6)).prop_map(|(which, mutations)| {
        let mut bytes = VALID[which].to_vec();
        for mutation in mutations {
            let len = bytes.len().max(1);
            match mutation {
                Mutation::Flip(i, b) if !bytes.is_empty() => bytes[i % len] = b,
                Mutation::Insert(i, v) => {
                    let at = i % (bytes.len() + 1);
                    bytes.splice(at..at, v);
                }
                Mutation::Remove(i, n) if !bytes.is_empty() => {
                    let at = i % len;
                    let end = (at + n).min(bytes.len());
                    bytes.drain(at..end);
                }
                Mutation::Truncate(i) => bytes.truncate(i % len),
                _ => {}
            }
        }
        bytes
    })
}

fn any_request() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![mutated(), prop::collection::vec(any::<u8>(), 0..600)]
}

/// Sends `bytes`, closes the sending side, and reads until the server closes: every
/// input must end that way (an answer or not), within the client's bounded wait.
fn send_and_drain(addr: std::net::SocketAddr, bytes: &[u8]) {
    let mut client = Client::connect(addr);
    if client.stream.write_all(bytes).is_err() {
        return; // the server already refused and closed
    }
    let _ = client.stream.shutdown(Shutdown::Write);
    client.until_close();
}

#[test]
fn random_and_mutated_requests_never_panic_or_wedge() {
    let server = start_with(|c| {
        c.header_timeout = std::time::Duration::from_millis(300);
        c.poll_timeout = std::time::Duration::from_millis(300);
    });
    server.publish_ok("a", "seed");
    let config = ProptestConfig {
        cases: 150,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(request in any_request(), to_admin in any::<bool>())| {
        send_and_drain(if to_admin { server.admin } else { server.sub }, &request);
    });
    // Every loop still answers: connections spread over both loops by the kernel.
    for _ in 0..20 {
        assert_eq!(server.get("/sub/a?t=poll&since=0").status, 200);
    }
    assert_eq!(server.publish("a", "after the storm").0, 201);
    let stats = server.stats_json();
    for number in 0..2 {
        assert!(
            stats["loops"][number]["requests"].as_u64().unwrap() > 0,
            "loop {number} served"
        );
    }
}

/// Client frames: well-formed ones (text, ping, pong, close, fragments), mutated, or
/// random bytes.
fn websocket_input() -> impl Strategy<Value = Vec<u8>> {
    use util::ws::client_frame;
    let frame = (
        any::<bool>(),
        prop_oneof![
            Just(0x0u8),
            Just(0x1),
            Just(0x2),
            Just(0x8),
            Just(0x9),
            Just(0xA),
            0u8..16
        ],
        prop_oneof![
            Just(br#"{"pub":"room.1","data":"hi","ref":1}"#.to_vec()),
            prop::collection::vec(any::<u8>(), 0..200),
        ],
        prop::bool::weighted(0.9),
    )
        .prop_map(|(fin, opcode, payload, masked)| client_frame(fin, opcode, &payload, masked));
    let frames = prop::collection::vec(frame, 0..6).prop_map(|frames| frames.concat());
    (
        frames,
        prop::collection::vec((any::<usize>(), any::<u8>()), 0..4),
    )
        .prop_map(|(mut bytes, flips)| {
            for (at, byte) in flips {
                if !bytes.is_empty() {
                    let len = bytes.len();
                    bytes[at % len] = byte;
                }
            }
            bytes
        })
}

#[test]
fn random_and_mutated_websocket_frames_never_panic_or_wedge() {
    let server = start_with(|c| {
        c.client_publish = halley::channel::ChannelPatterns::parse("room.*").unwrap();
        c.client_publish_rate = 0;
        c.write_timeout = std::time::Duration::from_millis(300);
    });
    let config = ProptestConfig {
        cases: 100,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(input in websocket_input())| {
        let mut ws = util::ws::WsClient::open(Client::connect(server.sub), "/sub/room.1");
        if ws.http.stream.write_all(&input).is_err() {
            return Ok(());
        }
        // A close of our own, then the end of our side: whatever came before (a
        // frame cut short swallows the close), the server ends the connection.
        let _ = ws.http.stream.write_all(&util::ws::client_frame(true, 0x8, b"", true));
        let _ = ws.http.stream.shutdown(Shutdown::Write);
        ws.http.until_close();
    });
    assert_eq!(server.counter("ws_handshakes"), 100, "every case upgraded");
    wait_until(
        || server.counter("subscribers") == 0,
        "every subscription ended",
    );
    for _ in 0..20 {
        assert_eq!(server.get("/sub/room.1?t=poll&since=0").status, 200);
    }
}

/// The first flight of a real TLS client (its ClientHello), as bytes.
fn client_hello(config: std::sync::Arc<rustls::ClientConfig>) -> Vec<u8> {
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = rustls::ClientConnection::new(config, name).unwrap();
    let mut hello = Vec::new();
    while tls.wants_write() {
        tls.write_tls(&mut hello).unwrap();
    }
    hello
}

#[test]
fn random_and_mutated_tls_input_never_panics_or_wedges() {
    let cert = util::tls::TestCert::new("fuzz");
    let (cert_path, key_path) = (cert.cert.clone(), cert.key.clone());
    let server = start_with(move |c| {
        c.tls_listen = Some("127.0.0.1:0".parse().unwrap());
        c.tls_cert = Some(cert_path);
        c.tls_key = Some(key_path);
        c.header_timeout = std::time::Duration::from_millis(300);
    });
    let tls = server.tls.unwrap();
    let hellos = [
        client_hello(cert.client(util::tls::TLS13)),
        client_hello(cert.client(util::tls::TLS12)),
    ];
    let input = (
        0..hellos.len(),
        prop::collection::vec((any::<usize>(), any::<u8>()), 0..6),
        any::<usize>(),
        prop::collection::vec(any::<u8>(), 0..300),
    );
    let config = ProptestConfig {
        cases: 100,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |((which, flips, cut, random) in input, after_handshake in any::<bool>())| {
        if after_handshake {
            // Bytes that are no record of this session, after a real handshake.
            let mut client = Client::connect_tls(tls, cert.client(util::tls::TLS13));
            if client.stream.write_all(&random).is_ok() {
                let _ = client.stream.shutdown(Shutdown::Write);
                let mut sink = [0u8; 4096];
                while matches!(std::io::Read::read(&mut client.stream, &mut sink), Ok(n) if n > 0) {}
            }
        } else {
            // A ClientHello with bytes changed, cut short, or followed by random ones.
            let mut hello = hellos[which].clone();
            for (at, byte) in flips {
                let len = hello.len();
                hello[at % len] = byte;
            }
            hello.truncate(cut % (hello.len() + 1));
            hello.extend_from_slice(&random);
            send_and_drain(tls, &hello);
        }
    });
    // Every loop still shakes hands and answers.
    for _ in 0..20 {
        let mut client = Client::connect_tls(tls, cert.client(util::tls::TLS13));
        let response = client.exchange(b"GET /sub/a?t=poll&since=0 HTTP/1.1\r\nHost: t\r\n\r\n");
        assert_eq!(response.status, 200);
    }
    assert!(server.counter("tls_handshake_failures") > 0);
    let stats = server.stats_json();
    for number in 0..2 {
        assert!(
            stats["loops"][number]["tls_handshakes"].as_u64().unwrap() > 0,
            "loop {number} shook hands"
        );
    }
}
