//! The subscriber application driven through the engine with byte strings: the
//! engine's refusals, its own (`405`), and a held long-poll answered by an event that
//! arrives through the inbox.

use std::sync::Arc;

use mio::{Poll, Waker};

use super::SubscriberApp;
use crate::bus::{loop_channel, LoopMessage, LoopSender};
use crate::channel::{ChannelIndex, Event};
use crate::config::Config;
use crate::engine::testing::{answer_len, check_refusals, Harness};
use crate::engine::{Application, Phase};
use crate::stats::Stats;

/// A subscriber application on loop 0, the sender to its inbox, and the poll that
/// owns its waker.
fn harness() -> (Harness<SubscriberApp>, LoopSender, Poll) {
    let poll = Poll::new().unwrap();
    let waker = Arc::new(Waker::new(poll.registry(), crate::engine::WAKER).unwrap());
    let (sender, inbox) = loop_channel(waker);
    let config = Arc::new(Config::default());
    let app = SubscriberApp::new(
        0,
        inbox,
        ChannelIndex::new(config.history),
        config,
        Arc::new(Stats::new(1)),
    );
    (Harness::new(app), sender, poll)
}

fn counter(app: &SubscriberApp, name: &str) -> u64 {
    let json: serde_json::Value = serde_json::from_str(&app.stats.to_json()).unwrap();
    json["loops"][0][name]
        .as_u64()
        .unwrap_or_else(|| panic!("no counter {name}"))
}

#[test]
fn bad_input_gets_the_engines_answers() {
    let (mut h, _sender, _poll) = harness();
    check_refusals(&mut h, counter);
}

#[test]
fn a_body_or_another_method_is_405_and_the_body_is_never_read() {
    let smuggled = b"GET /sub/x?t=poll HTTP/1.1\r\nHost: t\r\n\r\n";
    for method in ["POST", "GET", "PUT"] {
        let (mut h, _sender, _poll) = harness();
        let key = h.connect(9);
        let mut sent = format!(
            "{method} /sub/x HTTP/1.1\r\nHost: t\r\nOrigin: https://a.example\r\nContent-Length: {}\r\n\r\n",
            smuggled.len()
        )
        .into_bytes();
        sent.extend_from_slice(smuggled);
        h.send(key, &sent);
        let output = h.output_text(key);
        assert!(
            output.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"),
            "{output}"
        );
        assert!(output.contains("\r\nAllow: GET, HEAD, OPTIONS\r\n"));
        assert!(
            output.contains("\r\nAccess-Control-Allow-Origin: *\r\n"),
            "CORS, so a page can read it"
        );
        assert_eq!(answer_len(&output), Some(output.len()), "one answer");
        assert!(!h.is_open(key));
        assert_eq!(counter(&h.app, "methods_not_allowed"), 1);
    }
}

#[test]
fn a_held_long_poll_is_answered_by_an_event_from_the_inbox_then_serves_what_was_pipelined() {
    let (mut h, sender, _poll) = harness();
    let key = h.connect(4);
    h.send(
        key,
        b"GET /sub/live HTTP/1.1\r\nHost: t\r\n\r\nGET /sub/live?t=poll HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    assert_eq!(h.output_text(key), "", "held");
    assert_eq!(h.phase(key), Some(Phase::Answering));
    assert_eq!(counter(&h.app, "subscribers"), 1);
    let event = Arc::new(Event::message("live".into(), 1, "hello"));
    assert!(sender.send(LoopMessage::Event(event)));
    let _ = h.app.on_wake(&mut h.conns);
    let output = h.output_text(key);
    let first = answer_len(&output).expect("an answer");
    assert!(
        output[..first].ends_with(
            "{\"cursor\":\"1\",\"frames\":[{\"ch\":\"live\",\"id\":1,\"data\":\"hello\"}]}"
        ),
        "{output}"
    );
    assert!(
        output[first..].starts_with("HTTP/1.1 200 OK\r\n"),
        "the pipelined poll"
    );
    assert!(
        output.ends_with("{\"cursor\":\"1\",\"frames\":[]}"),
        "{output}"
    );
    assert_eq!(counter(&h.app, "subscribers"), 0);
    assert!(matches!(h.phase(key), Some(Phase::Idle { .. })));
}
