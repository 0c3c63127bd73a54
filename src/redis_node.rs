//! The threads of a server that shares its channels through Redis (`--redis`,
//! PROTOCOL.md "Several servers"), besides its loops and admin thread:
//!
//! - the publisher, which publishes, closes and reads bounds for the admin thread
//!   (`storage/redis_store/publisher.rs`), answering through the admin inbox, each
//!   publish above every id the listener has heard of its channel;
//! - the listener, which hears every server's events and hands them to this
//!   server's loops on the bus, each channel's in id order, once
//!   (`storage/redis_store/listener.rs`): each event's frames are encoded here, once
//!   for the whole server;
//! - the catch-up reader (the catch-up thread of `server.rs`, over
//!   `storage/redis_store/reader.rs`).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::Sender;
use log::{info, warn};

use crate::admin_inbox::{AdminMessage, AdminSender};
use crate::bus::Bus;
use crate::channel::Event;
use crate::config::Config;
use crate::stats::{bump, Stats};
use crate::storage::redis_store::publisher::{self, Job};
use crate::storage::redis_store::{Heard, Listener};

/// The publisher's and listener's threads, and how to stop the listener.
pub struct RedisNode {
    /// Dropped to stop the listener.
    stop: Option<Sender<()>>,
    threads: Vec<JoinHandle<()>>,
}

/// Starts the publisher (answering through `admin`) and the listener (feeding
/// `bus`). Returns the node and the publisher's job queue for the admin thread.
pub fn start(
    url: &str,
    config: &Config,
    bus: Bus,
    admin: AdminSender,
    stats: Arc<Stats>,
) -> std::io::Result<(RedisNode, Sender<Job>)> {
    let reply = move |done| {
        admin.send(AdminMessage::Redis(done));
    };
    let (floors, heard) = crossbeam_channel::unbounded();
    let (jobs, publisher) = publisher::spawn(
        url.to_string(),
        config.redis_timeout,
        config.history,
        heard,
        reply,
    )?;
    let (stop, stopping) = crossbeam_channel::bounded::<()>(1);
    let mut listener = Listener::new(url, config.redis_timeout);
    let listening = std::thread::Builder::new()
        .name("halley-redis-listener".into())
        .spawn(move || {
            let mut bus = bus;
            let mut heard_before = false;
            listener.run(&stopping, |heard| {
                if let Heard::Event { channel, id, .. } = &heard {
                    // The publisher's floor for the channel's next id.
                    let _ = floors.send((channel.clone(), *id));
                }
                hand_on(&mut bus, &stats, &mut heard_before, heard)
            });
        })?;
    let node = RedisNode {
        stop: Some(stop),
        threads: vec![publisher, listening],
    };
    Ok((node, jobs))
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

/// What the listener heard, handed to the loops (events, and a resync when Redis is
/// back after being out of reach) or counted and logged. `heard_before`: the listener
/// has been connected once already.
fn hand_on(bus: &mut Bus, stats: &Stats, heard_before: &mut bool, heard: Heard) {
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
            bus.publish(&Arc::new(event));
            bus.wake();
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
        Heard::Connected => {
            admin.redis_connected.store(1, Ordering::Relaxed);
            info!("redis: listening");
            if *heard_before {
                // What happened meanwhile in channels this server had not heard of
                // is for the loops to ask: their waiting subscribers may be owed it.
                bus.resync();
                bus.wake();
            }
            *heard_before = true;
        }
        Heard::Disconnected(why) => {
            if admin.redis_connected.swap(0, Ordering::Relaxed) == 1 {
                bump(&admin.redis_reconnects);
                warn!("redis: {why}; reconnecting");
            }
        }
    }
}
