//! The admin thread's writer: appends every event to the storage as it is published,
//! makes the storage as durable as `--fsync` asks, runs retention, and says when each
//! publish may be acknowledged.
//!
//! At the end of each turn of the admin loop, everything appended in the turn is
//! flushed, in one write of the write-ahead log (`wal.rs`), and only then answered,
//! so a crash of the process loses nothing acknowledged in any mode. Publishes that
//! arrive meanwhile wait in their sockets for the next turn.
//!
//! - `always`: group commit, as Redis does it: the turn's flush is followed by one
//!   sync, here, of the write-ahead log (one `fdatasync`, about 0.2 ms), before the
//!   answers. The checkpoints of the write-ahead log (a sync of every segment written
//!   since the last one, much longer) run on the sync thread (`syncer.rs`): no answer
//!   waits for them. Handing every sync to that thread instead did no better in
//!   interleaved trials (the two thread wake-ups per group cost what the overlap
//!   gains).
//! - `batch`: a sync of the write-ahead log every `--fsync-interval`, if anything was
//!   appended, and the checkpoints, on the sync thread.
//! - `never`: no sync; the kernel decides.
//!
//! In memory there is nothing to flush, and publishes are answered at once.
//!
//! A storage error, in an append or a sync, stops the journal: it takes no more
//! events (the admin answers `503`), and nothing is retried, so no id is ever stored
//! twice or out of order.

use std::sync::Arc;
use std::time::Duration;

use log::error;

use super::syncer::{SyncReport, Syncer};
use super::{wall_ms, Entry, FsyncPolicy, Storage, StorageError, SyncPlan};
use crate::stats::{add, bump, Stats};

/// How often retention runs.
const RETENTION_EVERY: Duration = Duration::from_secs(1);

/// When a publish may be acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ack {
    /// Now (in memory).
    Now,
    /// Once the end of the turn has made append number `seq` as durable as `--fsync`
    /// asks (`Report::Synced`).
    AfterSync(u64),
}

/// What the journal has to tell the admin thread.
#[derive(Debug)]
pub enum Report {
    /// Every append up to `through` is as durable as `--fsync` asks.
    Synced { through: u64 },
    /// Storage failed: appends not yet reported durable may not be, and no more are
    /// taken.
    Failed { error: StorageError },
}

/// The storage, as the admin thread writes it.
pub struct Journal {
    storage: Box<dyn Storage>,
    /// `None` in memory.
    policy: Option<FsyncPolicy>,
    interval_ms: u64,
    /// Runs sync plans (`always` and `batch`).
    syncer: Option<Syncer>,
    stats: Arc<Stats>,
    /// Appends so far, numbered 1, 2, 3, ...
    appended: u64,
    /// The last append flushed (and with `always` synced) at the end of a turn.
    synced: u64,
    /// `synced` moved and is not reported yet.
    newly_synced: bool,
    /// `batch`: the last append the sync thread was asked to sync.
    planned: u64,
    /// Jobs handed to the sync thread so far, and reports of them received (it runs
    /// them in order).
    jobs_sent: u64,
    jobs_done: u64,
    /// The number of the checkpoint job running on the sync thread, if one is.
    checkpoint_job: Option<u64>,
    /// Why storage failed, once it has.
    broken: Option<StorageError>,
    /// A failure to report that the sync thread did not see (making a plan failed).
    failure: Option<StorageError>,
    next_sync_ms: u64,
    next_retention_ms: u64,
}

impl Journal {
    /// A journal over `storage` on disk, syncing as `policy` asks on `syncer` (none is
    /// needed with `never`).
    pub fn new(
        storage: Box<dyn Storage>,
        policy: FsyncPolicy,
        interval: Duration,
        syncer: Option<Syncer>,
        stats: Arc<Stats>,
    ) -> Journal {
        Journal {
            policy: Some(policy),
            interval_ms: interval.as_millis() as u64,
            syncer,
            ..Journal::in_memory(storage, stats)
        }
    }

    /// A journal over a storage in memory: publishes are answered at once.
    pub fn in_memory(storage: Box<dyn Storage>, stats: Arc<Stats>) -> Journal {
        Journal {
            storage,
            policy: None,
            interval_ms: 0,
            syncer: None,
            stats,
            appended: 0,
            synced: 0,
            newly_synced: false,
            planned: 0,
            jobs_sent: 0,
            jobs_done: 0,
            checkpoint_job: None,
            broken: None,
            failure: None,
            next_sync_ms: 0,
            next_retention_ms: 0,
        }
    }

