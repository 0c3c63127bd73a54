//! A blocking Redis client, for a thread of its own (never a loop's): publish and close
//! through the scripts, read a channel's events after an id, and a channel's bounds.
//! On one Redis it is one connection; on a Redis Cluster, the redis crate's cluster
//! connection, which sends each channel's commands to the shard holding its slot.
//! Every call is bounded by the timeout given at connect.

use std::fmt;
use std::time::Duration;

use redis::cluster::{ClusterClient, ClusterConnection};
use redis::{Connection, ConnectionLike, Script, Value};

use super::{keys, scripts, RedisUrl};
use crate::storage::Bounds;

/// Why a call to Redis failed.
#[derive(Debug, Clone)]
pub enum RedisError {
    /// No connection, or it broke, or it timed out: the call may or may not have taken
    /// effect (a publish is then answered `503`, PROTOCOL.md "Several servers").
    Unavailable(String),
    /// Redis answered, with an error or something these scripts never return.
    Refused(String),
}

impl fmt::Display for RedisError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RedisError::Unavailable(e) => write!(f, "Redis unavailable: {e}"),
            RedisError::Refused(e) => write!(f, "Redis refused: {e}"),
        }
    }
}

impl std::error::Error for RedisError {}

impl From<redis::RedisError> for RedisError {
    fn from(e: redis::RedisError) -> RedisError {
        if e.is_io_error()
            || e.is_timeout()
            || e.is_connection_dropped()
            || e.is_connection_refusal()
        {
            RedisError::Unavailable(e.to_string())
        } else {
            RedisError::Refused(e.to_string())
        }
    }
}

impl From<std::io::Error> for RedisError {
    fn from(e: std::io::Error) -> RedisError {
        RedisError::Unavailable(e.to_string())
    }
}

/// What a publish or close did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// Stored and announced with this id.
    New(u64),
    /// The channel was closed already, by the marker with this id; nothing was written.
    AlreadyClosed(u64),
}

/// A publish or close, for `store_many`.
#[derive(Debug, Clone, Copy)]
pub struct Write<'a> {
    pub channel: &'a str,
    /// The data; `None` closes the channel.
    pub data: Option<&'a [u8]>,
    /// The highest id of the channel the server has heard of.
    pub floor: u64,
}

/// One event read back from a channel's stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    pub id: u64,
    /// `None` for the close marker.
    pub data: Option<Vec<u8>>,
}

/// The connection: to one Redis, or to a cluster.
enum Link {
    Single(Connection),
    Cluster(Box<ClusterConnection>),
}

/// A connection to Redis, with the scripts loaded on first use.
pub struct RedisStore {
    link: Link,
    store: Script,
    raise: Script,
    /// `MAXLEN ~` of each channel's stream.
    keep: usize,
    /// Replicas that must have each write before it counts as stored (`WAIT`).
    replicas: usize,
    /// How long `WAIT` waits: three quarters of the timeout, so that its answer comes
    /// before the connection's own timeout.
    wait_ms: u64,
}

impl RedisStore {
    /// Connects to `url` (`redis://host:port/db`, or `redis+cluster://` and its
    /// seeds), every call bounded by `timeout`, keeping about `keep` events per channel.
    pub fn connect(url: &str, timeout: Duration, keep: usize) -> Result<RedisStore, RedisError> {
        let url = RedisUrl::parse(url).map_err(|e| RedisError::Refused(e.to_string()))?;
        let refused = |e: redis::RedisError| RedisError::Refused(e.to_string());
        let link = match url {
            RedisUrl::Single(url) => {
                let client = redis::Client::open(url).map_err(refused)?;
                let connection = client.get_connection_with_timeout(timeout)?;
                connection.set_read_timeout(Some(timeout))?;
                connection.set_write_timeout(Some(timeout))?;
                Link::Single(connection)
            }
            RedisUrl::Cluster(seeds) => {
                // One attempt per call: a shard out of reach is answered 503 now,
                // not after the crate's retries.
                let client = ClusterClient::builder(seeds)
                    .connection_timeout(timeout)
                    .response_timeout(timeout)
                    .retries(1)
                    .build()
                    .map_err(refused)?;
                Link::Cluster(Box::new(client.get_connection()?))
            }
        };
        Ok(RedisStore {
            link,
            replicas: 0,
            wait_ms: (timeout.as_millis() as u64 * 3 / 4).max(1),
            store: Script::new(scripts::STORE),
            raise: Script::new(scripts::RAISE),
            keep: keep.max(1),
        })
    }

    /// Each write counts as stored only once `replicas` replicas have it.
    pub fn with_replicas(mut self, replicas: usize) -> RedisStore {
        self.replicas = replicas;
        self
    }

    /// Stores `data` as the next event of `channel`, at an id above `floor`, and
    /// announces it to every server.
    pub fn publish(
        &mut self,
        channel: &str,
        data: &[u8],
        floor: u64,
    ) -> Result<Stored, RedisError> {
        self.store(channel, data, floor, "e")
    }

