//! A Redis Cluster's map of slots (`CLUSTER SLOTS`), read from the first seed that
//! answers: which master holds which slots, so that a listener per master may
//! subscribe to the shard channels of its slots there.

use std::time::Duration;

use redis::Value;

use super::{keys, RedisError};

/// A master and the slots it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shard {
    /// `redis://[user@]host:port`, with the seeds' user and password.
    pub url: String,
    pub slots: Vec<u16>,
}

/// The cluster's masters, from the first of `seeds` that answers, in the order
/// Redis lists them. Every slot must be held (a cluster that is not whole yet is
/// refused: its listeners would miss a shard).
pub fn shards(seeds: &[String], timeout: Duration) -> Result<Vec<Shard>, RedisError> {
    let mut last_error = RedisError::Unavailable("no seed".into());
    for seed in seeds {
        match slots_of(seed, timeout) {
            Ok(shards) => return Ok(shards),
            Err(e) => last_error = e,
        }
    }
    Err(last_error)
}

/// The master that holds `slot` now.
pub fn owner(seeds: &[String], slot: u16, timeout: Duration) -> Result<Shard, RedisError> {
    shards(seeds, timeout)?
        .into_iter()
        .find(|shard| shard.slots.contains(&slot))
        .ok_or_else(|| RedisError::Unavailable(format!("no master holds slot {slot}")))
}

fn slots_of(seed: &str, timeout: Duration) -> Result<Vec<Shard>, RedisError> {
    let client = redis::Client::open(seed).map_err(|e| RedisError::Refused(e.to_string()))?;
    let mut connection = client.get_connection_with_timeout(timeout)?;
    connection.set_read_timeout(Some(timeout))?;
    let reply: Value = redis::cmd("CLUSTER").arg("SLOTS").query(&mut connection)?;
    let user = seed
        .strip_prefix("redis://")
        .and_then(|rest| rest.rfind('@').map(|at| &rest[..=at]))
        .unwrap_or("");
    let seed_host = seed_host(seed);
    parse(reply, user, seed_host)
}

/// The host of a seed URL (for a master Redis lists with an empty address).
fn seed_host(seed: &str) -> &str {
    let rest = seed.strip_prefix("redis://").unwrap_or(seed);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, hosts)| hosts);
    match rest.rsplit_once(':') {
        Some((host, _port)) => host,
        None => rest,
    }
}

/// Reads a `CLUSTER SLOTS` reply: `[[start, end, [host, port, id, ...], replicas...],
/// ...]`.
fn parse(reply: Value, user: &str, seed_host: &str) -> Result<Vec<Shard>, RedisError> {
    let bad = |what: &str| RedisError::Refused(format!("a CLUSTER SLOTS reply with {what}"));
    let Value::Array(ranges) = reply else {
        return Err(bad("no array"));
    };
    let mut shards: Vec<Shard> = Vec::new();
    let mut held = 0usize;
    for range in ranges {
        let Value::Array(parts) = range else {
            return Err(bad("a range that is no array"));
        };
        let (Some(Value::Int(start)), Some(Value::Int(end)), Some(Value::Array(master))) =
            (parts.first(), parts.get(1), parts.get(2))
        else {
            return Err(bad("a range of another shape"));
        };
        let (Some(Value::BulkString(host)), Some(Value::Int(port))) =
            (master.first(), master.get(1))
        else {
            return Err(bad("a master of another shape"));
        };
        if !(0..keys::SLOTS as i64).contains(start) || !(*start..keys::SLOTS as i64).contains(end) {
            return Err(bad("slots out of range"));
        }
        let host = match std::str::from_utf8(host) {
            Ok("") => seed_host.to_string(),
            Ok(host) if host.contains(':') && !host.starts_with('[') => format!("[{host}]"),
            Ok(host) => host.to_string(),
            Err(_) => return Err(bad("a host that is not UTF-8")),
        };
        let url = format!("redis://{user}{host}:{port}");
        let slots = (*start as u16)..=(*end as u16);
        held += slots.len();
        match shards.iter_mut().find(|shard| shard.url == url) {
            Some(shard) => shard.slots.extend(slots),
            None => shards.push(Shard {
                url,
                slots: slots.collect(),
            }),
        }
    }
    if held != keys::SLOTS as usize {
        return Err(RedisError::Unavailable(format!(
            "the cluster holds {held} of {} slots",
            keys::SLOTS
        )));
    }
    Ok(shards)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(start: i64, end: i64, host: &str, port: i64) -> Value {
        Value::Array(vec![
            Value::Int(start),
            Value::Int(end),
            Value::Array(vec![
                Value::BulkString(host.as_bytes().to_vec()),
                Value::Int(port),
                Value::BulkString(b"id".to_vec()),
            ]),
        ])
    }

    #[test]
    fn masters_gather_their_ranges() {
        let reply = Value::Array(vec![
            range(0, 5460, "127.0.0.1", 7000),
            range(5461, 10922, "", 7001),
            range(10923, 16000, "127.0.0.1", 7002),
            range(16001, 16383, "127.0.0.1", 7000),
        ]);
        let shards = parse(reply, ":pw@", "10.1.1.1").unwrap();
        assert_eq!(shards.len(), 3);
        assert_eq!(shards[0].url, "redis://:pw@127.0.0.1:7000");
        assert_eq!(shards[0].slots.len(), 5461 + 383);
        assert_eq!(shards[1].url, "redis://:pw@10.1.1.1:7001");
        assert_eq!(shards[2].slots.first(), Some(&10923));
    }

    #[test]
    fn a_cluster_not_whole_or_not_a_reply_is_refused() {
        let part = Value::Array(vec![range(0, 100, "127.0.0.1", 7000)]);
        assert!(parse(part, "", "h").is_err());
        let out_of_range = Value::Array(vec![range(0, 16384, "127.0.0.1", 7000)]);
        assert!(parse(out_of_range, "", "h").is_err());
        assert!(parse(Value::Nil, "", "h").is_err());
        assert!(parse(Value::Array(vec![Value::Int(1)]), "", "h").is_err());
    }

    #[test]
    fn the_seed_s_host_is_found() {
        assert_eq!(seed_host("redis://:pw@10.0.0.1:7000"), "10.0.0.1");
        assert_eq!(seed_host("redis://localhost:7000"), "localhost");
    }
}
