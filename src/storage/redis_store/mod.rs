//! Redis as the shared storage of several Halley servers (`--redis`, PROTOCOL.md
//! "Several servers").
//!
//! - `url.rs`: `--redis`'s URL, one Redis or a Redis Cluster's seeds.
//! - `keys.rs`: the names of a channel's keys, in one hash slot (`{channel}`), so that
//!   one script touches them all on one Redis Cluster shard, and the channels
//!   announcements go to (one, or one per slot on a cluster).
//! - `scripts.rs`: the Lua scripts that publish and close atomically: the channel's
//!   next id (never below a floor the caller knows of), the event appended to the
//!   channel's stream under that id, and its announcement, in one step.
//! - `announcement.rs`: the bytes of an announcement, written by the script and read by
//!   every server (from strangers' reach: a Redis anyone may publish to).
//! - `client.rs`: a blocking client on one connection, for a thread of its own: publish,
//!   close, raise a counter, read after an id, bounds.
//! - `publisher.rs`: the thread that publishes, closes and reads bounds for the admin
//!   thread, which gets each result back without waiting.
//! - `reader.rs`: the catch-up thread's reader: a cursor older than a loop's memory
//!   served from the channel's stream.
//! - `subscription.rs`: a connection subscribed to announcements (`SUBSCRIBE`, or
//!   `SSUBSCRIBE` to a shard's slots), read with a bounded wait.
//! - `topology.rs`: a Redis Cluster's masters and their slots (`CLUSTER SLOTS`).
//! - `barrier.rs`: an answer from Redis held until the listener has handed on every
//!   announcement Redis sent before it.
//! - `listener.rs`: a server's ear: every announcement heard, each channel's events
//!   handed on in id order exactly once, holes filled from the stream, the
//!   subscription remade when it breaks.
//!
//! Ids are the stream's entry ids: event 7 of a channel is entry `0-7`, so a catch-up
//! is one `XRANGE` from the cursor, and Redis itself refuses an id that goes back.

pub mod announcement;
pub mod barrier;
pub mod client;
pub mod keys;
pub mod listener;
pub mod publisher;
pub mod reader;
pub mod scripts;
pub mod subscription;
pub mod topology;
pub mod url;

pub use announcement::{Announcement, AnnouncementError, Kind};
pub use client::{RedisError, RedisStore, Stored, StoredEvent};
pub use listener::{Heard, Listener};
pub use reader::RedisReader;
pub use url::RedisUrl;
