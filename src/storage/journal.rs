//! The admin thread's writer: appends every event to the storage as it is published,
//! makes the storage as durable as `--fsync` asks, runs retention, and says when each
//! publish may be acknowledged.
//!
//! Appending is a write to the kernel (the page cache), done on the admin thread, so a
//! crash of the process loses nothing acknowledged in any mode, and `batch` and
//! `never` acknowledge at once.
//!
//! - `always`: group commit, as Redis does it. At the end of each turn of the admin
//!   loop, everything appended in the turn is made durable with one sync, here, and
//!   then answered; publishes that arrive meanwhile wait in their sockets for the next
//!   turn, and share its sync. That sync is one `fdatasync` of the write-ahead log
//!   (`wal.rs`), about 0.2 ms. The checkpoints of the write-ahead log (a `syncfs`,
//!   much longer) run on the sync thread (`syncer.rs`): no answer waits for them.
//!   Handing every sync to that thread instead was measured 10-15% slower (the two
//!   thread wake-ups per group cost more than they let overlap).
//! - `batch`: a sync plan every `--fsync-interval`, if anything was appended, on the
//!   sync thread.
//! - `never`: no sync; the kernel decides.
//!
//! A storage error, in an append or a sync, stops the journal: it takes no more
//! events (the admin answers `503`), and nothing is retried, so no id is ever stored
//! twice or out of order.

use std::sync::Arc;
use std::time::Duration;

use log::error;

use super::syncer::{SyncJob, SyncReport, Syncer};
use super::{wall_ms, Entry, FsyncPolicy, Storage};
use crate::stats::{add, bump, Stats};

/// How often retention runs.
const RETENTION_EVERY: Duration = Duration::from_secs(1);

/// When a publish may be acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ack {
    /// Now: it is as durable as `--fsync` asks.
    Now,
    /// Once a sync covers append number `seq` (`Report::Synced`).
    AfterSync(u64),
}

/// What the journal has to tell the admin thread.
#[derive(Debug)]
pub enum Report {
    /// Every append up to `through` is durable.
    Synced { through: u64 },
    /// Storage failed: appends not yet reported durable may not be, and no more are
    /// taken.
    Failed { error: String },
}

/// The storage, as the admin thread writes it.
pub struct Journal {
    storage: Box<dyn Storage>,
    policy: FsyncPolicy,
    interval_ms: u64,
    /// Runs sync plans (`always` and `batch`).
    syncer: Option<Syncer>,
    stats: Arc<Stats>,
    /// Appends so far, numbered 1, 2, 3, ...
    appended: u64,
    /// The last append a sync plan was made for.
    planned: u64,
    /// The last append known durable.
    synced: u64,
    /// `always`: a sync made on this thread is not reported yet.
    newly_synced: bool,
    /// A checkpoint is running on the sync thread.
    checkpointing: bool,
    /// Why storage failed, once it has.
    broken: Option<String>,
    /// A failure to report that the sync thread did not see (making a plan failed).
    failure: Option<String>,
    next_sync_ms: u64,
    next_retention_ms: u64,
}

impl Journal {
    /// A journal over `storage`, syncing as `policy` asks on `syncer` (none is needed
    /// with `never`, or for a storage in memory).
    pub fn new(
        storage: Box<dyn Storage>,
        policy: FsyncPolicy,
        interval: Duration,
        syncer: Option<Syncer>,
        stats: Arc<Stats>,
    ) -> Journal {
        let policy = if syncer.is_none() {
            FsyncPolicy::Never
        } else {
            policy
        };
        Journal {
            storage,
            policy,
            interval_ms: interval.as_millis() as u64,
            syncer,
            stats,
            appended: 0,
            planned: 0,
            synced: 0,
            newly_synced: false,
            checkpointing: false,
            broken: None,
            failure: None,
            next_sync_ms: 0,
            next_retention_ms: 0,
        }
    }

    /// Stores an event; says when it may be acknowledged, or why it cannot be stored.
    pub fn append(&mut self, entry: &Entry) -> Result<Ack, String> {
        if let Some(why) = &self.broken {
            return Err(why.clone());
        }
        if let Err(e) = self.storage.append(entry) {
            return Err(self.fail(e.to_string()));
        }
        bump(&self.stats.admin.events_stored);
        self.appended += 1;
        Ok(match self.policy {
            FsyncPolicy::Always => Ack::AfterSync(self.appended),
            FsyncPolicy::Batch | FsyncPolicy::Never => Ack::Now,
        })
    }

