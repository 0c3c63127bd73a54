//! The admin application driven through the engine with byte strings: the engine's
//! refusals (the same as the subscriber port's), publishes split anywhere, and
//! pipelined publishes answered in order.

use std::sync::Arc;

use super::{AdminApp, ChannelIds};
use crate::bus::Bus;
use crate::config::Config;
use crate::engine::testing::{check_refusals, Harness};
use crate::stats::Stats;
use crate::storage::journal::Journal;
use crate::storage::MemoryStorage;

fn harness() -> Harness<AdminApp> {
    let config = Arc::new(Config::default());
    let stats = Arc::new(Stats::new(1));
    let memory = Box::new(MemoryStorage::new(config.history));
    let storage = (
        ChannelIds::new(config.history),
        Journal::in_memory(memory, stats.clone()),
    );
    let (_sender, inbox) = crossbeam_channel::unbounded();
    let app = AdminApp::new(inbox, config, stats, Bus::new(Vec::new()), storage);
    Harness::new(app)
}

fn counter(app: &AdminApp, name: &str) -> u64 {
    let json: serde_json::Value = serde_json::from_str(&app.stats.to_json()).unwrap();
    json["admin"][name]
        .as_u64()
        .unwrap_or_else(|| panic!("no counter {name}"))
}

#[test]
fn bad_input_gets_the_engines_answers() {
    let mut h = harness();
    check_refusals(&mut h, counter);
}

#[test]
fn a_publish_split_at_every_byte_is_stored_once() {
    let publish = b"POST /pub/c HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello";
    for cut in 1..publish.len() {
        let mut h = harness();
        let key = h.connect(3);
        h.send(key, &publish[..cut]);
        assert_eq!(h.take_output(key), b"");
        h.send(key, &publish[cut..]);
        let output = h.output_text(key);
        assert!(
            output.starts_with("HTTP/1.1 201 Created\r\n"),
            "cut {cut}: {output}"
        );
        assert!(
            output.ends_with("\r\n\r\n{\"channel\":\"c\",\"id\":1}\n"),
            "cut {cut}"
        );
        assert_eq!(counter(&h.app, "events_stored"), 1);
    }
}

#[test]
fn pipelined_publishes_are_answered_in_order() {
    let mut h = harness();
    let key = h.connect(11);
    let one = b"POST /pub/c HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\nx";
    h.send(key, &one.repeat(3));
    let output = h.output_text(key);
    let ids: Vec<&str> = output
        .split("{\"channel\":\"c\",\"id\":")
        .skip(1)
        .map(|rest| &rest[..1])
        .collect();
    assert_eq!(ids, ["1", "2", "3"]);
    assert_eq!(counter(&h.app, "requests"), 3);
}
