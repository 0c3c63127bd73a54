//! The Redis store's pieces against a real `redis-server` (Debian's package), one
//! test per rule of PROTOCOL.md's "Several servers" they carry: ids from 1 by exactly
//! 1 whoever publishes, never back after Redis lost data, the close marker, reading
//! after a cursor, announcements to every listener in order, and Redis gone.

mod util;

use std::time::Duration;

use halley::storage::redis_store::{
    keys, Announcement, Kind, RedisError, RedisReader, RedisStore, Stored, StoredEvent,
};
use halley::storage::{StorageReader, Stored as StoredItem};
use util::redis::RedisServer;

const TIMEOUT: Duration = Duration::from_secs(2);

fn store(redis: &RedisServer) -> RedisStore {
    RedisStore::connect(&redis.url(), TIMEOUT, 1000).expect("connect")
}

#[test]
fn ids_start_at_1_and_grow_by_exactly_1_whoever_publishes() {
    let redis = RedisServer::start();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let url = redis.url();
            std::thread::spawn(move || {
                let mut store = RedisStore::connect(&url, TIMEOUT, 1000).unwrap();
                (0..200)
                    .map(
                        |i| match store.publish("race", format!("{t}-{i}").as_bytes(), 0) {
                            Ok(Stored::New(id)) => id,
                            other => panic!("{other:?}"),
                        },
                    )
                    .collect::<Vec<u64>>()
            })
        })
        .collect();
    let mut ids: Vec<u64> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, (1..=800).collect::<Vec<u64>>());
    // The stream holds them in id order, each publisher's in its own order.
    let events = store(&redis).read_after("race", 0, 1000).unwrap();
    assert_eq!(
        events.iter().map(|e| e.id).collect::<Vec<_>>(),
        (1..=800).collect::<Vec<_>>()
    );
    for t in 0..4 {
        let mine: Vec<String> = events
            .iter()
            .map(|e| String::from_utf8(e.data.clone().unwrap()).unwrap())
            .filter(|d| d.starts_with(&format!("{t}-")))
            .collect();
        let expected: Vec<String> = (0..200).map(|i| format!("{t}-{i}")).collect();
        assert_eq!(mine, expected);
    }
}

#[test]
fn a_closed_channel_takes_nothing_more_and_closing_again_changes_nothing() {
    let redis = RedisServer::start();
    let mut store = store(&redis);
    assert_eq!(store.publish("c", b"one", 0).unwrap(), Stored::New(1));
    assert_eq!(store.close("c", 0).unwrap(), Stored::New(2));
    assert_eq!(
        store.publish("c", b"late", 0).unwrap(),
        Stored::AlreadyClosed(2)
    );
    assert_eq!(store.close("c", 0).unwrap(), Stored::AlreadyClosed(2));
    let bounds = store.bounds("c").unwrap();
    assert_eq!(
        (bounds.first_id, bounds.last_id, bounds.closed_id),
        (1, 2, Some(2))
    );
    assert_eq!(
        store.read_after("c", 0, 10).unwrap(),
        vec![
            StoredEvent {
                id: 1,
                data: Some(b"one".to_vec())
            },
            StoredEvent { id: 2, data: None },
        ]
    );
}

#[test]
fn ids_never_go_back_after_redis_restarts_empty() {
    let redis = RedisServer::start();
    let mut store = store(&redis);
    for n in 1..=5 {
        assert_eq!(store.publish("live", b"x", 0).unwrap(), Stored::New(n));
    }
    let port = redis.kill();
    let redis = RedisServer::start_on(port);
    let mut store = RedisStore::connect(&redis.url(), TIMEOUT, 1000).unwrap();
    // The server had delivered up to 5: the next id is 6, not 1.
    assert_eq!(store.publish("live", b"after", 5).unwrap(), Stored::New(6));
    assert_eq!(store.publish("live", b"next", 0).unwrap(), Stored::New(7));
    // What was lost is not there to read: the first id held is 6.
    assert_eq!(store.bounds("live").unwrap().first_id, 6);
}

