//! Several Halley servers on one Redis (`--redis`), in this process, over real
//! sockets: one test per rule of PROTOCOL.md's "Several servers" built so far. Each
//! test starts its own `redis-server` (Debian's package) on a free loopback port.

mod util;

use std::time::Duration;

use util::redis::RedisServer;
use util::{start_with, wait_until, TestServer};

/// A Halley server sharing its channels through `redis`.
fn node(redis: &RedisServer) -> TestServer {
    let url = redis.url();
    start_with(move |c| {
        c.redis = Some(url);
        c.redis_timeout = Duration::from_millis(500);
    })
}

/// A long-poll's frames' ids and data, as `id:data`.
fn frames(response: &util::Response) -> Vec<String> {
    response.json()["frames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| format!("{}:{}", f["id"], f["data"].as_str().unwrap_or("<closed>")))
        .collect()
}

/// Waits until a node hears Redis (its listener has subscribed).
fn listening(node: &TestServer) {
    wait_until(
        || node.stats_json()["admin"]["redis_connected"] == 1,
        "the node listens to Redis",
    );
}

#[test]
fn ids_come_from_redis_whichever_server_takes_the_publish() {
    let redis = RedisServer::start();
    let (a, b) = (node(&redis), node(&redis));
    assert_eq!(a.publish_ok("news", "from a"), 1);
    assert_eq!(b.publish_ok("news", "from b"), 2);
    assert_eq!(a.publish_ok("news", "from a again"), 3);
    for server in [&a, &b] {
        // A poll answers with what its server has heard (a 201 may come before its
        // event has reached every server); cursor 3 says it has all three.
        wait_until(
            || server.get("/sub/news?t=poll&since=0").json()["cursor"] == "3",
            "the server has heard event 3",
        );
        let response = server.get("/sub/news?t=poll&since=0");
        assert_eq!(
            frames(&response),
            ["1:from a", "2:from b", "3:from a again"]
        );
    }
    let admin = &a.stats_json()["admin"];
    assert_eq!(admin["redis_publishes"], 2);
    assert_eq!(admin["events_published"], 2);
    assert!(admin["redis_publish_us"].as_u64().unwrap() > 0);
    assert_eq!(admin["redis_publish_us_at_most"]["+Inf"], 2);
    let metrics = a.admin_get("/metrics").text();
    assert!(
        metrics.contains("\nhalley_admin_redis_publish_seconds_count 2\n"),
        "{metrics}"
    );
    assert!(metrics.contains("\nhalley_admin_redis_publish_seconds_bucket{le=\"+Inf\"} 2\n"));
}

#[test]
fn a_stream_on_one_server_gets_what_another_server_takes() {
    let redis = RedisServer::start();
    let (a, b) = (node(&redis), node(&redis));
    listening(&b);
    let mut stream = b.client();
    stream.get("/sub/live?t=stream");
    assert_eq!(stream.head().status, 200);
    stream.prelude("stream");
    wait_until(|| b.counter("subscribers") == 1, "a subscriber on b");
    for n in 1..=3 {
        a.publish_ok("live", &format!("m{n}"));
    }
    for n in 1..=3 {
        assert_eq!(
            stream.chunk_text(),
            format!("{{\"ch\":\"live\",\"id\":{n},\"data\":\"m{n}\"}}\n")
        );
    }
}

#[test]
fn a_server_started_later_serves_what_redis_holds() {
    let redis = RedisServer::start();
    let a = node(&redis);
    for n in 1..=3 {
        a.publish_ok("old", &format!("e{n}"));
    }
    let late = node(&redis);
    // Everything retained, at once, though this server heard none of it.
    let response = late.get("/sub/old?t=longpoll&since=0");
    assert_eq!(frames(&response), ["1:e1", "2:e2", "3:e3"]);
    // A cursor from the first server resumes exactly here.
    let response = late.get("/sub/old?t=poll&since=2");
    assert_eq!(frames(&response), ["3:e3"]);
    // Without `since`: only what comes next, not the history.
    listening(&late);
    let mut poll = late.client();
    poll.get("/sub/old?t=longpoll");
    wait_until(|| late.counter("subscribers") == 1, "a long-poll held");
    assert!(
        poll.nothing_within(Duration::from_millis(100)),
        "held, not answered with history"
    );
    a.publish_ok("old", "e4");
    assert_eq!(frames(&poll.response()), ["4:e4"]);
}

#[test]
fn closing_on_one_server_ends_subscribers_on_another_and_refuses_publishes_everywhere() {
    let redis = RedisServer::start();
    let (a, b) = (node(&redis), node(&redis));
    listening(&b);
    a.publish_ok("done", "last words");
    let mut poll = b.client();
    poll.get("/sub/done?t=longpoll&since=1");
    wait_until(|| b.counter("subscribers") == 1, "a long-poll held on b");
    assert_eq!(a.close_channel("done"), 2);
    let response = poll.response();
    assert_eq!(frames(&response), ["2:<closed>"], "{}", response.text());
    let (status, _) = b.publish("done", "too late");
    assert_eq!(status, 409);
    let info = b.admin_get("/channels/done").json();
    assert_eq!(
        (
            info["first_id"].as_u64(),
            info["last_id"].as_u64(),
            info["closed"].as_bool()
        ),
        (Some(1), Some(2), Some(true))
    );
}

#[test]
fn redis_gone_publishes_get_503_and_subscribers_stay() {
    let redis = RedisServer::start();
    let a = node(&redis);
    listening(&a);
    a.publish_ok("ch", "before");
    wait_until(
        || a.get("/sub/ch?t=poll&since=0").json()["cursor"] == "1",
        "the node has heard it",
    );
    let mut stream = a.client();
    stream.get("/sub/ch?t=stream");
    assert_eq!(stream.head().status, 200);
    stream.prelude("stream");
    let port = redis.kill();
    let (status, body) = a.publish("ch", "while down");
    assert_eq!(status, 503, "{body}");
    let admin = &a.stats_json()["admin"];
    assert_eq!(admin["redis_publish_failures"], 1);
    assert_eq!(admin["publishes_refused_storage"], 1);
    assert!(
        stream.nothing_within(Duration::from_millis(100)),
        "the stream is held"
    );
    let redis = RedisServer::start_on(port);
    // Redis came back empty: the next id is above what the node had heard, 2 not 1,
    // whether or not its listener is back yet.
    assert_eq!(a.publish_ok("ch", "after"), 2);
    assert_eq!(
        stream.chunk_text(),
        "{\"ch\":\"ch\",\"id\":2,\"data\":\"after\"}\n"
    );
    drop(redis);
}

#[test]
fn a_cursor_ahead_of_what_a_server_heard_waits_and_one_ahead_of_redis_is_reset() {
    let redis = RedisServer::start();
    let b = node(&redis);
    listening(&b);
    b.publish_ok("ch", "one");
    wait_until(
        || b.get("/sub/ch?t=poll&since=0").json()["cursor"] == "1",
        "b has heard event 1",
    );
    // Events 2 and 3 reach Redis, but their announcements never reach b (as when
    // they are on their way): written as the script would, announced to no one.
    let mut c = redis.connection();
    for id in 2..=3u64 {
        let keys = halley::storage::redis_store::keys::meta("ch");
        redis::cmd("HSET")
            .arg(&keys)
            .arg("last")
            .arg(id)
            .query::<()>(&mut c)
            .unwrap();
        redis::cmd("XADD")
            .arg(halley::storage::redis_store::keys::log("ch"))
            .arg(format!("0-{id}"))
            .arg("d")
            .arg(format!("e{id}"))
            .query::<()>(&mut c)
            .unwrap();
    }
    // A cursor of 3 (another server gave it out): no reset, and what follows it comes.
    let mut poll = b.client();
    poll.get("/sub/ch?t=longpoll&since=3");
    wait_until(|| b.counter("subscribers") == 1, "the long-poll is held");
    assert!(
        poll.nothing_within(Duration::from_millis(100)),
        "held: no reset"
    );
    b.publish_ok("ch", "four");
    assert_eq!(frames(&poll.response()), ["4:four"]);
    // What b did not hear is served from Redis.
    assert_eq!(
        frames(&b.get("/sub/ch?t=poll&since=1")),
        ["2:e2", "3:e3", "4:four"]
    );
    // A cursor past what Redis holds is ahead: reset to Redis's last id.
    let response = b.get("/sub/ch?t=poll&since=9");
    assert_eq!(
        response.json()["frames"][0]["reset"],
        4,
        "{}",
        response.text()
    );
}

#[test]
fn a_subscriber_of_a_server_killed_resumes_on_another_with_its_cursor() {
    let redis = RedisServer::start();
    let b = node(&redis);
    // The server that dies is a process of its own, killed with SIGKILL.
    let url = redis.url();
    let a = util::binary::spawn(&["--redis", &url]);
    wait_until(
        || a.stats()["admin"]["redis_connected"] == 1,
        "the server to be killed hears Redis",
    );
    let mut stream = util::Client::connect(a.sub);
    stream.get("/sub/feed?t=sse");
    assert_eq!(stream.head().status, 200);
    stream.prelude("sse");
    wait_until(
        || a.stats()["subscribers"] == 1,
        "a subscriber on the server to be killed",
    );
    for n in 1..=3 {
        b.publish_ok("feed", &format!("m{n}"));
    }
    let mut last_id = String::new();
    for n in 1..=3 {
        let event = stream.chunk_text();
        assert!(event.contains(&format!("\"data\":\"m{n}\"")), "{event}");
        last_id = event
            .lines()
            .next()
            .unwrap()
            .trim_start_matches("id: ")
            .to_string();
    }
    assert_eq!(last_id, "3");
    a.signal(libc::SIGKILL);
    stream.expect_closed();
    for n in 4..=5 {
        b.publish_ok("feed", &format!("m{n}"));
    }
    // The browser reconnects elsewhere with the last id it had: the rest, once each.
    let mut resumed = b.client();
    resumed.send(
        format!("GET /sub/feed?t=sse HTTP/1.1\r\nHost: t\r\nLast-Event-ID: {last_id}\r\n\r\n")
            .as_bytes(),
    );
    assert_eq!(resumed.head().status, 200);
    resumed.prelude("sse");
    for n in 4..=5 {
        let event = resumed.chunk_text();
        assert!(
            event.starts_with(&format!("id: {n}\n"))
                && event.contains(&format!("\"data\":\"m{n}\"")),
            "{event}"
        );
    }
    assert!(
        resumed.nothing_within(Duration::from_millis(100)),
        "nothing twice"
    );
}

/// `INFO replication` of `redis`.
fn replication(redis: &RedisServer) -> String {
    redis::cmd("INFO")
        .arg("replication")
        .query(&mut redis.connection())
        .unwrap()
}

#[test]
fn with_replicas_asked_a_publish_is_answered_once_they_have_it_and_503_when_they_do_not() {
    // The first sync at once (Redis waits 5 s by default for more replicas).
    let master = RedisServer::start_with(
        util::redis::free_port(),
        &["--bind", "127.0.0.1", "--repl-diskless-sync-delay", "0"],
    );
    // The replica writes the master's data to a file: not in the tree.
    let dir = std::env::temp_dir().join(format!(
        "halley-replica-{}-{:?}",
        std::process::id(),
        std::time::SystemTime::now()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let replica = RedisServer::start_with(
        util::redis::free_port(),
        &[
            "--dir",
            dir.to_str().unwrap(),
            "--bind",
            "127.0.0.1",
            "--replicaof",
            "127.0.0.1",
            &master.port.to_string(),
        ],
    );
    wait_until(
        || replication(&replica).contains("master_link_status:up"),
        "the replica follows the master",
    );
    // Acknowledging writes, as Halley's publishes will ask (a replica just synced
    // may not acknowledge for a moment).
    let mut probe = master.connection();
    wait_until(
        || {
            redis::cmd("SET")
                .arg("probe")
                .arg(1)
                .query::<()>(&mut probe)
                .unwrap();
            redis::cmd("WAIT")
                .arg(1)
                .arg(100)
                .query::<u64>(&mut probe)
                .unwrap()
                == 1
        },
        "the replica acknowledges writes",
    );
    let url = master.url();
    let a = start_with(move |c| {
        c.redis = Some(url);
        c.redis_timeout = Duration::from_millis(500);
        c.redis_replicas = 1;
    });
    assert_eq!(a.publish_ok("r", "one"), 1);
    // Answered, so the replica has it already.
    let length: u64 = redis::cmd("XLEN")
        .arg(halley::storage::redis_store::keys::log("r"))
        .query(&mut replica.connection())
        .unwrap();
    assert_eq!(length, 1);
    drop(replica);
    wait_until(
        || replication(&master).contains("connected_slaves:0"),
        "the master has lost its replica",
    );
    let (status, body) = a.publish("r", "two");
    assert_eq!(status, 503, "{body}");
    assert_eq!(a.stats_json()["admin"]["redis_publish_failures"], 1);
    // Stored on the master all the same (a 503 may have been kept): ids go on.
    let length: u64 = redis::cmd("XLEN")
        .arg(halley::storage::redis_store::keys::log("r"))
        .query(&mut master.connection())
        .unwrap();
    assert_eq!(length, 2);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_paused_redis_stalls_no_loop_and_its_publishes_get_503_in_the_timeout() {
    let redis = RedisServer::start();
    let a = node(&redis);
    listening(&a);
    a.publish_ok("live", "one");
    wait_until(
        || a.get("/sub/live?t=poll&since=0").json()["cursor"] == "1",
        "the node has heard event 1",
    );
    let mut stream = a.client();
    stream.get("/sub/live?t=stream");
    assert_eq!(stream.head().status, 200);
    stream.prelude("stream");
    redis.pause();
    // A publish waits for Redis no longer than --redis-timeout (500 ms here).
    let began = std::time::Instant::now();
    let (status, body) = a.publish("live", "while paused");
    assert_eq!(status, 503, "{body}");
    assert!(
        began.elapsed() < Duration::from_secs(3),
        "{:?}",
        began.elapsed()
    );
    // Meanwhile the loops answer at once from memory, and take new connections.
    for _ in 0..20 {
        let response = a.get("/sub/live?t=poll&since=0");
        assert_eq!(frames(&response), ["1:one"]);
    }
    // A question only Redis can answer is held, and holds no one else.
    let mut unknown = a.client();
    unknown.get("/sub/elsewhere?t=longpoll&since=0");
    assert_eq!(frames(&a.get("/sub/live?t=poll&since=0")), ["1:one"]);
    redis.resume();
    // The publish answered 503 may have been stored once, when Redis went on; what
    // comes next follows it, whatever it was, in order, once.
    let id = a.publish_ok("live", "after");
    assert!(id == 2 || id == 3, "{id}");
    let mut seen = Vec::new();
    while seen.last() != Some(&id) {
        for line in stream.chunk_text().lines() {
            let frame: serde_json::Value = serde_json::from_str(line).unwrap();
            if let Some(n) = frame["id"].as_u64() {
                seen.push(n);
            }
        }
    }
    assert_eq!(seen, (2..=id).collect::<Vec<u64>>());
    // The held question is asked again at its channel's next event.
    a.publish_ok("elsewhere", "at last");
    assert_eq!(frames(&unknown.response()), ["1:at last"]);
}
