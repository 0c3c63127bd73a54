//! The engine driven with byte strings alone, under a small application that answers
//! each request with what it read, holds `/hold` until told, and refuses the body of
//! `/no-body`.

use std::sync::atomic::Ordering;

use super::testing::{check_refusals, Harness};
use super::*;
use crate::http::Status;
use crate::stats::ConnStats;

/// Limits small enough to reach in a test.
fn limits() -> Limits {
    Limits {
        max_head: 8192,
        max_body: 64,
        max_pending: 1 << 20,
        kept_input: 0,
        header_ms: 1_000,
        body_ms: 5_000,
        keepalive_ms: 3_000,
        write_ms: 10_000,
        abandon_on_peer_close: true,
        refusal: b"HTTP/1.1 503 Service Unavailable\r\n\r\n",
        on_exhaustion: OnExhaustion::Refuse,
    }
}

#[derive(Default)]
struct Echo {
    limits: Option<Limits>,
    stats: ConnStats,
    closed: usize,
}

#[derive(Debug, Default)]
struct Held(bool);

impl Application for Echo {
    type Conn = Held;

    fn limits(&self) -> Limits {
        self.limits.unwrap_or_else(limits)
    }

    fn conn_stats(&self) -> &ConnStats {
        &self.stats
    }

    fn name(&self) -> &str {
        "echo"
    }

    fn on_head(
        &mut self,
        cx: &mut Cx,
        conn: &mut Connection<Held>,
        head: &RequestHead,
        input: &[u8],
    ) -> HeadVerdict {
        if head.target.of(input) != b"/no-body" {
            return HeadVerdict::Accept;
        }
        conn.http.keep_alive = false;
        conn.respond(
            cx,
            Status::MethodNotAllowed,
            b"text/plain",
            &[],
            b"no body\n",
        );
        HeadVerdict::Answered
    }

    fn on_request(
        &mut self,
        cx: &mut Cx,
        _key: usize,
        conn: &mut Connection<Held>,
        request: &Request<'_>,
    ) {
        if request.target() == b"/hold" {
            conn.app.0 = true;
            return;
        }
        let mut body = request.target().to_vec();
        body.push(b' ');
        body.extend_from_slice(request.body);
        conn.respond(cx, Status::Ok, b"text/plain", &[], &body);
    }

    fn deadline(&self, _conn: &Connection<Held>) -> Option<u64> {
        None
    }

    fn on_timer(&mut self, _cx: &mut Cx, _key: usize, _conn: &mut Connection<Held>) {}

    fn on_close(&mut self, _key: usize, _conn: &mut Connection<Held>) {
        self.closed += 1;
    }

    fn on_wake(&mut self, _conns: &mut Conns<Held>) -> Flow {
        Flow::Continue
    }
}

fn harness() -> Harness<Echo> {
    Harness::new(Echo::default())
}

/// Answers a held request and drives the connection on.
fn release(harness: &mut Harness<Echo>, key: usize) {
    let (cx, conn) = harness.conns.split(key).unwrap();
    assert!(conn.app.0, "was held");
    conn.app.0 = false;
    conn.respond(cx, Status::Ok, b"text/plain", &[], b"released");
    harness.conns.drive(&mut harness.app, key);
}

/// The bodies of the answers in `output`, in order (every answer has a length).
fn bodies(output: &str) -> Vec<String> {
    let mut bodies = Vec::new();
    let mut rest = output;
    while let Some(end) = rest.find("\r\n\r\n") {
        let head = &rest[..end];
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .map_or(0, |n| n.parse().unwrap());
        let body_end = (end + 4 + length).min(rest.len());
        bodies.push(rest[end + 4..body_end].to_string());
        rest = &rest[body_end..];
    }
    bodies
}

