//! The thread that publishes into Redis for a server: the admin thread hands it jobs
//! (publish, close, a channel's bounds) and gets each result back through `reply`, so
//! the admin thread never waits on Redis. One connection, made when the first job
//! comes and made again after a failure; every call bounded by the timeout.
//!
//! Jobs that queued while Redis was busy with the last ones go together: consecutive
//! publishes and closes in one pipeline (`RedisStore::store_many`: one round trip,
//! each still its own atomic script, in order), so that the throughput of many
//! publishers is not one round trip per publish.
//!
//! Two such threads, each on its own connection, share the channels (by slot): a
//! channel's jobs always go to the same one, in order, and while one waits for Redis
//! the other's batch is on its way.
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

use super::client::Write;
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

/// The most jobs taken together.
const BATCH: usize = 128;
/// Publisher threads (and connections) per server.
pub const THREADS: usize = 2;

/// The publisher thread of each channel: the queues of jobs, and of the ids heard.
#[derive(Debug, Clone)]
pub struct Queues<T> {
    queues: Vec<Sender<T>>,
}

impl<T> Queues<T> {
    /// Queues `item` for the thread that serves `channel`; false if it is gone.
    pub fn send(&self, channel: &str, item: T) -> bool {
        let n = super::keys::slot(channel.as_bytes()) as usize % self.queues.len();
        self.queues[n].send(item).is_ok()
    }
}

/// Where heard ids go: to the publisher of their channel, for its floors.
pub type Floors = Queues<(Arc<str>, u64)>;

/// Starts `THREADS` publisher threads (see `spawn`). Returns where to send jobs and
/// heard ids, and the threads.
pub fn spawn_all(
    url: &str,
    timeout: Duration,
    keep: usize,
    replicas: usize,
    reply: impl Fn(Done) + Clone + Send + 'static,
    replied: impl Fn() + Clone + Send + 'static,
) -> std::io::Result<(Queues<Job>, Floors, Vec<JoinHandle<()>>)> {
    let (mut jobs, mut floors, mut threads) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..THREADS {
        let (floor, heard) = crossbeam_channel::unbounded();
        let (job, thread) = spawn(
            url.to_string(),
            timeout,
            keep,
            replicas,
            heard,
            reply.clone(),
            replied.clone(),
        )?;
        jobs.push(job);
        floors.push(floor);
        threads.push(thread);
    }
    Ok((Queues { queues: jobs }, Queues { queues: floors }, threads))
}

/// Starts the thread; it stops when the job sender is dropped. `floors` brings each
/// id the server hears, channel by channel. Each job done goes to `reply`, and
/// `replied` follows each group of them (the admin thread is woken once a group).
fn spawn(
    url: String,
    timeout: Duration,
    keep: usize,
    replicas: usize,
    floors: Receiver<(Arc<str>, u64)>,
    reply: impl Fn(Done) + Send + 'static,
    replied: impl Fn() + Send + 'static,
) -> std::io::Result<(Sender<Job>, JoinHandle<()>)> {
    let (jobs, inbox) = crossbeam_channel::unbounded::<Job>();
    let thread = std::thread::Builder::new()
        .name("halley-redis-publisher".into())
        .spawn(move || {
            let mut store: Option<RedisStore> = None;
            let mut heard: HashMap<Arc<str>, u64> = HashMap::new();
            let mut batch: Vec<Job> = Vec::with_capacity(BATCH);
            while let Ok(first) = inbox.recv() {
                batch.push(first);
                batch.extend(inbox.try_iter().take(BATCH - 1));
                for (channel, id) in floors.try_iter() {
                    let last = heard.entry(channel).or_insert(0);
                    *last = (*last).max(id);
                }
                let floor = |channel: &str| heard.get(channel).copied().unwrap_or(0);
                let mut jobs = batch.drain(..).peekable();
                while let Some(job) = jobs.next() {
                    let mut group = vec![job];
                    while group[0].work != Work::Bounds
                        && jobs.peek().is_some_and(|next| next.work != Work::Bounds)
                    {
                        group.push(jobs.next().expect("peeked"));
                    }
                    let began = std::time::Instant::now();
                    let connect =
                        || Ok(RedisStore::connect(&url, timeout, keep)?.with_replicas(replicas));
                    let results = run(&mut store, &connect, &floor, &group);
                    let micros = began.elapsed().as_micros() as u64;
                    if results.iter().any(Result::is_err) {
                        // Made again for the next job.
                        store = None;
                    }
                    for (job, result) in group.into_iter().zip(results) {
                        reply(Done {
                            tag: job.tag,
                            channel: job.channel,
                            work: job.work,
                            result,
                            micros,
                        });
                    }
                    replied();
                }
            }
        })?;
    Ok((jobs, thread))
}

/// Runs `group`: one bounds job, or consecutive publishes and closes together.
fn run(
    store: &mut Option<RedisStore>,
    connect: &dyn Fn() -> Result<RedisStore, RedisError>,
    floor: &dyn Fn(&str) -> u64,
    group: &[Job],
) -> Vec<Result<Outcome, RedisError>> {
    if store.is_none() {
        match connect() {
            Ok(connected) => *store = Some(connected),
            Err(e) => return group.iter().map(|_| Err(e.clone())).collect(),
        }
    }
    let store = store.as_mut().expect("made above");
    if let [Job {
        channel,
        work: Work::Bounds,
        ..
    }] = group
    {
        return vec![store.bounds(channel).map(Outcome::Bounds)];
    }
    let writes: Vec<Write<'_>> = group
        .iter()
        .map(|job| Write {
            channel: &job.channel,
            data: match &job.work {
                Work::Publish(data) => Some(data.as_slice()),
                _ => None,
            },
            floor: floor(&job.channel),
        })
        .collect();
    store
        .store_many(&writes)
        .into_iter()
        .map(|result| result.map(Outcome::Stored))
        .collect()
}
