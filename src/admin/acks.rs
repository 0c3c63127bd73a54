//! Acknowledging what the admin port is given only once it is stored. Every event is
//! appended to the storage by the journal (`storage/journal.rs`) on this thread; in
//! memory it is then answered and handed to the loops at once. With `--data-dir`, its
//! answer (and its delivery to the loops) waits for the end of the turn, when the
//! journal has written the turn's events (and synced them, with `--fsync always`).
//! A connection waiting for that stays in `Phase::Answering` and reads no further
//! request, so pipelined requests are still answered in order. A browser publish
//! handed over by a loop waits in the same queue, and its answer goes back to the
//! loop through the bus.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::Arc;

use super::{reply, AdminApp, AdminConn, TEXT};
use crate::admin_inbox::{PublishAnswer, ReplyTo};
use crate::channel::Event;
use crate::engine::{Connection, Conns, Cx};
use crate::http::Status;
use crate::stats::bump;
use crate::storage::journal::{Ack, Journal, Report};
use crate::storage::{Entry, StorageError};

/// An answer to a publish or close, which may have to wait for storage.
#[derive(Debug)]
pub enum Answer {
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

const JSON: &[u8] = b"application/json";

/// Who waits for an answer, and the answer.
#[derive(Debug)]
enum Waiter {
    /// An admin connection, which waits for exactly its `seq`.
    Conn { key: usize, answer: Answer },
    /// A browser publish handed over by a loop, answered through the bus.
    Loop { to: ReplyTo, answer: PublishAnswer },
}

/// An answer waiting for a sync.
#[derive(Debug)]
struct Pending {
    /// Answered once every append up to this one is durable.
    seq: u64,
    /// The event to hand to the loops once durable (none for an answer that only has
    /// to wait for earlier events, like closing a channel again).
    event: Option<Arc<Event>>,
    waiter: Waiter,
}

/// The admin thread's side of storage: the journal and the answers waiting for it.
pub struct Acks {
    pub journal: Journal,
    pending: VecDeque<Pending>,
}

impl Acks {
    pub fn new(journal: Journal) -> Acks {
        Acks {
            journal,
            pending: VecDeque::new(),
        }
    }
}

type Conn = Connection<AdminConn>;

/// Writes `answer`.
pub(super) fn reply_with(cx: &mut Cx, conn: &mut Conn, answer: &Answer) {
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
            reply(cx, conn, *status, JSON, &body[..len])
        }
        Answer::Text { status, body } => reply(cx, conn, *status, TEXT, body),
    }
}

/// Stores a new event (a message with `data`, or a close marker) and gives `answer`
/// once it is stored.
pub fn store_and_answer(
    app: &mut AdminApp,
    cx: &mut Cx,
    key: usize,
    conn: &mut Conn,
    event: Arc<Event>,
    data: &[u8],
    answer: Answer,
) {
    match app.acks.journal.append(&Entry::new(event.clone(), data)) {
        Ok(Ack::Now) => {
            app.bus.publish(&event);
            bump(&app.stats.admin.events_published);
            reply_with(cx, conn, &answer);
        }
        Ok(Ack::AfterSync(seq)) => wait_for_storage(app, key, conn, seq, Some(event), answer),
        Err(why) => refuse_for_storage(app, cx, conn, "the event is not stored", &why),
    }
}

/// Answers once every event appended so far is as durable as `--fsync` asks (an
/// answer that tells of an event, such as "closed", must not come before that event
/// is stored): at once in memory or when nothing waits, else at the end of the turn.
pub fn answer_after_stored(
    app: &mut AdminApp,
    cx: &mut Cx,
    key: usize,
    conn: &mut Conn,
    answer: Answer,
) {
    let Some(seq) = app.acks.journal.unsynced() else {
        return reply_with(cx, conn, &answer);
    };
    wait_for_storage(app, key, conn, seq, None, answer);
}

/// Holds the connection's answer until storage reports `seq` durable.
fn wait_for_storage(
    app: &mut AdminApp,
    key: usize,
    conn: &mut Conn,
    seq: u64,
    event: Option<Arc<Event>>,
    answer: Answer,
) {
    conn.app.awaiting = Some(seq);
    app.acks.pending.push_back(Pending {
        seq,
        event,
        waiter: Waiter::Conn { key, answer },
    });
}

