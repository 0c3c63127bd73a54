//! The Redis listener against a real `redis-server`: each channel's events handed on
//! in id order exactly once, whatever happens to the announcements (PROTOCOL.md
//! "Several servers"; issue 18's faults: announcements dropped, the subscription
//! closed by Redis, Redis restarted empty).

mod util;

use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use halley::storage::redis_store::{keys, AnnouncementError, Heard, Listener, RedisStore, Stored};
use util::redis::RedisServer;

const TIMEOUT: Duration = Duration::from_secs(2);

/// A listener on its own thread; what it hears comes out of `heard`.
struct Ear {
    heard: Receiver<Heard>,
    stop: Option<Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Ear {
    fn start(redis: &RedisServer) -> Ear {
        let (to_test, heard) = crossbeam_channel::unbounded();
        let (stop, stopping) = crossbeam_channel::bounded(1);
        let url = redis.url();
        let thread = std::thread::spawn(move || {
            Listener::new(&url, TIMEOUT).unwrap().run(&stopping, |h| {
                // A pause only says when to wake the loops.
                if h != Heard::Pause {
                    let _ = to_test.send(h);
                }
            })
        });
        let ear = Ear {
            heard,
            stop: Some(stop),
            thread: Some(thread),
        };
        assert_eq!(ear.next(), Heard::Connected);
        ear
    }

    /// The next thing heard (bounded by `WAIT`).
    fn next(&self) -> Heard {
        self.heard
            .recv_timeout(util::WAIT)
            .expect("something heard in time")
    }

    /// The next thing heard, skipping the subscription's comings and goings.
    fn next_event(&self) -> Heard {
        loop {
            match self.next() {
                Heard::Connected | Heard::Disconnected(_) => continue,
                heard => return heard,
            }
        }
    }
}

impl Drop for Ear {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn event(channel: &str, id: u64, data: &str) -> Heard {
    Heard::Event {
        channel: Arc::from(channel),
        id,
        data: Some(data.as_bytes().to_vec()),
    }
}

fn store(redis: &RedisServer) -> RedisStore {
    RedisStore::connect(&redis.url(), TIMEOUT, 1000).unwrap()
}

/// Writes event `id` of `channel` into Redis as the script would, but announces
/// nothing: an announcement lost on its way.
fn store_silently(redis: &RedisServer, channel: &str, id: u64, data: &str) {
    let mut c = redis.connection();
    redis::cmd("HSET")
        .arg(keys::meta(channel))
        .arg("last")
        .arg(id)
        .query::<()>(&mut c)
        .unwrap();
    redis::cmd("XADD")
        .arg(keys::log(channel))
        .arg(format!("0-{id}"))
        .arg("d")
        .arg(data)
        .query::<()>(&mut c)
        .unwrap();
}

#[test]
fn events_and_the_close_marker_are_heard_in_order() {
    let redis = RedisServer::start();
    let ear = Ear::start(&redis);
    let mut store = store(&redis);
    for n in 1..=5 {
        store
            .publish("news", format!("n{n}").as_bytes(), 0)
            .unwrap();
    }
    store.close("news", 0).unwrap();
    for n in 1..=5 {
        assert_eq!(ear.next_event(), event("news", n, &format!("n{n}")));
    }
    assert_eq!(
        ear.next_event(),
        Heard::Event {
            channel: Arc::from("news"),
            id: 6,
            data: None
        }
    );
}

#[test]
fn a_lost_announcement_is_read_from_the_stream_before_the_next() {
    let redis = RedisServer::start();
    let ear = Ear::start(&redis);
    let mut store = store(&redis);
    store.publish("ch", b"one", 0).unwrap();
    assert_eq!(ear.next_event(), event("ch", 1, "one"));
    store_silently(&redis, "ch", 2, "two, unannounced");
    assert_eq!(store.publish("ch", b"three", 0).unwrap(), Stored::New(3));
    assert_eq!(ear.next_event(), event("ch", 2, "two, unannounced"));
    assert_eq!(ear.next_event(), event("ch", 3, "three"));
}

#[test]
fn what_the_stream_no_longer_holds_is_a_gap() {
    let redis = RedisServer::start();
    let ear = Ear::start(&redis);
    let mut store = store(&redis);
    store.publish("ch", b"one", 0).unwrap();
    assert_eq!(ear.next_event(), event("ch", 1, "one"));
    for id in 2..=30 {
        store_silently(&redis, "ch", id, &format!("e{id}"));
    }
    let mut c = redis.connection();
    redis::cmd("XTRIM")
        .arg(keys::log("ch"))
        .arg("MINID")
        .arg("0-21")
        .query::<()>(&mut c)
        .unwrap();
    store.publish("ch", b"e31", 0).unwrap();
    assert_eq!(
        ear.next_event(),
        Heard::Gap {
            channel: Arc::from("ch"),
            from: 2,
            to: 20
        }
    );
    for id in 21..=31 {
        assert_eq!(ear.next_event(), event("ch", id, &format!("e{id}")));
    }
}

#[test]
fn a_subscription_closed_by_redis_is_made_again_and_nothing_is_missed() {
    let redis = RedisServer::start();
    let ear = Ear::start(&redis);
    let mut store = store(&redis);
    store.publish("ch", b"before", 0).unwrap();
    assert_eq!(ear.next_event(), event("ch", 1, "before"));
    // New connections are refused until the password goes (the ones open stay), and
    // the listener's subscription is closed: it cannot come back while we publish.
    let mut c = redis.connection();
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("requirepass")
        .arg("for-a-while")
        .query::<()>(&mut c)
        .unwrap();
    redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("pubsub")
        .query::<u64>(&mut c)
        .unwrap();
    assert!(matches!(ear.next(), Heard::Disconnected(_)));
    store.publish("ch", b"while away 1", 0).unwrap();
    store.publish("ch", b"while away 2", 0).unwrap();
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("requirepass")
        .arg("")
        .query::<()>(&mut c)
        .unwrap();
    // Caught up on coming back, before it says it is connected, in order, once.
    let mut after: Vec<Heard> = Vec::new();
    while after.last() != Some(&Heard::Connected) {
        match ear.next() {
            Heard::Disconnected(_) => {}
            heard => after.push(heard),
        }
    }
    assert_eq!(
        after,
        vec![
            event("ch", 2, "while away 1"),
            event("ch", 3, "while away 2"),
            Heard::Connected
        ]
    );
    store.publish("ch", b"after", 0).unwrap();
    assert_eq!(ear.next_event(), event("ch", 4, "after"));
}

#[test]
fn after_redis_restarts_empty_ids_go_on_above_what_was_heard() {
    let redis = RedisServer::start();
    let ear = Ear::start(&redis);
    let mut store = store(&redis);
    for n in 1..=3 {
        store.publish("ch", b"x", 0).unwrap();
        assert!(matches!(ear.next_event(), Heard::Event { id, .. } if id == n));
    }
    let port = redis.kill();
    assert!(matches!(ear.next(), Heard::Disconnected(_)));
    let redis = RedisServer::start_on(port);
    loop {
        // Reconnecting may take a few tries while Redis starts.
        match ear.next() {
            Heard::Connected => break,
            Heard::Disconnected(_) => continue,
            other => panic!("{other:?}"),
        }
    }
    // The listener raised the counter to 3 when it came back: a publisher that knows
    // nothing (floor 0) gets 4, not 1, and it is heard.
    let mut store = RedisStore::connect(&redis.url(), TIMEOUT, 1000).unwrap();
    assert_eq!(store.publish("ch", b"after", 0).unwrap(), Stored::New(4));
    assert_eq!(ear.next_event(), event("ch", 4, "after"));
}

#[test]
fn what_is_not_an_announcement_is_refused_and_the_rest_goes_on() {
    let redis = RedisServer::start();
    let ear = Ear::start(&redis);
    let mut c = redis.connection();
    for (bytes, why) in [
        ("hello", AnnouncementError::NoHead),
        ("hello\n", AnnouncementError::Version),
        ("halley1 e 0 ch\nzero", AnnouncementError::Id),
    ] {
        redis::cmd("PUBLISH")
            .arg(keys::ANNOUNCEMENTS)
            .arg(bytes)
            .query::<u64>(&mut c)
            .unwrap();
        assert_eq!(ear.next_event(), Heard::Refused(why));
    }
    store(&redis).publish("ch", b"fine", 0).unwrap();
    assert_eq!(ear.next_event(), event("ch", 1, "fine"));
}

#[test]
fn a_channel_s_bounds_do_not_overtake_its_announcements() {
    use halley::storage::redis_store::barrier::Barriers;
    use halley::storage::redis_store::RedisReader;
    use halley::storage::StorageReader;

    let redis = RedisServer::start();
    // A listener that hands on nothing until the test lets it: a listener behind.
    let (to_test, heard) = crossbeam_channel::unbounded::<Heard>();
    let (release, released) = crossbeam_channel::unbounded::<()>();
    let (stop, stopping) = crossbeam_channel::bounded::<()>(1);
    let mut listener = Listener::new(&redis.url(), TIMEOUT).unwrap();
    let barriers = Barriers::new();
    barriers.install_single(listener.gate());
    let listening = std::thread::spawn(move || {
        listener.run(&stopping, |h| {
            if matches!(h, Heard::Event { .. }) {
                let _ = released.recv_timeout(util::WAIT);
            }
            if h != Heard::Pause {
                let _ = to_test.send(h);
            }
        })
    });
    assert_eq!(heard.recv_timeout(util::WAIT).unwrap(), Heard::Connected);
    let mut store = RedisStore::connect(&redis.url(), TIMEOUT, 100).unwrap();
    assert_eq!(store.publish("ch", b"one", 0).unwrap(), Stored::New(1));
    // Redis holds event 1; the listener has read its announcement and holds it.
    let mut reader = RedisReader::behind(&redis.url(), TIMEOUT, barriers);
    let (answer, answered) = crossbeam_channel::bounded(1);
    let reading = std::thread::spawn(move || {
        assert!(reader.read_after("ch", u64::MAX, u64::MAX, 1000).is_empty());
        let _ = answer.send(reader.bounds("ch"));
    });
    assert!(
        answered.recv_timeout(Duration::from_millis(300)).is_err(),
        "the bounds wait for the listener"
    );
    release.send(()).unwrap();
    assert_eq!(
        heard.recv_timeout(util::WAIT).unwrap(),
        event("ch", 1, "one")
    );
    assert_eq!(
        answered.recv_timeout(util::WAIT).unwrap(),
        Some((1, None)),
        "then they go"
    );
    reading.join().unwrap();
    drop(stop);
    listening.join().unwrap();
}

#[test]
fn without_a_listener_connected_bounds_are_not_given() {
    use halley::storage::redis_store::barrier::Barriers;
    use halley::storage::redis_store::RedisReader;
    use halley::storage::StorageReader;

    let redis = RedisServer::start();
    let mut store = RedisStore::connect(&redis.url(), TIMEOUT, 100).unwrap();
    store.publish("ch", b"one", 0).unwrap();
    // No listener installed yet (a Redis Cluster whose map is not read yet).
    let mut reader = RedisReader::behind(&redis.url(), Duration::from_millis(200), Barriers::new());
    assert!(reader.read_after("ch", 0, u64::MAX, 1000).len() == 1);
    assert_eq!(reader.bounds("ch"), None);
    // A reader alone answers at once.
    let mut alone = RedisReader::new(&redis.url(), TIMEOUT);
    alone.read_after("ch", 0, u64::MAX, 1000);
    assert_eq!(alone.bounds("ch"), Some((1, None)));
}
