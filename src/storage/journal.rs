//! The writer thread: takes events from the admin thread in order, appends them to the
//! storage, makes them as durable as `--fsync` asks, and reports back which are stored,
//! so the admin thread answers `201` and hands the events to the loops only then.
//!
//! Group commit: the thread takes every request that is waiting at once, appends them
//! all, then syncs once; publishes that arrive during a sync wait for the next one, and
//! share it. With `batch` the files are synced every `--fsync-interval`; with `never`
//! the kernel decides. In every mode an event is written to the kernel before it is
//! acknowledged, so a crash of the process loses nothing acknowledged.
//!
//! A storage error stops the journal: what was not reported stored is reported failed,
//! and so is everything after (the admin answers `503`); nothing is retried, so no id
//! is ever stored twice or out of order.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use log::{error, info};
use mio::Waker;

use super::{wall_ms, Entry, FsyncPolicy, Storage};
use crate::stats::{add, bump, Stats};

/// Most requests taken into one batch.
const MAX_BATCH: usize = 4096;
/// How often retention runs.
const RETENTION_EVERY: Duration = Duration::from_secs(1);

/// What the admin thread asks.
#[derive(Debug)]
pub enum JournalRequest {
    /// Store this event; `seq` numbers requests 1, 2, 3, ... in the order sent.
    Append { seq: u64, entry: Entry },
    /// Sync what is written and stop.
    Shutdown,
}

/// What the journal tells the admin thread.
#[derive(Debug)]
pub enum JournalReport {
    /// Every request up to `through` is stored (as durable as `--fsync` asks).
    Stored { through: u64 },
    /// Every request up to `through` not already reported stored failed, and the
    /// journal takes no more.
    Failed { through: u64, error: String },
    /// Retention moved a channel's first id.
    Retained { channel: Arc<str>, first_id: u64 },
}

/// The admin thread's end of the journal.
#[derive(Debug)]
pub struct Journal {
    requests: Sender<JournalRequest>,
    pub reports: Receiver<JournalReport>,
    next_seq: u64,
}

impl Journal {
    /// Sends an event to be stored; returns its sequence number.
    pub fn append(&mut self, entry: Entry) -> u64 {
        self.next_seq += 1;
        let seq = self.next_seq;
        // If the thread is gone, its reports say why (it reported every request failed).
        let _ = self.requests.send(JournalRequest::Append { seq, entry });
        seq
    }

    /// The sequence number of the last request sent (0 before any).
    pub fn last_seq(&self) -> u64 {
        self.next_seq
    }

    /// Asks the thread to sync and stop.
    pub fn shutdown(&self) {
        let _ = self.requests.send(JournalRequest::Shutdown);
    }
}

/// Starts the journal thread over `storage`; reports wake the admin loop through `waker`.
pub fn spawn(
    storage: Box<dyn Storage>,
    policy: FsyncPolicy,
    interval: Duration,
    waker: Arc<Waker>,
    stats: Arc<Stats>,
) -> std::io::Result<(Journal, JoinHandle<()>)> {
    let (requests, inbox) = crossbeam_channel::unbounded();
    let (outbox, reports) = crossbeam_channel::unbounded();
    let writer = Writer {
        storage,
        policy,
        interval,
        inbox,
        outbox,
        waker,
        stats,
        broken: None,
        unsynced: false,
    };
    let thread = std::thread::Builder::new()
        .name("halley-journal".into())
        .spawn(move || writer.run())?;
    Ok((
        Journal {
            requests,
            reports,
            next_seq: 0,
        },
        thread,
    ))
}

struct Writer {
    storage: Box<dyn Storage>,
    policy: FsyncPolicy,
    interval: Duration,
    inbox: Receiver<JournalRequest>,
    outbox: Sender<JournalReport>,
    waker: Arc<Waker>,
    stats: Arc<Stats>,
    /// Why the journal stopped taking events.
    broken: Option<String>,
    /// Written since the last sync.
    unsynced: bool,
}

impl Writer {
    fn run(mut self) {
        let mut next_sync = Instant::now() + self.interval;
        let mut next_retention = Instant::now() + RETENTION_EVERY;
        let mut batch = Vec::with_capacity(256);
        loop {
            let mut deadline = next_retention;
            if self.policy == FsyncPolicy::Batch && self.unsynced {
                deadline = deadline.min(next_sync);
            }
            let first = match self.inbox.recv_deadline(deadline) {
                Ok(request) => Some(request),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => break,
            };
            batch.extend(first);
            batch.extend(self.inbox.try_iter().take(MAX_BATCH));
            let shutdown = batch.iter().any(|r| matches!(r, JournalRequest::Shutdown));
            self.store(&mut batch);
            let now = Instant::now();
            if self.policy == FsyncPolicy::Batch && (now >= next_sync || shutdown) {
                self.sync();
                next_sync = now + self.interval;
            }
            if now >= next_retention {
                self.retain();
                next_retention = now + RETENTION_EVERY;
            }
            if shutdown {
                if self.policy != FsyncPolicy::Never {
                    self.sync();
                }
                break;
            }
        }
        info!("journal: stopped");
    }

    /// Appends a batch, syncs it if `always`, and reports.
    fn store(&mut self, batch: &mut Vec<JournalRequest>) {
        let mut stored_through = None;
        let mut failed_through = None;
        for request in batch.drain(..) {
            let JournalRequest::Append { seq, entry } = request else {
                continue;
            };
            if self.broken.is_some() {
                failed_through = Some(seq);
                continue;
            }
            match self.storage.append(&entry) {
                Ok(()) => {
                    stored_through = Some(seq);
                    self.unsynced = true;
                    bump(&self.stats.admin.events_stored);
                }
                Err(e) => {
                    self.fail(e.to_string());
                    failed_through = Some(seq);
                }
            }
        }
        if stored_through.is_some() && self.policy == FsyncPolicy::Always && !self.sync() {
            failed_through = stored_through.max(failed_through);
            stored_through = None;
        }
        if let Some(through) = stored_through {
            self.report(JournalReport::Stored { through });
        }
        if let (Some(through), Some(error)) = (failed_through, &self.broken) {
            let error = error.clone();
            self.report(JournalReport::Failed { through, error });
        }
    }

    /// Syncs; returns false (and stops the journal) on failure.
    fn sync(&mut self) -> bool {
        if !self.unsynced || self.broken.is_some() {
            return self.broken.is_none();
        }
        match self.storage.sync() {
            Ok(files) => {
                add(&self.stats.admin.fsyncs, files as u64);
                self.unsynced = false;
                true
            }
            Err(e) => {
                self.fail(e.to_string());
                false
            }
        }
    }

    fn retain(&mut self) {
        for (channel, first_id) in self.storage.enforce_retention(wall_ms()) {
            self.report(JournalReport::Retained { channel, first_id });
        }
    }

    fn fail(&mut self, error: String) {
        error!("journal: storage failed, no more publishes will be accepted: {error}");
        bump(&self.stats.admin.storage_errors);
        self.broken = Some(error);
    }

    fn report(&self, report: JournalReport) {
        if self.outbox.send(report).is_ok() {
            let _ = self.waker.wake();
        }
    }
}