    /// Closes `channel`: its close marker takes the next id (above `floor`).
    pub fn close(&mut self, channel: &str, floor: u64) -> Result<Stored, RedisError> {
        self.store(channel, b"", floor, "c")
    }

    fn store(
        &mut self,
        channel: &str,
        data: &[u8],
        floor: u64,
        kind: &str,
    ) -> Result<Stored, RedisError> {
        let command = self.store_command(channel, data, floor, kind);
        let reply: Value = match command.query(self.link.connection()) {
            // Not loaded (a Redis restarted, or flushed): nothing ran; load it, once.
            Err(e) if is_noscript(&e) => {
                self.store.load(self.link.connection())?;
                command.query(self.link.connection())?
            }
            reply => reply?,
        };
        let stored = stored(reply)?;
        if self.replicas > 0 && matches!(stored, Stored::New(_)) {
            let acknowledged = self.wait_replicas(channel)?;
            self.enough(acknowledged)?;
        }
        Ok(stored)
    }

    /// The store script's call (`EVALSHA`) for one publish or close, announcing where
    /// `channel`'s announcements go.
    fn store_command(&self, channel: &str, data: &[u8], floor: u64, kind: &str) -> redis::Cmd {
        let (announcements, announce) = self.announce_to(channel);
        let mut command = redis::cmd("EVALSHA");
        command
            .arg(self.store.get_hash())
            .arg(2)
            .arg(keys::meta(channel))
            .arg(keys::log(channel))
            .arg(channel)
            .arg(data)
            .arg(floor)
            .arg(self.keep)
            .arg(announcements)
            .arg(kind)
            .arg(announce);
        command
    }

    /// `WAIT` for the replicas on the master that holds `channel`: how many have every
    /// write made on this connection so far.
    fn wait_replicas(&mut self, channel: &str) -> Result<u64, RedisError> {
        let mut wait = redis::cmd("WAIT");
        wait.arg(self.replicas).arg(self.wait_ms);
        Ok(match &mut self.link {
            Link::Single(connection) => wait.query(connection)?,
            Link::Cluster(connection) => {
                use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
                let node = Route::with_key(keys::meta(channel), SlotAddr::Master);
                let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(node));
                redis::from_redis_value(connection.route_command(&wait, routing)?)
                    .map_err(|e| RedisError::Refused(e.to_string()))?
            }
        })
    }

    /// Whether `acknowledged` replicas are enough.
    fn enough(&self, acknowledged: u64) -> Result<(), RedisError> {
        if acknowledged >= self.replicas as u64 {
            return Ok(());
        }
        Err(RedisError::Unavailable(format!(
            "stored, but {acknowledged} of the {} replicas asked have it",
            self.replicas
        )))
    }

    /// Where `channel`'s announcements go, and with which command.
    fn announce_to(&self, channel: &str) -> (String, &'static str) {
        match self.link {
            Link::Single(_) => (keys::ANNOUNCEMENTS.to_string(), "PUBLISH"),
            Link::Cluster(_) => (
                keys::shard_announcements(keys::channel_slot(channel)),
                "SPUBLISH",
            ),
        }
    }

    /// Several publishes and closes, in order. On one Redis they go in one pipeline
    /// (one round trip for all; each is still its own atomic script); on a cluster,
    /// one after the other. A failure of the connection fails every one of them (each
    /// may or may not have taken effect, as for a single call).
    pub fn store_many(&mut self, writes: &[Write<'_>]) -> Vec<Result<Stored, RedisError>> {
        let one = |store: &mut RedisStore, write: &Write<'_>| match write.data {
            Some(data) => store.publish(write.channel, data, write.floor),
            None => store.close(write.channel, write.floor),
        };
        if writes.len() < 2 || matches!(self.link, Link::Cluster(_)) {
            return writes.iter().map(|write| one(self, write)).collect();
        }
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        for write in writes {
            let (data, kind): (&[u8], &str) = match write.data {
                Some(data) => (data, "e"),
                None => (b"", "c"),
            };
            pipe.add_command(self.store_command(write.channel, data, write.floor, kind));
        }
        if self.replicas > 0 {
            pipe.cmd("WAIT").arg(self.replicas).arg(self.wait_ms);
        }
        let mut replies: Vec<redis::RedisResult<Value>> = match pipe.query(self.link.connection()) {
            Ok(replies) => replies,
            Err(e) => {
                let e = RedisError::from(e);
                return writes.iter().map(|_| Err(e.clone())).collect();
            }
        };
        // The replicas' answer stands for every write before it.
        let replicated = match self.replicas {
            0 => Ok(()),
            _ => match replies.pop() {
                Some(Ok(Value::Int(acknowledged))) => self.enough(acknowledged.max(0) as u64),
                Some(Err(e)) => Err(e.into()),
                other => Err(RedisError::Refused(format!("WAIT answered {other:?}"))),
            },
        };
        if replies.len() != writes.len() {
            let e = RedisError::Refused(format!("{} replies to {}", replies.len(), writes.len()));
            return writes.iter().map(|_| Err(e.clone())).collect();
        }
        writes
            .iter()
            .zip(replies)
            .map(|(write, reply)| match reply {
                Ok(reply) => match stored(reply) {
                    Ok(Stored::New(id)) => replicated.clone().map(|()| Stored::New(id)),
                    other => other,
                },
                // The script is not loaded (a Redis restarted, or flushed): nothing
                // ran; this one loads it.
                Err(e) if is_noscript(&e) => one(self, write),
                Err(e) => Err(e.into()),
            })
            .collect()
    }

    /// Raises `channel`'s counter to at least `floor` (after Redis may have lost data).
    /// Returns the counter after.
    pub fn raise(&mut self, channel: &str, floor: u64) -> Result<u64, RedisError> {
        Ok(self
            .raise
            .key(keys::meta(channel))
            .arg(floor)
            .invoke(self.link.connection())?)
    }

    /// Up to `count` events of `channel` after id `after`, oldest first.
    pub fn read_after(
        &mut self,
        channel: &str,
        after: u64,
        count: usize,
    ) -> Result<Vec<StoredEvent>, RedisError> {
        let reply: Value = redis::cmd("XRANGE")
            .arg(keys::log(channel))
            .arg(format!("(0-{after}"))
            .arg("+")
            .arg("COUNT")
            .arg(count.max(1))
            .query(self.link.connection())?;
        parse_range(reply)
    }

    /// What Redis holds of `channel`.
    pub fn bounds(&mut self, channel: &str) -> Result<Bounds, RedisError> {
        let (last, closed): (Option<u64>, Option<u64>) = redis::cmd("HMGET")
            .arg(keys::meta(channel))
            .arg("last")
            .arg("closed")
            .query(self.link.connection())?;
        let last_id = last.unwrap_or(0);
        let first: Value = redis::cmd("XRANGE")
            .arg(keys::log(channel))
            .arg("-")
            .arg("+")
            .arg("COUNT")
            .arg(1)
            .query(self.link.connection())?;
        let first_id = parse_range(first)?.first().map_or(last_id + 1, |e| e.id);
        Ok(Bounds {
            first_id,
            last_id,
            closed_id: closed,
        })
    }
}

