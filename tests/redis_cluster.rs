//! Halley servers on a Redis Cluster (`--redis redis+cluster://`), over real sockets:
//! a cluster of three masters built by the test (`redis-server` and `redis-cli
//! --cluster create` from Debian's packages), channels on every shard, publishes on
//! one server and subscribers on others, and a shard that crashes and comes back empty.

mod util;

use std::time::Duration;

use halley::storage::redis_store::keys;
use util::redis::RedisCluster;
use util::{start_with, wait_until, TestServer};

/// A Halley server sharing its channels through `cluster`.
fn node(cluster: &RedisCluster) -> TestServer {
    let url = cluster.url();
    start_with(move |c| {
        c.redis = Some(url);
        c.redis_timeout = Duration::from_millis(500);
    })
}

/// Waits until a server listens to every shard.
fn listening(node: &TestServer) {
    wait_until(
        || {
            let admin = &node.stats_json()["admin"];
            admin["redis_connected"] == 1 && admin["redis_shards"] == 3
        },
        "the server listens to every shard",
    );
}

/// Two channel names for each of the cluster's masters, as Redis places them.
fn channels_per_shard(cluster: &RedisCluster) -> Vec<Vec<String>> {
    let mut per_shard = vec![Vec::new(); 3];
    for n in 0.. {
        let name = format!("ch{n}");
        let slot = cluster.slot(&keys::meta(&name));
        // Halley's own slot is Redis's.
        assert_eq!(keys::channel_slot(&name), slot, "{name}");
        let owner = cluster.owner(slot);
        if per_shard[owner].len() < 2 {
            per_shard[owner].push(name);
        }
        if per_shard.iter().all(|names| names.len() == 2) {
            return per_shard;
        }
        assert!(n < 1000, "no channel found for every shard");
    }
    unreachable!()
}

/// A long-poll's frames' ids and data, as `id:data` (`gap` for a gap).
fn frames(response: &util::Response) -> Vec<String> {
    response.json()["frames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| match f["gap"].as_array() {
            Some(gap) => format!("gap {}-{}", gap[0], gap[1]),
            None => format!("{}:{}", f["id"], f["data"].as_str().unwrap_or("<closed>")),
        })
        .collect()
}

#[test]
fn channels_on_every_shard_go_from_one_server_to_another() {
    let cluster = RedisCluster::start(3);
    let per_shard = channels_per_shard(&cluster);
    let names: Vec<String> = per_shard.concat();
    let (a, b) = (node(&cluster), node(&cluster));
    listening(&b);
    // One stream on b over all six channels.
    let mut stream = b.client();
    stream.get(&format!("/sub/{}?t=stream", names.join(",")));
    assert_eq!(stream.head().status, 200);
    stream.prelude("stream");
    wait_until(|| b.counter("subscribers") == 1, "a subscriber on b");
    for round in 1..=3 {
        for name in &names {
            assert_eq!(a.publish_ok(name, &format!("{name}-{round}")), round);
        }
    }
    let mut seen: Vec<Vec<String>> = vec![Vec::new(); names.len()];
    while seen.iter().map(Vec::len).sum::<usize>() < 3 * names.len() {
        for line in stream.chunk_text().lines() {
            let frame: serde_json::Value = serde_json::from_str(line).unwrap();
            let Some(at) = names.iter().position(|n| frame["ch"] == n.as_str()) else {
                panic!("a frame of no channel asked for: {line}");
            };
            seen[at].push(format!(
                "{}:{}",
                frame["id"],
                frame["data"].as_str().unwrap()
            ));
        }
    }
    for (name, seen) in names.iter().zip(&seen) {
        assert_eq!(
            seen,
            &[1, 2, 3].map(|r| format!("{r}:{name}-{r}")),
            "{name}, in order, once"
        );
    }
    // Each channel's keys are on the master that holds its slot, and nowhere else.
    for (owner, names) in per_shard.iter().enumerate() {
        for shard in 0..3 {
            let mut connection = cluster.connection(shard);
            for name in names {
                let length: Result<u64, _> = redis::cmd("XLEN")
                    .arg(keys::log(name))
                    .query(&mut connection);
                if shard == owner {
                    assert_eq!(length.unwrap(), 3, "{name} on its shard");
                } else {
                    let error = length.expect_err("a key of another shard");
                    assert!(
                        error.to_string().to_lowercase().contains("moved"),
                        "{error}"
                    );
                }
            }
        }
    }
    // A server started later reads every shard's history from Redis.
    let late = node(&cluster);
    for name in &names {
        let response = late.get(&format!("/sub/{name}?t=poll&since=1"));
        assert_eq!(frames(&response), [2, 3].map(|r| format!("{r}:{name}-{r}")));
    }
    assert_eq!(a.stats_json()["admin"]["redis_publishes"], 18);
    assert_eq!(b.stats_json()["admin"]["redis_events_heard"], 18);
}