    /// Why storage failed, once it has.
    pub fn broken(&self) -> Option<&str> {
        self.broken.as_deref()
    }

    /// With `always`, the append an answer given now must wait for, so that it does
    /// not tell of an event (a close, say) before that event is durable.
    pub fn unsynced(&self) -> Option<u64> {
        (self.policy == FsyncPolicy::Always && self.appended > self.synced).then_some(self.appended)
    }

    /// Ends a turn of the admin loop at `now_ms` (its clock): starts a sync if one is
    /// due, runs retention if due. Returns the channels whose first stored id moved.
    pub fn end_turn(&mut self, now_ms: u64) -> Vec<(Arc<str>, u64)> {
        if self.broken.is_none() && self.appended > self.planned {
            match self.policy {
                FsyncPolicy::Always => self.sync_here(),
                FsyncPolicy::Batch if now_ms >= self.next_sync_ms => {
                    self.sync_in_background(now_ms)
                }
                FsyncPolicy::Batch | FsyncPolicy::Never => {}
            }
        }
        if self.broken.is_none() && !self.checkpointing {
            if let (Some(plan), Some(syncer)) = (self.storage.take_checkpoint(), &self.syncer) {
                syncer.send(SyncJob {
                    through: self.appended,
                    plan,
                });
                self.checkpointing = true;
            }
        }
        if now_ms < self.next_retention_ms {
            return Vec::new();
        }
        self.next_retention_ms = now_ms + RETENTION_EVERY.as_millis() as u64;
        self.storage.enforce_retention(wall_ms())
    }

    /// When `end_turn` next has something to do without a new publish (admin clock).
    pub fn next_deadline_ms(&self) -> u64 {
        let sync = self.policy == FsyncPolicy::Batch && self.appended > self.planned;
        if sync {
            self.next_sync_ms.min(self.next_retention_ms)
        } else {
            self.next_retention_ms
        }
    }

    /// `always`: makes everything appended durable now, on this thread.
    fn sync_here(&mut self) {
        match self.storage.take_sync_plan().and_then(|plan| plan.run()) {
            Ok(syncs) => {
                add(&self.stats.admin.fsyncs, syncs as u64);
                self.planned = self.appended;
                self.synced = self.appended;
                self.newly_synced = true;
            }
            Err(e) => {
                let error = self.fail(e.to_string());
                self.failure = Some(error);
            }
        }
    }

    /// `batch`: hands a sync of everything appended to the sync thread.
    fn sync_in_background(&mut self, now_ms: u64) {
        let Some(syncer) = &self.syncer else {
            return;
        };
        match self.storage.take_sync_plan() {
            Ok(plan) => syncer.send(SyncJob {
                through: self.appended,
                plan,
            }),
            Err(e) => {
                let error = self.fail(e.to_string());
                self.failure = Some(error);
                return;
            }
        }
        self.planned = self.appended;
        self.next_sync_ms = now_ms + self.interval_ms;
    }

    /// The next thing to tell the admin thread, if any.
    pub fn take_report(&mut self) -> Option<Report> {
        if let Some(error) = self.failure.take() {
            return Some(Report::Failed { error });
        }
        if std::mem::take(&mut self.newly_synced) {
            return Some(Report::Synced {
                through: self.synced,
            });
        }
        loop {
            match self.syncer.as_ref()?.try_report()? {
                SyncReport::Synced { through } if self.policy == FsyncPolicy::Always => {
                    // A checkpoint: nothing waits for it.
                    let _ = through;
                    self.storage.checkpoint_done();
                    self.checkpointing = false;
                }
                SyncReport::Synced { through } => {
                    self.synced = through;
                    return Some(Report::Synced { through });
                }
                SyncReport::Failed { error, .. } => {
                    return Some(Report::Failed {
                        error: self.fail(error),
                    })
                }
            }
        }
    }

    fn fail(&mut self, error: String) -> String {
        if self.broken.is_none() {
            error!("storage failed, no more publishes will be accepted: {error}");
            bump(&self.stats.admin.storage_errors);
            self.broken = Some(error);
        }
        self.broken.clone().expect("set above")
    }