impl Link {
    fn connection(&mut self) -> &mut dyn ConnectionLike {
        match self {
            Link::Single(connection) => connection,
            Link::Cluster(connection) => connection.as_mut(),
        }
    }
}

/// Whether Redis did not know the script (`NOSCRIPT`): nothing ran.
fn is_noscript(e: &redis::RedisError) -> bool {
    e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript)
}

/// The script's reply: `{id, status}`.
fn stored(reply: Value) -> Result<Stored, RedisError> {
    let (id, status): (u64, u8) =
        redis::from_redis_value(reply).map_err(|e| RedisError::Refused(e.to_string()))?;
    match status {
        0 => Ok(Stored::New(id)),
        1 => Ok(Stored::AlreadyClosed(id)),
        other => Err(RedisError::Refused(format!("script status {other}"))),
    }
}

/// The entries of an `XRANGE` reply: `[[id, [field, value, ...]], ...]`.
fn parse_range(reply: Value) -> Result<Vec<StoredEvent>, RedisError> {
    let bad = |what: &str| RedisError::Refused(format!("an XRANGE reply with {what}"));
    let Value::Array(entries) = reply else {
        return Err(bad("no array"));
    };
    let mut events = Vec::with_capacity(entries.len());
    for entry in entries {
        let Value::Array(mut parts) = entry else {
            return Err(bad("an entry that is no array"));
        };
        if parts.len() != 2 {
            return Err(bad("an entry of another shape"));
        }
        let fields = parts.pop().expect("two parts");
        let id = match parts.pop().expect("two parts") {
            Value::BulkString(id) => entry_id(&id).ok_or_else(|| bad("an id not ours"))?,
            _ => return Err(bad("an id that is no string")),
        };
        let Value::Array(mut fields) = fields else {
            return Err(bad("fields that are no array"));
        };
        if fields.len() != 2 {
            return Err(bad("other fields"));
        }
        let value = fields.pop().expect("two fields");
        let data = match (fields.pop().expect("two fields"), value) {
            (Value::BulkString(field), Value::BulkString(data)) if field == b"d" => Some(data),
            (Value::BulkString(field), _) if field == b"c" => None,
            _ => return Err(bad("an unknown field")),
        };
        events.push(StoredEvent { id, data });
    }
    Ok(events)
}

/// The event id of a stream entry id `0-ID`.
fn entry_id(id: &[u8]) -> Option<u64> {
    let id = std::str::from_utf8(id).ok()?.strip_prefix("0-")?;
    id.parse().ok().filter(|&id| id >= 1)
}