    /// Stores an event; says when it may be acknowledged, or why it cannot be stored.
    pub fn append(&mut self, entry: &Entry) -> Result<Ack, StorageError> {
        if let Some(why) = &self.broken {
            return Err(why.clone());
        }
        if let Err(e) = self.storage.append(entry) {
            return Err(self.fail(e));
        }
        bump(&self.stats.admin.events_stored);
        self.appended += 1;
        Ok(match self.policy {
            Some(_) => Ack::AfterSync(self.appended),
            None => Ack::Now,
        })
    }

    /// Why storage failed, once it has.
    pub fn broken(&self) -> Option<&StorageError> {
        self.broken.as_ref()
    }

    /// The append an answer given now must wait for, so that it does not tell of an
    /// event (a close, say) before that event is stored.
    pub fn unsynced(&self) -> Option<u64> {
        (self.policy.is_some() && self.appended > self.synced).then_some(self.appended)
    }

    /// Ends a turn of the admin loop at `now_ms` (its clock): starts a sync if one is
    /// due, runs retention if due. Returns the channels whose first stored id moved.
    pub fn end_turn(&mut self, now_ms: u64) -> Vec<(Arc<str>, u64)> {
        if self.broken.is_none() && self.appended > self.synced {
            let flushed = match self.policy {
                Some(FsyncPolicy::Always) => self
                    .storage
                    .take_sync_plan()
                    .and_then(|plan| plan.run())
                    .map(|syncs| add(&self.stats.admin.fsyncs, syncs as u64)),
                Some(FsyncPolicy::Batch | FsyncPolicy::Never) => self.storage.flush(),
                None => Ok(()),
            };
            match flushed {
                Ok(()) => {
                    self.synced = self.appended;
                    self.newly_synced = true;
                }
                Err(e) => self.fail_to_report(e),
            }
        }
        let batch = self.policy == Some(FsyncPolicy::Batch);
        if batch && now_ms >= self.next_sync_ms && self.synced > self.planned {
            self.sync_in_background(now_ms);
        }
        if self.broken.is_none() && self.checkpoint_job.is_none() && self.syncer.is_some() {
            if let Some(plan) = self.storage.take_checkpoint() {
                self.send(plan);
                self.checkpoint_job = Some(self.jobs_sent);
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
        let sync = self.policy == Some(FsyncPolicy::Batch) && self.synced > self.planned;
        if sync {
            self.next_sync_ms.min(self.next_retention_ms)
        } else {
            self.next_retention_ms
        }
    }

    /// `batch`: hands a sync of everything flushed to the sync thread.
    fn sync_in_background(&mut self, now_ms: u64) {
        if self.syncer.is_none() {
            return;
        }
        match self.storage.take_sync_plan() {
            Ok(plan) => self.send(plan),
            Err(e) => return self.fail_to_report(e),
        }
        self.planned = self.synced;
        self.next_sync_ms = now_ms + self.interval_ms;
    }

    /// Hands a plan to the sync thread and counts it.
    fn send(&mut self, plan: SyncPlan) {
        if let Some(syncer) = &self.syncer {
            syncer.send(plan);
            self.jobs_sent += 1;
        }
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
                // A checkpoint, or a `batch` sync: nothing waits for either.
                SyncReport::Synced => {
                    self.jobs_done += 1;
                    if self.checkpoint_job == Some(self.jobs_done) {
                        self.storage.checkpoint_done();
                        self.checkpoint_job = None;
                    }
                }
                SyncReport::Failed { error } => {
                    self.jobs_done += 1;
                    return Some(Report::Failed {
                        error: self.fail(error),
                    });
                }
            }
        }
    }

    /// Fails on an error found at the end of a turn, to be reported by `take_report`.
    fn fail_to_report(&mut self, error: StorageError) {
        let error = self.fail(error);
        self.failure = Some(error);
    }