    /// At shutdown: syncs what is not (unless `never`), and stops the sync thread.
    pub fn shutdown(&mut self) {
        if let Some(syncer) = &mut self.syncer {
            syncer.stop();
        }
        if self.policy != FsyncPolicy::Never && self.broken.is_none() {
            match self.storage.sync() {
                Ok(syncs) => crate::stats::add(&self.stats.admin.fsyncs, syncs as u64),
                Err(e) => error!("storage: the last sync failed: {e}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::Event;
    use crate::storage::{DiskLog, DiskOptions};
    use bytes::Bytes;
    use mio::{Events, Poll, Token, Waker};
    use std::path::PathBuf;

    fn entry(id: u64) -> Entry {
        Entry {
            event: Arc::new(Event::message("c".into(), id, "data")),
            data: Bytes::from_static(b"data"),
            at_ms: 1,
        }
    }

    fn journal(policy: FsyncPolicy, write_ahead: Option<usize>) -> (Journal, Poll, PathBuf) {
        let root =
            std::env::temp_dir().join(format!("halley-journal-{policy:?}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let stats = Arc::new(Stats::new(1));
        let options = DiskOptions {
            write_ahead,
            ..DiskOptions::default()
        };
        let mut log = DiskLog::open(&root, options, stats.clone()).unwrap();
        log.recover(0).unwrap();
        let poll = Poll::new().unwrap();
        let waker = Arc::new(Waker::new(poll.registry(), Token(0)).unwrap());
        let syncer = Syncer::spawn(waker, stats.clone()).unwrap();
        let interval = Duration::from_secs(1);
        let journal = Journal::new(Box::new(log), policy, interval, Some(syncer), stats);
        (journal, poll, root)
    }

    fn fsyncs(journal: &Journal) -> u64 {
        journal
            .stats
            .admin
            .fsyncs
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    #[test]
    fn always_syncs_each_turn_once_and_checkpoints_on_the_sync_thread() {
        let (mut journal, mut poll, root) = journal(FsyncPolicy::Always, Some(8_000));
        assert_eq!(journal.append(&entry(1)), Ok(Ack::AfterSync(1)));
        assert_eq!(journal.append(&entry(2)), Ok(Ack::AfterSync(2)));
        assert_eq!(journal.unsynced(), Some(2));
        assert!(
            journal.take_report().is_none(),
            "nothing is durable before the turn ends"
        );
        journal.end_turn(0);
        assert!(matches!(
            journal.take_report(),
            Some(Report::Synced { through: 2 })
        ));
        assert_eq!((journal.unsynced(), fsyncs(&journal)), (None, 1));
        // Enough turns to pass the write-ahead log's checkpoint size.
        let mut id = 2;
        while !journal.checkpointing {
            id += 1;
            journal.append(&entry(id)).unwrap();
            journal.end_turn(0);
            assert!(
                matches!(journal.take_report(), Some(Report::Synced { through }) if through == id)
            );
            assert!(id < 1_000, "no checkpoint");
        }
        // The checkpoint runs on the sync thread; nothing waits for it, and it is
        // not reported as an answer.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let mut events = Events::with_capacity(4);
        loop {
            assert!(journal.take_report().is_none());
            if !journal.checkpointing {
                break;
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            assert!(!left.is_zero(), "the checkpoint never finished");
            poll.poll(&mut events, Some(left)).unwrap();
        }
        assert_eq!(
            fsyncs(&journal),
            id - 1 + 1,
            "one sync a turn, and the checkpoint"
        );
        journal.shutdown();
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn batch_acknowledges_at_once_and_syncs_on_the_sync_thread() {
        let (mut journal, mut poll, root) = journal(FsyncPolicy::Batch, None);
        assert_eq!(journal.append(&entry(1)), Ok(Ack::Now));
        assert_eq!(journal.unsynced(), None);
        journal.end_turn(0);
        assert_eq!(fsyncs(&journal), 0, "not on this thread");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let mut events = Events::with_capacity(4);
        loop {
            if let Some(report) = journal.take_report() {
                assert!(matches!(report, Report::Synced { through: 1 }));
                break;
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            assert!(!left.is_zero(), "no report from the sync thread");
            poll.poll(&mut events, Some(left)).unwrap();
        }
        assert_eq!(fsyncs(&journal), 1);
        // The next sync waits for --fsync-interval.
        journal.append(&entry(2)).unwrap();
        journal.end_turn(500);
        assert_eq!(journal.planned, 1);
        journal.end_turn(1_000);
        assert_eq!(journal.planned, 2);
        journal.shutdown();
        std::fs::remove_dir_all(&root).unwrap();
    }
}