#[test]
fn reading_after_a_cursor_and_the_bounds_of_a_trimmed_channel() {
    let redis = RedisServer::start();
    let mut store = RedisStore::connect(&redis.url(), TIMEOUT, 10).unwrap();
    for n in 1..=500u64 {
        store.publish("long", n.to_string().as_bytes(), 0).unwrap();
    }
    let after = store.read_after("long", 495, 100).unwrap();
    assert_eq!(
        after.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![496, 497, 498, 499, 500]
    );
    assert_eq!(after[0].data.as_deref(), Some(&b"496"[..]));
    let bounds = store.bounds("long").unwrap();
    assert_eq!(bounds.last_id, 500);
    // `MAXLEN ~ 10` keeps at least the last 10, and trims whole nodes of the stream.
    assert!(
        bounds.first_id > 1 && bounds.first_id <= 491,
        "first id {}",
        bounds.first_id
    );
    assert_eq!(
        store.read_after("long", 0, 1).unwrap()[0].id,
        bounds.first_id
    );
    let unknown = store.bounds("never").unwrap();
    assert_eq!(
        (unknown.first_id, unknown.last_id, unknown.closed_id),
        (1, 0, None)
    );
}

#[test]
fn every_listener_hears_every_announcement_in_order() {
    let redis = RedisServer::start();
    let mut listeners: Vec<redis::Connection> = (0..2).map(|_| redis.connection()).collect();
    let mut pubsubs: Vec<_> = listeners.iter_mut().map(|c| c.as_pubsub()).collect();
    for pubsub in &mut pubsubs {
        pubsub
            .subscribe(halley::storage::redis_store::keys::ANNOUNCEMENTS)
            .unwrap();
        pubsub.set_read_timeout(Some(util::WAIT)).unwrap();
    }
    let mut store = store(&redis);
    let data: &[&[u8]] = &[b"plain", b"with\na newline", b"", &[0, 255, 10, 13]];
    for d in data {
        store.publish("news", d, 0).unwrap();
    }
    store.close("news", 0).unwrap();
    for pubsub in &mut pubsubs {
        for (i, d) in data.iter().enumerate() {
            let message = pubsub.get_message().unwrap();
            let bytes: Vec<u8> = message.get_payload().unwrap();
            let announced = Announcement::parse(&bytes).unwrap();
            assert_eq!(
                (
                    announced.kind,
                    announced.id,
                    announced.channel,
                    announced.data
                ),
                (Kind::Event, i as u64 + 1, "news", *d)
            );
        }
        let bytes: Vec<u8> = pubsub.get_message().unwrap().get_payload().unwrap();
        let close = Announcement::parse(&bytes).unwrap();
        assert_eq!((close.kind, close.id), (Kind::Close, 5));
    }
}

#[test]
fn redis_gone_is_unavailable_not_a_panic() {
    let redis = RedisServer::start();
    let mut store = store(&redis);
    store.publish("x", b"before", 0).unwrap();
    let port = redis.kill();
    assert!(matches!(
        store.publish("x", b"after", 0),
        Err(RedisError::Unavailable(_))
    ));
    let refused = RedisStore::connect(&format!("redis://127.0.0.1:{port}/0"), TIMEOUT, 10);
    assert!(matches!(refused, Err(RedisError::Unavailable(_))));
}

/// What a catch-up read yields, as text: `3:data` for an event (`3:closed` for the
/// close marker), `gap 2-9` for a gap.
fn read(
    reader: &mut RedisReader,
    channel: &str,
    cursor: u64,
    to: u64,
    max_bytes: usize,
) -> Vec<String> {
    reader
        .read_after(channel, cursor, to, max_bytes)
        .into_iter()
        .map(|item| match item {
            StoredItem::Event(e) if e.closed => format!("{}:closed", e.id),
            StoredItem::Event(e) => {
                let json = String::from_utf8(e.json.to_vec()).unwrap();
                let data = json
                    .rsplit("\"data\":\"")
                    .next()
                    .unwrap()
                    .trim_end_matches("\"}");
                format!("{}:{data}", e.id)
            }
            StoredItem::Gap { from, to } => format!("gap {from}-{to}"),
        })
        .collect()
}