/// Stores a browser's event (a message with `data`) and answers its loop once it is
/// stored, as `store_and_answer` does for an admin connection.
pub fn store_for_loop(app: &mut AdminApp, to: ReplyTo, event: Arc<Event>, data: &[u8]) {
    let answer = PublishAnswer::Stored {
        channel: event.channel.clone(),
        id: event.id,
    };
    match app.acks.journal.append(&Entry::new(event.clone(), data)) {
        Ok(Ack::Now) => {
            app.bus.publish(&event);
            bump(&app.stats.admin.events_published);
            app.bus.answer(to, answer);
        }
        Ok(Ack::AfterSync(seq)) => app.acks.pending.push_back(Pending {
            seq,
            event: Some(event),
            waiter: Waiter::Loop { to, answer },
        }),
        Err(why) => {
            log::warn!("admin: a browser's event is not stored: {why}");
            bump(&app.stats.admin.publishes_refused_storage);
            app.bus.answer(to, PublishAnswer::Unavailable);
        }
    }
}

/// Answers a loop once every event appended so far is stored (see
/// `answer_after_stored`).
pub fn answer_loop_after_stored(app: &mut AdminApp, to: ReplyTo, answer: PublishAnswer) {
    match app.acks.journal.unsynced() {
        None => app.bus.answer(to, answer),
        Some(seq) => app.acks.pending.push_back(Pending {
            seq,
            event: None,
            waiter: Waiter::Loop { to, answer },
        }),
    }
}

/// Refuses a publish or close because storage has failed; returns whether it did.
pub fn refuse_if_storage_broken(app: &mut AdminApp, cx: &mut Cx, conn: &mut Conn) -> bool {
    let Some(why) = app.acks.journal.broken().cloned() else {
        return false;
    };
    refuse_for_storage(app, cx, conn, "publishing is stopped", &why);
    true
}

/// Answers `503` to a publish or close because storage failed: `what` says what
/// became of it, `why` the error.
fn refuse_for_storage(
    app: &AdminApp,
    cx: &mut Cx,
    conn: &mut Conn,
    what: &str,
    why: &StorageError,
) {
    bump(&app.stats.admin.publishes_refused_storage);
    let body = format!("storage failed, {what}: {why}\n");
    reply(cx, conn, Status::ServiceUnavailable, TEXT, body.as_bytes());
}

/// Ends a turn of the admin loop: lets the journal write (and with `always` sync) the
/// turn's events and run retention, answers what is now durable, and wakes the loops
/// for the events stored in the turn, once each.
pub fn end_turn(app: &mut AdminApp, conns: &mut Conns<AdminConn>) {
    loop {
        for (channel, first_id) in app.acks.journal.end_turn(conns.cx.now_ms) {
            app.ids.set_stored_first(&channel, first_id);
            app.bus.retained(&channel, first_id);
        }
        // Answering may take requests the publishers pipelined; their events must be
        // synced before the loop sleeps.
        take_journal_reports(app, conns);
        let journal = &app.acks.journal;
        if journal.unsynced().is_none() || journal.broken().is_some() {
            break;
        }
    }
    app.bus.wake();
}

/// Takes what the sync thread reported: answers what is durable (or failed) and hands
/// durable events to the loops.
pub fn take_journal_reports(app: &mut AdminApp, conns: &mut Conns<AdminConn>) {
    while let Some(report) = app.acks.journal.take_report() {
        match report {
            Report::Synced { through } => finish_pending(app, conns, through, None),
            Report::Failed { error } => finish_pending(app, conns, u64::MAX, Some(error)),
        }
    }
}

/// Answers every pending answer up to `through`: as asked if stored, 503 if failed.
fn finish_pending(
    app: &mut AdminApp,
    conns: &mut Conns<AdminConn>,
    through: u64,
    failed: Option<StorageError>,
) {
    while app.acks.pending.front().is_some_and(|p| p.seq <= through) {
        let pending = app.acks.pending.pop_front().expect("checked");
        if failed.is_none() {
            if let Some(event) = &pending.event {
                app.bus.publish(event);
                bump(&app.stats.admin.events_published);
            }
        }
        let (key, answer) = match pending.waiter {
            Waiter::Conn { key, answer } => (key, answer),
            Waiter::Loop { to, answer } => {
                let answer = match failed {
                    None => answer,
                    Some(_) => {
                        bump(&app.stats.admin.publishes_refused_storage);
                        PublishAnswer::Unavailable
                    }
                };
                app.bus.answer(to, answer);
                continue;
            }
        };
        let Some((cx, conn)) = conns.split(key) else {
            continue; // the publisher left; the event is stored all the same
        };
        if conn.app.awaiting != Some(pending.seq) {
            continue; // a new connection under a reused key
        }
        conn.app.awaiting = None;
        match &failed {
            None => reply_with(cx, conn, &answer),
            Some(why) => refuse_for_storage(app, cx, conn, "the event may not be stored", why),
        }
        // Answer what the publisher pipelined behind it (reading nothing the poll has
        // not reported: new bytes belong to the next turn's sync).
        conns.drive(app, key);
    }
}

/// Tells the journal to sync and stop (at shutdown).
pub fn stop_journal(app: &mut AdminApp) {
    app.bus.wake();
    app.acks.journal.shutdown();
}
