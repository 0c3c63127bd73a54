//! Storing what the admin port is given, before it is acknowledged. Every event is
//! appended to the storage by the journal (`storage/journal.rs`) on this thread; in
//! memory it is then answered and handed to the loops at once. With `--data-dir`, its
//! answer (and its delivery to the loops) waits for the end of the turn, when the
//! journal has written the turn's events (and synced them, with `--fsync always`). A
//! connection waiting for that reads no further request, so pipelined requests are
//! still answered in order.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::Arc;

use super::Admin;
use crate::channel::Event;
use crate::http::Status;
use crate::stats::bump;
use crate::storage::journal::{Ack, Journal, Report};
use crate::storage::Entry;

/// An answer to a publish or close, which may have to wait for storage.
#[derive(Debug)]
pub(super) enum Answer {
    /// `{"channel":"..","id":..}`, in JSON.
    Id {
        status: Status,
        channel: Arc<str>,
        id: u64,
    },
    /// A fixed text.
    Text { status: Status, body: &'static [u8] },
}

/// The longest `Answer::Id` body: a channel name is at most 128 bytes.
const MAX_ID_ANSWER: usize = 128 + 64;

/// An answer waiting for a sync.
#[derive(Debug)]
pub(super) struct Pending {
    /// Answered once every append up to this one is durable.
    seq: u64,
    /// The connection, which waits for exactly this `seq`.
    conn: usize,
    /// The event to hand to the loops once durable (none for an answer that only has
    /// to wait for earlier events, like closing a channel again).
    event: Option<Arc<Event>>,
    answer: Answer,
    keep_alive: bool,
}

/// The admin thread's side of storage.
pub(super) struct Storing {
    pub journal: Journal,
    pub pending: VecDeque<Pending>,
}

impl Storing {
    pub fn new(journal: Journal) -> Storing {
        Storing {
            journal,
            pending: VecDeque::new(),
        }
    }
}

const JSON: &[u8] = b"application/json";
const TEXT: &[u8] = b"text/plain; charset=utf-8";

impl Admin {
    /// Writes `answer`.
    fn reply_with(&mut self, key: usize, answer: &Answer, keep_alive: bool) {
        match answer {
            Answer::Id {
                status,
                channel,
                id,
            } => {
                // Formatted on the stack: a publish's answer allocates nothing.
                let mut body = [0u8; MAX_ID_ANSWER];
                let mut out = std::io::Cursor::new(&mut body[..]);
                let _ = writeln!(out, "{{\"channel\":\"{channel}\",\"id\":{id}}}");
                let len = out.position() as usize;
                self.reply(key, *status, JSON, &body[..len], keep_alive)
            }
            Answer::Text { status, body } => self.reply(key, *status, TEXT, body, keep_alive),
        }
    }

    /// Stores a new event (a message with `data`, or a close marker) and gives
    /// `answer` once it is stored.
    pub(super) fn store_and_answer(
        &mut self,
        key: usize,
        event: Arc<Event>,
        data: &[u8],
        answer: Answer,
        keep_alive: bool,
    ) {
        match self
            .storing
            .journal
            .append(&Entry::new(event.clone(), data))
        {
            Ok(Ack::Now) => {
                self.bus.publish(&event);
                bump(&self.stats.admin.events_published);
                self.reply_with(key, &answer, keep_alive);
            }
            Ok(Ack::AfterSync(seq)) => {
                self.wait_for_storage(key, seq, Some(event), answer, keep_alive)
            }
            Err(why) => self.refuse_for_storage(key, "the event is not stored", &why, keep_alive),
        }
    }

    /// Answers once every event appended so far is as durable as `--fsync` asks (an
    /// answer that tells of an event, such as "closed", must not come before that
    /// event is stored): at once in memory or when nothing waits, else at the end of
    /// the turn.
    pub(super) fn answer_after_stored(&mut self, key: usize, answer: Answer, keep_alive: bool) {
        let Some(seq) = self.storing.journal.unsynced() else {
            return self.reply_with(key, &answer, keep_alive);
        };
        self.wait_for_storage(key, seq, None, answer, keep_alive);
    }

    fn wait_for_storage(
        &mut self,
        key: usize,
        seq: u64,
        event: Option<Arc<Event>>,
        answer: Answer,
        keep_alive: bool,
    ) {
        self.conns[key].awaiting = Some(seq);
        self.storing.pending.push_back(Pending {
            seq,
            conn: key,
            event,
            answer,
            keep_alive,
        });
    }

    /// Refuses a publish or close because storage has failed; returns whether it did.
    pub(super) fn refuse_if_storage_broken(&mut self, key: usize, keep_alive: bool) -> bool {
        let Some(why) = self.storing.journal.broken().map(str::to_owned) else {
            return false;
        };
        self.refuse_for_storage(key, "publishing is stopped", &why, keep_alive);
        true
    }

    /// Ends a turn of the admin loop: lets the journal write (and with `always` sync)
    /// the turn's events and run retention, answers what is now durable, and wakes the loops for the events
    /// stored in the turn, once each.
    pub(super) fn end_turn(&mut self) {
        loop {
            for (channel, first_id) in self.storing.journal.end_turn(self.now_ms) {
                self.store.set_stored_first(&channel, first_id);
                self.bus.retained(&channel, first_id);
            }
            // Answering may take requests the publishers pipelined; their events must
            // be synced before the loop sleeps.
            self.take_journal_reports();
            let journal = &self.storing.journal;
            if journal.unsynced().is_none() || journal.broken().is_some() {
                break;
            }
        }
        self.bus.wake();
    }

    /// Takes what the sync thread reported: answers what is durable (or failed) and
    /// hands durable events to the loops.
    pub(super) fn take_journal_reports(&mut self) {
        while let Some(report) = self.storing.journal.take_report() {
            match report {
                Report::Synced { through } => self.finish_pending(through, None),
                Report::Failed { error } => self.finish_pending(u64::MAX, Some(error)),
            }
        }
    }

    /// Answers `503` to a publish or close because storage failed: `what` says what
    /// became of it, `why` the error.
    fn refuse_for_storage(&mut self, key: usize, what: &str, why: &str, keep_alive: bool) {
        bump(&self.stats.admin.publishes_refused_storage);
        let body = format!("storage failed, {what}: {why}\n");
        self.reply(
            key,
            Status::ServiceUnavailable,
            TEXT,
            body.as_bytes(),
            keep_alive,
        );
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
                None => self.reply_with(key, &pending.answer, pending.keep_alive),
                Some(why) => self.refuse_for_storage(
                    key,
                    "the event may not be stored",
                    why,
                    pending.keep_alive,
                ),
            }
            // Answer what the publisher pipelined behind it (reading nothing new:
            // the poll reports new bytes, and they belong to the next turn's sync).
            self.serve(key);
        }
    }

    /// Tells the journal to sync and stop (at shutdown).
    pub(super) fn stop_journal(&mut self) {
        self.bus.wake();
        self.storing.journal.shutdown();
    }
}