    /// Stops the journal for `error` (the first failure is the one kept and logged);
    /// returns the failure in force.
    fn fail(&mut self, error: StorageError) -> StorageError {
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
        let Some(policy) = self.policy else {
            return;
        };
        if self.broken.is_none() {
            match self.storage.shut_down(policy != FsyncPolicy::Never) {
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
    use mio::{Events, Poll, Token, Waker};
    use std::path::PathBuf;

    fn entry(id: u64) -> Entry<'static> {
        Entry {
            event: Arc::new(Event::message("c".into(), id, "data")),
            data: b"data",
            at_ms: 1,
        }
    }

    fn journal(policy: FsyncPolicy, checkpoint_bytes: usize) -> (Journal, Poll, PathBuf) {
        let root =
            std::env::temp_dir().join(format!("halley-journal-{policy:?}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let stats = Arc::new(Stats::new(1));
        let options = DiskOptions {
            checkpoint_bytes,
            ..DiskOptions::default()
        };
        let mut log = DiskLog::open(&root, options, stats.clone()).unwrap();
        log.recover(0).unwrap();
        let poll = Poll::new().unwrap();
        let waker = Arc::new(Waker::new(poll.registry(), Token(0)).unwrap());
        let syncer = Syncer::spawn(waker, stats.clone()).unwrap();
        let interval = Duration::from_secs(1);
        let mut journal = Journal::new(Box::new(log), policy, interval, Some(syncer), stats);
        let mut poll = poll;
        // The first turn starts the preparation of the next write-ahead log file.
        journal.end_turn(0);
        assert_eq!(journal.checkpoint_job, Some(1));
        wait_for_jobs(&mut journal, &mut poll, 1);
        assert_eq!(journal.checkpoint_job, None);
        (journal, poll, root)
    }

    /// Waits until the sync thread has reported `jobs` jobs done; asserts that none
    /// of its reports answers a publish.
    fn wait_for_jobs(journal: &mut Journal, poll: &mut Poll, jobs: u64) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let mut events = Events::with_capacity(4);
        while journal.jobs_done < jobs {
            assert!(journal.take_report().is_none());
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            assert!(!left.is_zero(), "no report from the sync thread");
            poll.poll(&mut events, Some(left)).unwrap();
        }
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
        let (mut journal, mut poll, root) = journal(FsyncPolicy::Always, 8_000);
        let before = fsyncs(&journal);
        assert_eq!(journal.append(&entry(1)).ok(), Some(Ack::AfterSync(1)));
        assert_eq!(journal.append(&entry(2)).ok(), Some(Ack::AfterSync(2)));
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
        assert_eq!((journal.unsynced(), fsyncs(&journal) - before), (None, 1));
        // Enough turns to pass the write-ahead log's checkpoint size.
        let mut id = 2;
        while journal.checkpoint_job.is_none() {
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
        wait_for_jobs(&mut journal, &mut poll, 2);
        assert_eq!(journal.checkpoint_job, None);
        // The checkpoint syncs the channel's segment, the prepared log file and the
        // directories that gained an entry: the log's, and the channel's and its
        // parent's (created since recovery).
        assert_eq!(
            fsyncs(&journal) - before,
            id - 1 + 5,
            "one sync a turn, and the checkpoint's"
        );
        journal.shutdown();
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn batch_answers_at_the_end_of_the_turn_and_syncs_on_the_sync_thread() {
        let (mut journal, mut poll, root) = journal(FsyncPolicy::Batch, 1 << 20);
        let before = fsyncs(&journal);
        assert_eq!(journal.append(&entry(1)).ok(), Some(Ack::AfterSync(1)));
        assert_eq!(journal.unsynced(), Some(1));
        assert!(journal.take_report().is_none(), "not before the turn ends");
        journal.end_turn(0);
        assert!(matches!(
            journal.take_report(),
            Some(Report::Synced { through: 1 })
        ));
        assert_eq!(journal.unsynced(), None);
        // The sync runs on the sync thread; its report answers nothing.
        wait_for_jobs(&mut journal, &mut poll, 2);
        assert_eq!(fsyncs(&journal) - before, 1);
        // The next sync waits for --fsync-interval.
        journal.append(&entry(2)).unwrap();
        journal.end_turn(500);
        assert_eq!(journal.planned, 1);
        journal.end_turn(1_000);
        assert_eq!(journal.planned, 2);
        journal.shutdown();
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn never_answers_at_the_end_of_the_turn_and_never_syncs() {
        let root =
            std::env::temp_dir().join(format!("halley-journal-never-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let stats = Arc::new(Stats::new(1));
        let options = DiskOptions {
            checkpoint_bytes: 4_000,
            sync_checkpoints: false,
            ..DiskOptions::default()
        };
        let mut log = DiskLog::open(&root, options, stats.clone()).unwrap();
        log.recover(0).unwrap();
        let mut journal = Journal::new(
            Box::new(log),
            FsyncPolicy::Never,
            Duration::from_secs(1),
            None,
            stats,
        );
        for id in 1..=200 {
            assert_eq!(journal.append(&entry(id)).ok(), Some(Ack::AfterSync(id)));
            assert!(journal.take_report().is_none());
            journal.end_turn(id * 100);
            assert!(
                matches!(journal.take_report(), Some(Report::Synced { through }) if through == id)
            );
        }
        journal.shutdown();
        assert_eq!(fsyncs(&journal), 0);
        std::fs::remove_dir_all(&root).unwrap();
    }
}
