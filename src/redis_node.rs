//! The threads of a server that shares its channels through Redis (`--redis`,
//! PROTOCOL.md "Several servers"), besides its loops and admin thread:
//!
//! - two publishers, which publish, close and read bounds for the admin thread
//!   (`storage/redis_store/publisher.rs`; a channel always through the same one),
//!   answering through the admin inbox, each publish above every id the listener
//!   has heard of its channel;
//! - the listener, which hears every server's events and hands them to this
//!   server's loops on the bus, each channel's in id order, once
//!   (`storage/redis_store/listener.rs`): each event's frames are encoded here, once
//!   for the whole server. On a Redis Cluster, one listener per master, started once
//!   the cluster's map of slots is read (`storage/redis_store/topology.rs`);
//! - the catch-up reader (the catch-up thread of `server.rs`, over
//!   `storage/redis_store/reader.rs`).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use log::{info, warn};

use crate::admin_inbox::{AdminMessage, AdminSender};
use crate::bus::Bus;
use crate::channel::Event;
use crate::config::Config;
use crate::stats::{bump, Stats};
use crate::storage::redis_store::barrier::{Barriers, Gate};
use crate::storage::redis_store::listener::Source;
use crate::storage::redis_store::publisher::{self, Floors, Job, Queues};
use crate::storage::redis_store::{topology, Heard, Listener, RedisUrl};

/// Pauses between attempts to read a cluster's map of slots at start.
const FIRST_PAUSE: Duration = Duration::from_millis(50);
const LAST_PAUSE: Duration = Duration::from_secs(2);

/// The publisher's and listener's threads, and how to stop the listener.
pub struct RedisNode {
    /// Dropped to stop the listener.
    stop: Option<Sender<()>>,
    threads: Vec<JoinHandle<()>>,
}

/// Starts the publisher (answering through `admin`) and the listener (feeding
/// `bus`, its gate installed in `barriers`). Returns the node and the publisher's job
/// queue for the admin thread.
pub fn start(
    url: &str,
    config: &Config,
    bus: Bus,
    admin: AdminSender,
    stats: Arc<Stats>,
    barriers: Arc<Barriers>,
) -> std::io::Result<(RedisNode, Queues<Job>)> {
    let waking = admin.clone();
    let reply = move |done| {
        admin.queue(AdminMessage::Redis(done));
    };
    let replied = move || waking.wake();
    let (jobs, floors, publishers) = publisher::spawn_all(
        url,
        config.redis_timeout,
        config.redis_keep(),
        config.redis_replicas,
        reply,
        replied,
    )?;
    let (stop, stopping) = crossbeam_channel::bounded::<()>(1);
    let ears = Ears {
        url: url.to_string(),
        timeout: config.redis_timeout,
        bus,
        floors,
        stats,
        stopping,
    };
    let listening = match RedisUrl::parse(url) {
        Ok(RedisUrl::Cluster(seeds)) => std::thread::Builder::new()
            .name("halley-redis-cluster".into())
            .spawn(move || ears.on_cluster(&seeds, &barriers))?,
        _ => {
            let (thread, gate) = ears.spawn(Source::Single, "halley-redis-listener".into(), 1)?;
            barriers.install_single(gate);
            thread
        }
    };
    let mut threads = publishers;
    threads.push(listening);
    let node = RedisNode {
        stop: Some(stop),
        threads,
    };
    Ok((node, jobs))
}

/// What every listener thread needs.
struct Ears {
    url: String,
    timeout: Duration,
    bus: Bus,
    /// Each id heard, for the publishers' floors.
    floors: Floors,
    stats: Arc<Stats>,
    stopping: Receiver<()>,
}

impl Ears {
    /// Starts a listener on `source`, one of `shards`; returns its thread and gate.
    fn spawn(
        &self,
        source: Source,
        name: String,
        shards: u64,
    ) -> std::io::Result<(JoinHandle<()>, Gate)> {
        let mut listener = Listener::on(&self.url, source, self.timeout)?;
        let gate = listener.gate();
        let (mut bus, floors, stats) = (self.bus.clone(), self.floors.clone(), self.stats.clone());
        let stopping = self.stopping.clone();
        stats.admin.redis_shards.store(shards, Ordering::Relaxed);
        let thread = std::thread::Builder::new().name(name).spawn(move || {
            let mut link = Link::default();
            listener.run(&stopping, |heard| {
                if let Heard::Event { channel, id, .. } = &heard {
                    // The publisher's floor for the channel's next id.
                    floors.send(channel, (channel.clone(), *id));
                }
                hand_on(&mut bus, &stats, &mut link, heard)
            });
        })?;
        Ok((thread, gate))
    }

