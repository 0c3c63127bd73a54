//! The real binary: stopped with SIGTERM and SIGINT, its streams and held polls end
//! cleanly and it exits within 2 s.

mod util;

use std::time::{Duration, Instant};

use util::{binary, Client};

fn stop_with(signal: i32) {
    let mut halley = binary::spawn(&[]);
    let mut stream = Client::connect(halley.sub);
    stream.get("/sub/s?t=stream");
    stream.head();
    stream.prelude("stream");
    let mut sse = Client::connect(halley.sub);
    sse.get("/sub/s?t=sse");
    sse.head();
    sse.chunk();
    let mut held = Client::connect(halley.sub);
    held.get("/sub/s?t=longpoll");
    let mut fresh = Client::connect(halley.sub);
    fresh.get("/sub/never-published?t=longpoll");
    util::wait_until(
        || halley.stats()["subscribers"].as_u64() == Some(4),
        "four subscribers",
    );
    let started = Instant::now();
    halley.signal(signal);
    assert_eq!(stream.chunk(), None, "the stream ends with its last chunk");
    assert_eq!(
        sse.chunk(),
        None,
        "the event stream ends with its last chunk"
    );
    for poll in [&mut held, &mut fresh] {
        let answer = poll.response();
        assert_eq!(answer.status, 200);
        assert_eq!(answer.header("Connection"), Some("close"));
        assert_eq!(answer.json()["frames"], serde_json::json!([]));
    }
    stream.expect_closed();
    let status = halley.wait_exit(Duration::from_secs(2));
    assert!(status.success(), "{status:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[test]
fn sigterm_ends_streams_cleanly_and_exits() {
    stop_with(libc::SIGTERM);
}

#[test]
fn sigint_does_the_same() {
    stop_with(libc::SIGINT);
}