#[test]
fn announcements_reach_only_the_servers_listening_to_their_shard() {
    let cluster = RedisCluster::start(3);
    let (a, b) = (node(&cluster), node(&cluster));
    listening(&a);
    listening(&b);
    let per_shard = channels_per_shard(&cluster);
    for (shard, names) in per_shard.iter().enumerate() {
        let mut connection = cluster.connection(shard);
        // Every shard channel a master has subscribers on belongs to its own slots,
        // and each of its slots has one, with both servers on it.
        let subscribed: Vec<String> = redis::cmd("PUBSUB")
            .arg("SHARDCHANNELS")
            .query(&mut connection)
            .unwrap();
        let held = cluster.slots_of(shard);
        assert_eq!(subscribed.len(), held.len(), "shard {shard}");
        for name in &subscribed {
            assert!(
                held.contains(&cluster.slot(name)),
                "{name} on shard {shard}"
            );
        }
        let ours = keys::shard_announcements(cluster.slot(&keys::meta(&names[0])));
        let counts: Vec<redis::Value> = redis::cmd("PUBSUB")
            .arg("SHARDNUMSUB")
            .arg(&ours)
            .query(&mut connection)
            .unwrap();
        assert_eq!(counts[1], redis::Value::Int(2), "{ours}: both servers");
    }
    // A publish is announced once, on its shard only: the other masters send nothing.
    let sent = |shard: usize| -> u64 {
        let info: String = redis::cmd("INFO")
            .arg("stats")
            .query(&mut cluster.connection(shard))
            .unwrap();
        info.lines()
            .find_map(|l| l.strip_prefix("total_net_output_bytes:"))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    let name = &per_shard[0][0];
    let before: Vec<u64> = (0..3).map(sent).collect();
    a.publish_ok(name, &"x".repeat(10_000));
    wait_until(
        || b.stats_json()["admin"]["redis_events_heard"] == 1,
        "b heard the event",
    );
    let after: Vec<u64> = (0..3).map(sent).collect();
    assert!(
        after[0] - before[0] > 20_000,
        "to both servers: {before:?} {after:?}"
    );
    for shard in 1..3 {
        // Only the INFO replies themselves.
        assert!(
            after[shard] - before[shard] < 10_000,
            "{before:?} {after:?}"
        );
    }
}

#[test]
fn a_shard_that_crashes_holds_its_channels_and_comes_back_with_ids_going_on() {
    let mut cluster = RedisCluster::start(3);
    let per_shard = channels_per_shard(&cluster);
    let (lost, other) = (per_shard[1][0].clone(), per_shard[2][0].clone());
    let (a, b) = (node(&cluster), node(&cluster));
    listening(&a);
    listening(&b);
    for n in 1..=3 {
        a.publish_ok(&lost, &format!("l{n}"));
    }
    wait_until(
        || b.get(&format!("/sub/{lost}?t=poll&since=0")).json()["cursor"] == "3",
        "b heard the three events",
    );
    let mut stream = b.client();
    stream.get(&format!("/sub/{lost},{other}?t=stream"));
    assert_eq!(stream.head().status, 200);
    stream.prelude("stream");
    cluster.kill(1);
    // The crashed shard's channels: 503, nothing stored. The others go on.
    let (status, body) = a.publish(&lost, "while down");
    assert_eq!(status, 503, "{body}");
    assert_eq!(a.publish_ok(&other, "o1"), 1);
    assert_eq!(
        stream.chunk_text(),
        format!("{{\"ch\":\"{other}\",\"id\":1,\"data\":\"o1\"}}\n")
    );
    wait_until(
        || b.stats_json()["admin"]["redis_connected"] == 0,
        "b noticed a shard is gone",
    );
    // Back, empty: the next id goes on above what the servers delivered.
    cluster.restart(1);
    listening(&b);
    assert_eq!(a.publish_ok(&lost, "l4"), 4);
    assert_eq!(
        stream.chunk_text(),
        format!("{{\"ch\":\"{lost}\",\"id\":4,\"data\":\"l4\"}}\n")
    );
    // What the shard lost is a gap to a server that never heard it.
    let late = node(&cluster);
    let response = late.get(&format!("/sub/{lost}?t=poll&since=0"));
    assert_eq!(
        frames(&response),
        ["gap 1-3", "4:l4"],
        "{}",
        response.text()
    );
    assert!(
        b.stats_json()["admin"]["redis_reconnects"]
            .as_u64()
            .unwrap()
            >= 1
    );
}