    /// Reads the cluster's map of slots (again and again until it is whole, or told
    /// to stop), starts a listener per master (their gates installed in `barriers`),
    /// and waits for them.
    fn on_cluster(self, seeds: &[String], barriers: &Barriers) {
        let mut pause = FIRST_PAUSE;
        let shards = loop {
            match topology::shards(seeds, self.timeout) {
                Ok(shards) => break shards,
                Err(e) => warn!("redis cluster: {e}; trying again"),
            }
            if self.stopping.recv_timeout(pause) != Err(RecvTimeoutError::Timeout) {
                return;
            }
            pause = (pause * 2).min(LAST_PAUSE);
        };
        info!("redis cluster: {} masters", shards.len());
        let count = shards.len() as u64;
        let mut threads = Vec::new();
        let mut gates = Vec::new();
        for (n, shard) in shards.into_iter().enumerate() {
            let source = Source::Shard {
                seeds: seeds.to_vec(),
                slots: shard.slots.clone(),
            };
            match self.spawn(source, format!("halley-redis-shard-{n}"), count) {
                Ok((thread, gate)) => {
                    threads.push(thread);
                    gates.push((shard.slots, gate));
                }
                Err(e) => warn!("redis cluster: no listener for {}: {e}", shard.url),
            }
        }
        barriers.install_shards(gates);
        for thread in threads {
            let _ = thread.join();
        }
    }
}

/// A listener's link, as `hand_on` follows it.
#[derive(Default)]
struct Link {
    /// Connected once already (so a connection is a reconnection).
    heard_before: bool,
    /// Listening now.
    up: bool,
}

impl RedisNode {
    /// Stops the listener and waits for both threads (the publisher stops once the
    /// admin thread, which holds its queue, has).
    pub fn stop(mut self) {
        drop(self.stop.take());
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// What a listener heard, handed to the loops (events, and a resync when Redis is
/// back after being out of reach) or counted and logged.
fn hand_on(bus: &mut Bus, stats: &Stats, link: &mut Link, heard: Heard) {
    let admin = &stats.admin;
    match heard {
        Heard::Event { channel, id, data } => {
            let event = match data {
                None => Event::close_marker(channel, id),
                Some(data) => match String::from_utf8(data) {
                    Ok(text) => Event::message(channel, id, &text),
                    Err(_) => {
                        // Not Halley's: the loops pass over it (a jump), and the
                        // catch-up reader serves it as a gap.
                        bump(&admin.redis_announcements_refused);
                        return;
                    }
                },
            };
            // The loops are woken when the listener has nothing more for now
            // (`Heard::Pause`), once for a burst.
            bus.publish(&Arc::new(event));
            bump(&admin.redis_events_heard);
        }
        // The loops take the next event past the hole, and the catch-up reader
        // serves the hole as a gap.
        Heard::Gap { channel, from, to } => {
            warn!("redis: events {from} to {to} of {channel} are no longer in Redis")
        }
        Heard::Refused(why) => {
            bump(&admin.redis_announcements_refused);
            warn!("redis: a message on the announcement channel refused: {why}");
        }
        Heard::Pause => bus.wake(),
        Heard::Connected => {
            // What the catch-up handed on, first.
            bus.wake();
            link.up = true;
            let listening = admin.redis_shards_listening.fetch_add(1, Ordering::Relaxed) + 1;
            if listening == admin.redis_shards.load(Ordering::Relaxed) {
                admin.redis_connected.store(1, Ordering::Relaxed);
            }
            info!("redis: listening");
            if link.heard_before {
                // What happened meanwhile in channels this server had not heard of
                // is for the loops to ask: their waiting subscribers may be owed it.
                bus.resync();
                bus.wake();
            }
            link.heard_before = true;
        }
        Heard::Disconnected(why) => {
            // What was handed on before the break, without a pause after it.
            bus.wake();
            if std::mem::take(&mut link.up) {
                admin.redis_shards_listening.fetch_sub(1, Ordering::Relaxed);
                admin.redis_connected.store(0, Ordering::Relaxed);
                bump(&admin.redis_reconnects);
                warn!("redis: {why}; reconnecting");
            }
        }
    }
}
