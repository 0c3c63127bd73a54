//! The sync thread: runs the sync plans the admin thread's journal hands it
//! (`fdatasync` of one file, of the files a checkpoint covers, or `syncfs` of the data
//! directory's file system), one
//! after the other, and reports each one done, so the admin thread goes on reading,
//! storing and answering while the disk flushes. It owns nothing of the log: a plan
//! carries the descriptors it needs.

use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};
use log::error;
use mio::Waker;
use std::sync::Arc;

use super::{StorageError, SyncPlan};
use crate::stats::{add, Stats};

/// What the thread tells the admin thread of each plan, in the order they were sent.
#[derive(Debug)]
pub enum SyncReport {
    /// The plan ran: what it covered is durable.
    Synced,
    /// The plan failed: what it covered may not be durable.
    Failed { error: StorageError },
}

/// The admin thread's end of the sync thread.
#[derive(Debug)]
pub struct Syncer {
    jobs: Option<Sender<SyncPlan>>,
    reports: Receiver<SyncReport>,
    thread: Option<JoinHandle<()>>,
}

impl Syncer {
    /// Starts the thread; its reports wake the admin loop through `waker`.
    pub fn spawn(waker: Arc<Waker>, stats: Arc<Stats>) -> std::io::Result<Syncer> {
        let (jobs, inbox) = crossbeam_channel::unbounded::<SyncPlan>();
        let (outbox, reports) = crossbeam_channel::unbounded();
        let thread = std::thread::Builder::new()
            .name("halley-sync".into())
            .spawn(move || {
                for plan in inbox {
                    let report = match plan.run() {
                        Ok(syncs) => {
                            add(&stats.admin.fsyncs, syncs as u64);
                            SyncReport::Synced
                        }
                        Err(e) => {
                            error!("storage: sync failed: {e}");
                            SyncReport::Failed { error: e }
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
    pub fn send(&self, plan: SyncPlan) {
        if let Some(jobs) = &self.jobs {
            // The thread only stops when told to (`stop`).
            let _ = jobs.send(plan);
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
