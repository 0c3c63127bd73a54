//! Storing what the admin port is given, before it is acknowledged: in memory the
//! event is stored and answered at once; with `--data-dir` it goes to the journal
//! thread, and its answer (and its delivery to the loops) waits until the journal
//! reports it stored. A connection waiting for that reads no further request, so
//! pipelined requests are still answered in order.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;

use super::Admin;
use crate::channel::Event;
use crate::http::Status;
use crate::stats::bump;
use crate::storage::journal::{Journal, JournalReport};
use crate::storage::{Entry, MemoryStorage, Storage};

/// Where the admin thread stores events.
pub enum Persistence {
    /// In memory, answered at once.
    Memory(MemoryStorage),
    /// Through the journal thread, answered when it reports them stored.
    Journal(Journal),
}

/// An answer waiting for the journal.
#[derive(Debug)]
pub(super) struct Pending {
    /// Answered once the journal has stored every request up to this one.
    seq: u64,
    /// The connection, which waits for exactly this `seq`.
    conn: usize,
    /// The event to hand to the loops once stored (none for an answer that only has to
    /// wait for earlier events, like closing a channel again).
    event: Option<Arc<Event>>,
    status: Status,
    body: Vec<u8>,
    keep_alive: bool,
}

/// The admin thread's side of storage.
pub(super) struct Storing {
    pub persistence: Persistence,
    pub pending: VecDeque<Pending>,
    /// The journal has stored every request up to this one.
    pub stored_through: u64,
    /// Why storage failed, once it has: publishes are then answered 503.
    pub broken: Option<String>,
}

impl Storing {
    pub fn new(persistence: Persistence) -> Storing {
        Storing {
            persistence,
            pending: VecDeque::new(),
            stored_through: 0,
            broken: None,
        }
    }
}

const JSON: &[u8] = b"application/json";

impl Admin {
    /// Stores a new event (a message with `data`, or a close marker) and answers
    /// `status` with `body` once it is stored.
    pub(super) fn store_and_answer(
        &mut self,
        key: usize,
        event: Arc<Event>,
        data: Bytes,
        (status, body): (Status, Vec<u8>),
        keep_alive: bool,
    ) {
        let entry = Entry::new(event.clone(), data);
        match &mut self.storing.persistence {
            Persistence::Memory(memory) => {
                // Memory storage cannot fail.
                let _ = memory.append(&entry);
                self.bus.publish(&event);
                bump(&self.stats.admin.events_published);
                self.reply(key, status, JSON, &body, keep_alive);
            }
            Persistence::Journal(journal) => {
                let seq = journal.append(entry);
                self.wait_for_storage(key, seq, Some(event), status, body, keep_alive);
            }
        }
    }

    /// Answers at once in memory; with a journal, once everything sent to it so far is
    /// stored (an answer that tells of an event, such as "closed", must not come before
    /// that event is stored).
    pub(super) fn answer_after_stored(
        &mut self,
        key: usize,
        status: Status,
        content_type: &[u8],
        body: &[u8],
        keep_alive: bool,
    ) {
        let seq = match &self.storing.persistence {
            Persistence::Journal(journal) if journal.last_seq() > self.storing.stored_through => {
                journal.last_seq()
            }
            _ => return self.reply(key, status, content_type, body, keep_alive),
        };
        self.wait_for_storage(key, seq, None, status, body.to_vec(), keep_alive);
    }

    fn wait_for_storage(
        &mut self,
        key: usize,
        seq: u64,
        event: Option<Arc<Event>>,
        status: Status,
        body: Vec<u8>,
        keep_alive: bool,
    ) {
        self.conns[key].awaiting = Some(seq);
        self.storing.pending.push_back(Pending {
            seq,
            conn: key,
            event,
            status,
            body,
            keep_alive,
        });
    }

    /// Refuses a publish or close because storage has failed; returns whether it did.
    pub(super) fn refuse_if_storage_broken(&mut self, key: usize, keep_alive: bool) -> bool {
        let Some(why) = &self.storing.broken else {
            return false;
        };
        let body = format!("storage failed, publishing is stopped: {why}\n");
        bump(&self.stats.admin.publishes_refused_storage);
        self.reply(
            key,
            Status::ServiceUnavailable,
            b"text/plain; charset=utf-8",
            body.as_bytes(),
            keep_alive,
        );
        true
    }

    /// Takes what the journal reported: answers what is stored (or failed), hands
    /// stored events to the loops, passes retention on.
    pub(super) fn take_journal_reports(&mut self) {
        let Persistence::Journal(journal) = &self.storing.persistence else {
            return;
        };
        let reports: Vec<JournalReport> = journal.reports.try_iter().collect();
        for report in reports {
            match report {
                JournalReport::Stored { through } => {
                    self.storing.stored_through = through;
                    self.finish_pending(through, None);
                }
                JournalReport::Failed { through, error } => {
                    self.storing.broken = Some(error.clone());
                    self.finish_pending(through, Some(error));
                }
                JournalReport::Retained { channel, first_id } => {
                    self.store.set_stored_first(&channel, first_id);
                    self.bus.retained(&channel, first_id);
                }
            }
        }
    }

    /// Answers every pending answer up to `through`: as asked if stored, 503 if failed.
    fn finish_pending(&mut self, through: u64, failed: Option<String>) {
        while self
            .storing
            .pending
            .front()
            .is_some_and(|p| p.seq <= through)
        {
            let pending = self.storing.pending.pop_front().expect("checked");
            if failed.is_none() {
                if let Some(event) = &pending.event {
                    self.bus.publish(event);
                    bump(&self.stats.admin.events_published);
                }
            }
            let key = pending.conn;
            let waiting = self
                .conns
                .get_mut(key)
                .is_some_and(|c| c.awaiting == Some(pending.seq));
            if !waiting {
                continue; // the publisher left; the event is stored all the same
            }
            self.conns[key].awaiting = None;
            match &failed {
                None => self.reply(key, pending.status, JSON, &pending.body, pending.keep_alive),
                Some(why) => {
                    bump(&self.stats.admin.publishes_refused_storage);
                    let body = format!("storage failed, the event may not be stored: {why}\n");
                    self.reply(
                        key,
                        Status::ServiceUnavailable,
                        b"text/plain; charset=utf-8",
                        body.as_bytes(),
                        pending.keep_alive,
                    );
                }
            }
            // Answer what the publisher pipelined behind it.
            self.drive(key);
        }
    }

    /// Tells the journal to sync and stop (at shutdown).
    pub(super) fn stop_journal(&self) {
        if let Persistence::Journal(journal) = &self.storing.persistence {
            journal.shutdown();
        }
    }
}