fn counter(stats: &ConnStats, name: &str) -> u64 {
    let index = ConnStats::fields()
        .iter()
        .position(|(n, _, _)| *n == name)
        .unwrap_or_else(|| panic!("no counter {name}"));
    stats.values()[index]
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let mut h = harness();
    let key = h.connect(5);
    h.send(
        key,
        b"GET /a HTTP/1.1\r\nHost: t\r\n\r\nPOST /b HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nxyzGET /c HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    let output = h.output_text(key);
    assert_eq!(bodies(&output), ["/a ", "/b xyz", "/c "]);
    assert_eq!(h.app.stats.requests.load(Ordering::Relaxed), 3);
    assert!(matches!(h.phase(key), Some(Phase::Idle { .. })));
}

/// An answer without its `Date:` line.
fn without_date(answer: &str) -> String {
    answer
        .split("\r\n")
        .filter(|line| !line.starts_with("Date: "))
        .collect::<Vec<_>>()
        .join("\r\n")
}

#[test]
fn a_request_split_at_every_byte_gets_the_same_answer() {
    let requests: &[&[u8]] = &[
        b"GET /sub/a?x=1 HTTP/1.1\r\nHost: t\r\nX-A: b\r\n\r\n",
        b"POST /p HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello",
        b"POST /p HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhel\r\n2;x=y\r\nlo\r\n0\r\n\r\n",
    ];
    for request in requests {
        let mut whole = harness();
        let key = whole.connect(1000);
        whole.send(key, request);
        let expected = whole.output_text(key);
        assert_eq!(bodies(&expected).len(), 1);
        for cut in 1..request.len() {
            let mut h = harness();
            let key = h.connect(3);
            h.send(key, &request[..cut]);
            assert_eq!(
                h.take_output(key),
                b"",
                "nothing before the request is whole"
            );
            h.send(key, &request[cut..]);
            // The same but for the Date line (a second may pass between the two).
            assert_eq!(
                without_date(&h.output_text(key)),
                without_date(&expected),
                "cut at {cut}"
            );
        }
    }
}

#[test]
fn every_refusal_is_answered_once_counted_and_closes() {
    let mut h = harness();
    check_refusals(&mut h, |app, name| counter(&app.stats, name));
}

#[test]
fn bodies_over_the_limit_and_bad_chunks_are_refused() {
    let cases: &[(&[u8], &str, &str)] = &[
        (
            b"POST /p HTTP/1.1\r\nHost: t\r\nContent-Length: 65\r\n\r\n",
            "413 Content Too Large",
            "messages_too_large",
        ),
        (
            b"POST /p HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n41\r\n",
            "413 Content Too Large",
            "messages_too_large",
        ),
        (
            b"POST /p HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            "400 Bad Request",
            "bad_requests",
        ),
    ];
    for (bytes, status, name) in cases {
        let mut h = harness();
        let key = h.connect(100);
        h.send(key, bytes);
        let output = h.output_text(key);
        assert!(
            output.starts_with(&format!("HTTP/1.1 {status}\r\n")),
            "{output}"
        );
        assert!(!h.is_open(key));
        assert_eq!(counter(&h.app.stats, name), 1, "{name}");
    }
}

#[test]
fn expect_continue_is_answered_once_while_the_body_waits() {
    let mut h = harness();
    let key = h.connect(100);
    h.send(
        key,
        b"POST /p HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n",
    );
    assert_eq!(h.output_text(key), "HTTP/1.1 100 Continue\r\n\r\n");
    h.send(key, b"ab");
    assert_eq!(h.output_text(key), "", "not twice");
    assert!(matches!(h.phase(key), Some(Phase::Body { .. })));
    h.send(key, b"cd");
    assert_eq!(bodies(&h.output_text(key)), ["/p abcd"]);
}

#[test]
fn a_refused_head_never_has_its_body_read() {
    let mut h = harness();
    let key = h.connect(100);
    // The "body" is a request of its own: were it read as the next request, it would
    // be answered.
    let smuggled = b"GET /x HTTP/1.1\r\nHost: t\r\n\r\n";
    let mut sent = format!(
        "POST /no-body HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
        smuggled.len()
    )
    .into_bytes();
    sent.extend_from_slice(smuggled);
    h.send(key, &sent);
    let output = h.output_text(key);
    assert!(output.starts_with("HTTP/1.1 405 "), "{output}");
    assert_eq!(output.matches("HTTP/1.1").count(), 1);
    assert!(!h.is_open(key));
}

#[test]
fn requests_behind_a_held_one_wait_their_turn() {
    let mut h = harness();
    let key = h.connect(100);
    h.send(
        key,
        b"GET /hold HTTP/1.1\r\nHost: t\r\n\r\nGET /next HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    assert_eq!(h.output_text(key), "");
    assert_eq!(h.phase(key), Some(Phase::Answering));
    h.send(key, b"GET /third HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(h.output_text(key), "", "still held");
    release(&mut h, key);
    assert_eq!(
        bodies(&h.output_text(key)),
        ["released", "/next ", "/third "]
    );
}

#[test]
fn a_slow_head_gets_408_and_a_silent_connection_is_just_closed() {
    let mut h = harness();
    let slow = h.connect(100);
    let silent = h.connect(100);
    h.send(slow, b"GET /a HTTP/1.1\r\nHo");
    h.conns.drive(&mut h.app, silent);
    // A timer fires in the millisecond after its deadline (loop time is floored).
    h.advance(1_000);
    assert!(h.is_open(slow) && h.is_open(silent));
    h.advance(1);
    assert!(!h.is_open(silent));
    assert_eq!(
        h.take_output(silent),
        b"",
        "no answer to a connection that said nothing"
    );
    assert!(!h.is_open(slow), "closed once its 408 is flushed");
    let answer = h.output_text(slow);
    assert!(
        answer.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
        "{answer}"
    );
    assert!(answer.contains("\r\nConnection: close\r\n"));
    assert_eq!(counter(&h.app.stats, "header_timeouts"), 2);
}

#[test]
fn the_408_is_written_before_the_close() {
    let mut h = harness();
    let slow = h.connect(100);
    h.send(slow, b"GET /a HTTP/1.1\r\nHo");
    h.stop_reading(slow);
    h.advance(1_001);
    assert_eq!(
        h.phase(slow),
        Some(Phase::Closing),
        "waits to flush its answer"
    );
    h.resume_reading(slow);
    assert!(h
        .output_text(slow)
        .starts_with("HTTP/1.1 408 Request Timeout\r\n"));
    assert!(!h.is_open(slow));
}

#[test]
fn a_body_that_stops_coming_times_out() {
    let mut h = harness();
    let key = h.connect(100);
    h.send(
        key,
        b"POST /p HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nab",
    );
    h.advance(5_000);
    assert!(h.is_open(key), "the body timeout, not the header timeout");
    h.advance(1);
    assert!(h.output_text(key).starts_with("HTTP/1.1 408 "));
    assert!(!h.is_open(key));
    assert_eq!(counter(&h.app.stats, "header_timeouts"), 1);
}

#[test]
fn an_idle_keep_alive_connection_is_closed() {
    let mut h = harness();
    let key = h.connect(100);
    h.send(key, b"GET /a HTTP/1.1\r\nHost: t\r\n\r\n");
    h.closes_just_after(key, 3_000);
    assert_eq!(counter(&h.app.stats, "keepalive_timeouts"), 1);
}

#[test]
fn output_that_makes_no_progress_is_dropped_after_the_write_timeout() {
    let mut h = harness();
    let key = h.connect(100);
    h.stop_reading(key);
    h.send(key, b"GET /a HTTP/1.1\r\nHost: t\r\n\r\n");
    h.closes_just_after(key, 10_000);
    assert_eq!(counter(&h.app.stats, "write_timeouts"), 1);
    assert_eq!(
        counter(&h.app.stats, "keepalive_timeouts"),
        0,
        "not idle, only slow"
    );

    // Output that drains late: the keep-alive timeout runs from then.
    let key = h.connect(100);
    h.stop_reading(key);
    h.send(key, b"GET /a HTTP/1.1\r\nHost: t\r\n\r\n");
    h.advance(5_000);
    h.resume_reading(key);
    assert_eq!(bodies(&h.output_text(key)), ["/a "]);
    h.closes_just_after(key, 3_000);
    assert_eq!(counter(&h.app.stats, "keepalive_timeouts"), 1);
}

#[test]
fn a_peer_that_leaves_is_let_go_as_the_port_says() {
    // Mid-head: closed.
    let mut h = harness();
    let key = h.connect(100);
    h.send(key, b"GET /a HTT");
    h.shut(key);
    assert!(!h.is_open(key));
    assert_eq!(h.app.closed, 1);

    // Held, on a port that abandons: closed at once.
    let key = h.connect(100);
    h.send(key, b"GET /hold HTTP/1.1\r\nHost: t\r\n\r\n");
    h.shut(key);
    assert!(!h.is_open(key));

    // Held, on a port that answers anyway: answered, then closed.
    let mut h = Harness::new(Echo {
        limits: Some(Limits {
            abandon_on_peer_close: false,
            ..limits()
        }),
        ..Echo::default()
    });
    let key = h.connect(100);
    h.send(key, b"GET /hold HTTP/1.1\r\nHost: t\r\n\r\n");
    h.shut(key);
    assert!(h.is_open(key));
    let (cx, conn) = h.conns.split(key).unwrap();
    conn.respond(cx, Status::Ok, b"text/plain", &[], b"late");
    h.conns.drive(&mut h.app, key);
    assert_eq!(bodies(&h.output_text(key)), ["late"]);
    assert!(!h.is_open(key));
}

#[test]
fn head_answers_carry_no_body_and_http10_closes_unless_asked() {
    let mut h = harness();
    let key = h.connect(100);
    h.send(key, b"HEAD /a HTTP/1.1\r\nHost: t\r\n\r\n");
    let output = h.output_text(key);
    assert!(output.contains("Content-Length: 3\r\n") && output.ends_with("\r\n\r\n"));
    h.send(key, b"GET /b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert!(h.output_text(key).contains("Connection: keep-alive\r\n"));
    h.send(key, b"GET /c HTTP/1.0\r\n\r\n");
    assert!(h.output_text(key).contains("Connection: close\r\n"));
    assert!(!h.is_open(key));
}

#[test]
fn a_long_pipelined_burst_is_read_a_buffer_at_a_time_and_all_answered() {
    let mut h = harness();
    let key = h.connect(1 << 20);
    let burst: Vec<u8> = (0..2000)
        .flat_map(|i| format!("GET /{i} HTTP/1.1\r\nHost: t\r\n\r\n").into_bytes())
        .collect();
    assert!(burst.len() > 4 * limits().max_input());
    h.send(key, &burst);
    for _ in 0..100 {
        h.conns.drive_again(&mut h.app);
    }
    let answers = bodies(&h.output_text(key));
    let expected: Vec<String> = (0..2000).map(|i| format!("/{i} ")).collect();
    assert_eq!(answers, expected);
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    /// Sends `bytes` cut at `cuts` (positions, any order), driving the connection after
    /// each piece; returns what it wrote and whether it is still open.
    fn send_in_pieces(bytes: &[u8], cuts: &[usize], per_write: usize) -> (Vec<u8>, bool) {
        let mut h = harness();
        let key = h.connect(per_write);
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
        cuts.sort_unstable();
        cuts.dedup();
        let mut at = 0;
        for cut in cuts.into_iter().chain([bytes.len()]) {
            if h.is_open(key) {
                h.send(key, &bytes[at..cut]);
            }
            at = cut;
        }
        (h.take_output(key), h.is_open(key))
    }

    proptest! {
        #[test]
        fn any_bytes_in_any_pieces_get_whole_answers_or_none(
            bytes in prop::collection::vec(any::<u8>(), 0..600),
            cuts in prop::collection::vec(any::<usize>(), 0..8),
            per_write in 1usize..64,
        ) {
            let (output, _) = send_in_pieces(&bytes, &cuts, per_write);
            let text = String::from_utf8_lossy(&output).into_owned();
            prop_assert!(output.is_empty() || text.starts_with("HTTP/1.1 "), "{text:?}");
        }

        #[test]
        fn pipelined_requests_in_any_pieces_get_the_answers_they_get_whole(
            cuts in prop::collection::vec(any::<usize>(), 0..12),
            per_write in 1usize..64,
        ) {
            let requests = b"GET /a HTTP/1.1\r\nHost: t\r\n\r\n\
                POST /b HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n\
                POST /c HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nxyz\
                HEAD /d HTTP/1.0\r\n\r\n";
            let (whole, _) = send_in_pieces(requests, &[], 1000);
            let (pieces, open) = send_in_pieces(requests, &cuts, per_write);
            prop_assert_eq!(&pieces, &whole);
            prop_assert!(!open, "HTTP/1.0 without keep-alive closes");
            let text = String::from_utf8(whole).unwrap();
            prop_assert_eq!(text.matches("HTTP/1.1 200 OK\r\n").count(), 4);
        }
    }
}
