//! The sync thread: runs the sync plans the admin thread's journal hands it
//! (`fdatasync` of one file or `syncfs` of the data directory's file system), one
//! after the other, and reports each one done, so the admin thread goes on reading,
//! storing and answering while the disk flushes. It owns nothing of the log: a plan
//! carries the descriptors it needs.

use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};
use log::error;
use mio::Waker;
use std::sync::Arc;

use super::SyncPlan;
use crate::stats::{add, Stats};

/// A plan to run, covering every append up to `through` (the journal's numbering).
#[derive(Debug)]
pub struct SyncJob {
    pub through: u64,
    pub plan: SyncPlan,
}

/// What the thread tells the admin thread.
#[derive(Debug)]
pub enum SyncReport {
    /// Every append up to `through` is durable.
    Synced { through: u64 },
    /// The plan for appends up to `through` failed: they may not be durable.
    Failed { through: u64, error: String },
}

/// The admin thread's end of the sync thread.
#[derive(Debug)]
pub struct Syncer {
    jobs: Option<Sender<SyncJob>>,
    reports: Receiver<SyncReport>,
    thread: Option<JoinHandle<()>>,
}

impl Syncer {
    /// Starts the thread; its reports wake the admin loop through `waker`.
    pub fn spawn(waker: Arc<Waker>, stats: Arc<Stats>) -> std::io::Result<Syncer> {
        let (jobs, inbox) = crossbeam_channel::unbounded::<SyncJob>();
        let (outbox, reports) = crossbeam_channel::unbounded();
        let thread = std::thread::Builder::new()
            .name("halley-sync".into())
            .spawn(move || {
                for SyncJob { through, plan } in inbox {
                    let report = match plan.run() {
                        Ok(syncs) => {
                            add(&stats.admin.fsyncs, syncs as u64);
                            SyncReport::Synced { through }
                        }
                        Err(e) => {
                            error!("storage: sync failed: {e}");
                            SyncReport::Failed {
                                through,
                                error: e.to_string(),
                            }
                        }
                    };
                    if outbox.send(report).is_ok() {
                        let _ = waker.wake();
                    }
                }
            })?;
        Ok(Syncer {
            jobs: Some(jobs),
            reports,
            thread: Some(thread),
        })
    }

    /// Queues a plan.
    pub fn send(&self, job: SyncJob) {
        if let Some(jobs) = &self.jobs {
            // The thread only stops when told to (`stop`).
            let _ = jobs.send(job);
        }
    }

    /// The next report, if one has come.
    pub fn try_report(&self) -> Option<SyncReport> {
        self.reports.try_recv().ok()
    }

    /// Lets the thread finish the plans queued, and waits for it.
    pub fn stop(&mut self) {
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