#[test]
fn the_catch_up_reader_serves_a_cursor_from_the_stream_with_gaps_for_what_is_trimmed() {
    let redis = RedisServer::start();
    let mut store = store(&redis);
    for n in 1..=10u64 {
        store.publish("ch", format!("e{n}").as_bytes(), 0).unwrap();
    }
    store.close("ch", 0).unwrap();
    let mut reader = RedisReader::new(&redis.url(), TIMEOUT);
    assert_eq!(
        read(&mut reader, "ch", 7, u64::MAX, 1 << 20),
        ["8:e8", "9:e9", "10:e10", "11:closed"]
    );
    // Up to `to`, and about `max_bytes` of data (whole events).
    assert_eq!(
        read(&mut reader, "ch", 0, 3, 1 << 20),
        ["1:e1", "2:e2", "3:e3"]
    );
    assert_eq!(read(&mut reader, "ch", 0, u64::MAX, 4), ["1:e1", "2:e2"]);
    // Trimmed: what the stream no longer holds is a gap, then what it holds.
    let mut c = redis.connection();
    redis::cmd("XTRIM")
        .arg(keys::log("ch"))
        .arg("MINID")
        .arg("0-6")
        .query::<()>(&mut c)
        .unwrap();
    assert_eq!(
        read(&mut reader, "ch", 2, 7, 1 << 20),
        ["gap 3-5", "6:e6", "7:e7"]
    );
    // Nothing after the newest; an unknown channel has nothing.
    assert!(read(&mut reader, "ch", 11, u64::MAX, 1 << 20).is_empty());
    assert!(read(&mut reader, "never", 0, u64::MAX, 1 << 20).is_empty());
    // Everything trimmed: one gap up to the newest.
    redis::cmd("DEL")
        .arg(keys::log("ch"))
        .query::<()>(&mut c)
        .unwrap();
    assert_eq!(read(&mut reader, "ch", 2, u64::MAX, 1 << 20), ["gap 3-11"]);
}

#[test]
fn the_catch_up_reader_comes_back_with_redis_and_invents_no_gap_meanwhile() {
    let redis = RedisServer::start();
    store(&redis).publish("ch", b"one", 0).unwrap();
    let mut reader = RedisReader::new(&redis.url(), TIMEOUT);
    assert_eq!(read(&mut reader, "ch", 0, u64::MAX, 1 << 20), ["1:one"]);
    let port = redis.kill();
    assert!(
        read(&mut reader, "ch", 0, u64::MAX, 1 << 20).is_empty(),
        "nothing, not a gap"
    );
    let redis = RedisServer::start_on(port);
    store(&redis).publish("ch", b"again", 0).unwrap();
    assert_eq!(read(&mut reader, "ch", 0, u64::MAX, 1 << 20), ["1:again"]);
}

#[test]
fn many_writes_in_one_pipeline_each_take_effect_in_order() {
    use halley::storage::redis_store::client::Write;
    let redis = RedisServer::start();
    let mut store = store(&redis);
    // The script is not loaded yet: the first of the pipeline comes back NOSCRIPT
    // and is run alone, loading it; the rest go as they are.
    let write = |channel, data, floor| Write {
        channel,
        data,
        floor,
    };
    let results = store.store_many(&[
        write("a", Some(&b"a1"[..]), 0),
        write("b", Some(&b"b1"[..]), 0),
        write("a", Some(&b"a2"[..]), 0),
        write("a", None, 0),
        write("a", Some(&b"late"[..]), 0),
        write("b", Some(&b"b2"[..]), 5),
    ]);
    let results: Vec<Stored> = results.into_iter().map(Result::unwrap).collect();
    assert_eq!(
        results,
        [
            Stored::New(1),
            Stored::New(1),
            Stored::New(2),
            Stored::New(3),
            Stored::AlreadyClosed(3),
            Stored::New(6),
        ]
    );
    let a: Vec<u64> = store
        .read_after("a", 0, 10)
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(a, [1, 2, 3]);
    // After Redis forgot the script, a pipeline loads it again.
    redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query::<()>(&mut redis.connection())
        .unwrap();
    let results = store.store_many(&[
        write("c", Some(&b"c1"[..]), 0),
        write("c", Some(&b"c2"[..]), 0),
    ]);
    assert_eq!(
        results.into_iter().map(Result::unwrap).collect::<Vec<_>>(),
        [Stored::New(1), Stored::New(2)]
    );
    // Redis gone: every write of the pipeline fails, as unavailable.
    drop(redis);
    let results = store.store_many(&[
        write("c", Some(&b"x"[..]), 0),
        write("d", Some(&b"y"[..]), 0),
    ]);
    assert!(
        results
            .iter()
            .all(|r| matches!(r, Err(RedisError::Unavailable(_)))),
        "{results:?}"
    );
}
