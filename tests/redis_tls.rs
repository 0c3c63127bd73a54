//! Servers sharing their channels through a Redis reached over TLS (`rediss://`): a
//! `redis-server` of the test's own with only a TLS port, its certificate made at run
//! time and trusted through SSL_CERT_FILE (as an operator points Halley at a private
//! authority); and a server that does not trust it, which publishes nothing.

mod util;

use std::time::Duration;

use util::redis::{free_port, RedisServer};
use util::tls::TestCert;
use util::{start_with, wait_until, TestServer};

fn node(url: &str) -> TestServer {
    let url = url.to_string();
    start_with(move |c| {
        c.redis = Some(url);
        c.redis_timeout = Duration::from_millis(500);
    })
}

#[test]
fn servers_share_channels_over_tls_to_redis_and_refuse_a_redis_they_do_not_trust() {
    let cert = TestCert::new("redis");
    let port = free_port();
    let (cert_file, key_file) = (cert.cert.to_str().unwrap(), cert.key.to_str().unwrap());
    // Only the TLS port: nothing reaches this Redis in the clear.
    let _redis = RedisServer::start_with(
        port,
        &[
            "--bind",
            "127.0.0.1",
            "--port",
            "0",
            "--tls-port",
            &port.to_string(),
            "--tls-cert-file",
            cert_file,
            "--tls-key-file",
            key_file,
            "--tls-auth-clients",
            "no",
        ],
    );
    let url = format!("rediss://localhost:{port}/0");
    // Not trusted (the system's certificates only): nothing is stored.
    // SAFETY: this test binary runs this one test; nothing else reads the
    // environment meanwhile.
    unsafe { std::env::remove_var("SSL_CERT_FILE") };
    let untrusting = node(&url);
    let (status, body) = untrusting.publish("secure", "never");
    assert_eq!(status, 503, "{body}");
    assert_eq!(untrusting.stats_json()["admin"]["redis_connected"], 0);
    drop(untrusting);
    // SAFETY: as above.
    unsafe { std::env::set_var("SSL_CERT_FILE", &cert.cert) };
    let (a, b) = (node(&url), node(&url));
    wait_until(
        || b.stats_json()["admin"]["redis_connected"] == 1,
        "b listens to Redis over TLS",
    );
    let mut stream = b.client();
    stream.get("/sub/secure?t=stream");
    assert_eq!(stream.head().status, 200);
    stream.prelude("stream");
    wait_until(|| b.counter("subscribers") == 1, "a subscriber on b");
    for n in 1..=3 {
        assert_eq!(a.publish_ok("secure", &format!("m{n}")), n);
    }
    for n in 1..=3 {
        assert_eq!(
            stream.chunk_text(),
            format!("{{\"ch\":\"secure\",\"id\":{n},\"data\":\"m{n}\"}}\n")
        );
    }
    let response = b.get("/sub/secure?t=poll&since=1");
    assert_eq!(response.json()["cursor"], "3", "{}", response.text());
}
