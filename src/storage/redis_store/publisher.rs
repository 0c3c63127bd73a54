//! The thread that publishes into Redis for a server: the admin thread hands it jobs
//! (publish, close, a channel's bounds) and gets each result back through `reply`, so
//! the admin thread never waits on Redis. One connection, made when the first job
//! comes and made again after a failure; every call bounded by the timeout.
//!
//! Every id this server has heard of a channel (`floors`, from its listener) is the
//! floor of that channel's next publish: after Redis lost data, the next id is above
//! every id this server delivered, even before its listener is back (PROTOCOL.md:
//! "ids never go back").

use std::collections::HashMap;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};

use super::{RedisError, RedisStore, Stored};
use crate::storage::Bounds;

/// What to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Work {
    /// Publish `data` (UTF-8, checked by the caller).
    Publish(Vec<u8>),
    /// Close the channel.
    Close,
    /// Read the channel's bounds.
    Bounds,
}

/// A job: its tag (the caller's, to find who waits), the channel, the work.
#[derive(Debug)]
pub struct Job {
    pub tag: u64,
    pub channel: Box<str>,
    pub work: Work,
}

/// A job's result.
#[derive(Debug)]
pub enum Outcome {
    Stored(Stored),
    Bounds(Bounds),
}

/// A job done: its tag, its channel, and what came of it.
#[derive(Debug)]
pub struct Done {
    pub tag: u64,
    pub channel: Box<str>,
    pub work: Work,
    pub result: Result<Outcome, RedisError>,
    /// How long Redis took (connecting included, when it had to), in microseconds.
    pub micros: u64,
}

/// Starts the thread; it stops when the job sender is dropped. `floors` brings each
/// id the server hears, channel by channel.
pub fn spawn(
    url: String,
    timeout: Duration,
    keep: usize,
    floors: Receiver<(Arc<str>, u64)>,
    reply: impl Fn(Done) + Send + 'static,
) -> std::io::Result<(Sender<Job>, JoinHandle<()>)> {
    let (jobs, inbox) = crossbeam_channel::unbounded::<Job>();
    let thread = std::thread::Builder::new()
        .name("halley-redis-publisher".into())
        .spawn(move || {
            let mut store: Option<RedisStore> = None;
            let mut heard: HashMap<Arc<str>, u64> = HashMap::new();
            for job in inbox {
                for (channel, id) in floors.try_iter() {
                    let last = heard.entry(channel).or_insert(0);
                    *last = (*last).max(id);
                }
                let floor = heard.get(&*job.channel).copied().unwrap_or(0);
                let began = std::time::Instant::now();
                let result = run(&mut store, &url, timeout, keep, floor, &job);
                let micros = began.elapsed().as_micros() as u64;
                if result.is_err() {
                    // Made again for the next job.
                    store = None;
                }
                reply(Done {
                    tag: job.tag,
                    channel: job.channel,
                    work: job.work,
                    result,
                    micros,
                });
            }
        })?;
    Ok((jobs, thread))
}

fn run(
    store: &mut Option<RedisStore>,
    url: &str,
    timeout: Duration,
    keep: usize,
    floor: u64,
    job: &Job,
) -> Result<Outcome, RedisError> {
    if store.is_none() {
        *store = Some(RedisStore::connect(url, timeout, keep)?);
    }
    let store = store.as_mut().expect("made above");
    match &job.work {
        Work::Publish(data) => store
            .publish(&job.channel, data, floor)
            .map(Outcome::Stored),
        Work::Close => store.close(&job.channel, floor).map(Outcome::Stored),
        Work::Bounds => store.bounds(&job.channel).map(Outcome::Bounds),
    }
}
