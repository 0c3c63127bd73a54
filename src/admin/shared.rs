//! The admin port over Redis (`--redis`): publishes, closes and channel questions go
//! to the Redis publisher thread (`storage/redis_store/publisher.rs`), and each is
//! answered when its result comes back (`AdminMessage::Redis`); a connection waits
//! meanwhile in `Phase::Answering`, so what it pipelined is answered in order. The
//! events themselves reach this server's loops as every other server's do: from
//! Redis, through the listener (`redis_node.rs`), never from here.

use std::collections::HashMap;
use std::sync::Arc;

use super::acks::{reply_with, Answer};
use super::routes::{COUNT_TIMEOUT, JSON};
use super::{reply, AdminApp, AdminConn, TEXT};
use crate::admin_inbox::{PublishAnswer, ReplyTo};
use crate::engine::{Connection, Conns, Cx};
use crate::http::Status;
use crate::stats::{add, bump};
use crate::storage::redis_store::publisher::{Done, Job, Outcome, Queues, Work};
use crate::storage::redis_store::Stored;

type Conn = Connection<AdminConn>;

/// Who waits for a job.
#[derive(Debug)]
enum Waiter {
    /// An admin connection, which waits for exactly this job.
    Conn { key: usize },
    /// A browser publish handed over by a loop.
    Loop(ReplyTo),
}

/// The admin thread's side of Redis: the jobs sent and who waits for each.
#[derive(Debug)]
pub struct Shared {
    jobs: Queues<Job>,
    next_tag: u64,
    waiting: HashMap<u64, Waiter>,
}

impl Shared {
    pub fn new(jobs: Queues<Job>) -> Shared {
        Shared {
            jobs,
            next_tag: 0,
            waiting: HashMap::new(),
        }
    }

    /// Sends a job; returns its tag, or `None` if the publisher thread is gone.
    fn send(&mut self, channel: &str, work: Work, waiter: Waiter) -> Option<u64> {
        self.next_tag += 1;
        let tag = self.next_tag;
        let job = Job {
            tag,
            channel: channel.into(),
            work,
        };
        if !self.jobs.send(channel, job) {
            return None;
        }
        self.waiting.insert(tag, waiter);
        Some(tag)
    }
}

/// Hands a publish, close or channel question from connection `key` to Redis; the
/// connection waits for the answer.
pub fn ask(
    app: &mut AdminApp,
    cx: &mut Cx,
    key: usize,
    conn: &mut Conn,
    channel: &str,
    work: Work,
) {
    let Some(shared) = app.shared.as_mut() else {
        return;
    };
    match shared.send(channel, work, Waiter::Conn { key }) {
        Some(tag) => conn.app.awaiting_job = Some(tag),
        None => unavailable(app, cx, conn, "the Redis thread has stopped"),
    }
}

/// Hands a browser's publish to Redis; its loop is answered when the result comes.
pub fn publish_for_loop(app: &mut AdminApp, to: ReplyTo, channel: &str, data: &[u8]) {
    let Some(shared) = app.shared.as_mut() else {
        return;
    };
    if shared
        .send(channel, Work::Publish(data.to_vec()), Waiter::Loop(to))
        .is_none()
    {
        bump(&app.stats.admin.publishes_refused_storage);
        app.bus.answer(to, PublishAnswer::Unavailable);
    }
}

/// A job's result: answers whoever waits for it.
pub fn on_done(app: &mut AdminApp, conns: &mut Conns<AdminConn>, done: Done) {
    let Some(waiter) = app
        .shared
        .as_mut()
        .and_then(|s| s.waiting.remove(&done.tag))
    else {
        return;
    };
    let admin = &app.stats.admin;
    if done.work != Work::Bounds {
        bump(&admin.redis_publishes);
        add(&admin.redis_publish_us, done.micros);
        app.stats.redis_publish.record(done.micros);
        if done.result.is_err() {
            bump(&admin.redis_publish_failures);
        }
    }
    if let Ok(Outcome::Stored(Stored::New(_))) = &done.result {
        bump(&admin.events_published);
    }
    let key = match waiter {
        Waiter::Loop(to) => return app.bus.answer(to, loop_answer(app, &done)),
        Waiter::Conn { key } => key,
    };
    let Some((cx, conn)) = conns.split(key) else {
        return; // the publisher left; the event is stored all the same
    };
    if conn.app.awaiting_job != Some(done.tag) {
        return; // a new connection under a reused key
    }
    conn.app.awaiting_job = None;
    let channel: Arc<str> = Arc::from(&*done.channel);
    match (&done.work, done.result) {
        (_, Err(e)) => unavailable(app, cx, conn, &e.to_string()),
        (Work::Publish(_), Ok(Outcome::Stored(Stored::New(id)))) => {
            let answer = Answer::Id {
                status: Status::Created,
                channel,
                id,
            };
            reply_with(cx, conn, &answer);
        }
        (Work::Publish(_), Ok(Outcome::Stored(Stored::AlreadyClosed(_)))) => {
            bump(&app.stats.admin.publishes_to_closed);
            reply(cx, conn, Status::Conflict, TEXT, b"the channel is closed\n");
        }
        (Work::Close, Ok(Outcome::Stored(Stored::New(id) | Stored::AlreadyClosed(id)))) => {
            let answer = Answer::Id {
                status: Status::Ok,
                channel,
                id,
            };
            reply_with(cx, conn, &answer);
        }
        (Work::Bounds, Ok(Outcome::Bounds(bounds))) if bounds.last_id == 0 => {
            reply(cx, conn, Status::NotFound, TEXT, b"no such channel\n");
        }
        (Work::Bounds, Ok(Outcome::Bounds(bounds))) => {
            let subscribers = app.bus.count_subscribers(&channel, COUNT_TIMEOUT);
            let answer = format!(
                "{{\"channel\":\"{channel}\",\"first_id\":{},\"last_id\":{},\"closed\":{},\"subscribers\":{subscribers}}}\n",
                bounds.first_id,
                bounds.last_id,
                bounds.closed_id.is_some()
            );
            reply(cx, conn, Status::Ok, JSON, answer.as_bytes());
        }
        (_, Ok(_)) => unavailable(app, cx, conn, "an answer of another kind"),
    }
    // Answer what the publisher pipelined behind it.
    conns.drive(app, key);
}

/// A browser publish's answer.
fn loop_answer(app: &AdminApp, done: &Done) -> PublishAnswer {
    match &done.result {
        Ok(Outcome::Stored(Stored::New(id))) => PublishAnswer::Stored {
            channel: Arc::from(&*done.channel),
            id: *id,
        },
        Ok(Outcome::Stored(Stored::AlreadyClosed(_))) => {
            bump(&app.stats.admin.publishes_to_closed);
            PublishAnswer::Closed
        }
        _ => {
            bump(&app.stats.admin.publishes_refused_storage);
            PublishAnswer::Unavailable
        }
    }
}

/// `503`: Redis did not store it, or did not say (PROTOCOL.md "Several servers").
fn unavailable(app: &AdminApp, cx: &mut Cx, conn: &mut Conn, why: &str) {
    bump(&app.stats.admin.publishes_refused_storage);
    let body = format!("storage unavailable: {why}\n");
    let headers: [(&[u8], &[u8]); 2] = [(b"Cache-Control", b"no-store"), (b"Retry-After", b"1")];
    conn.respond(
        cx,
        Status::ServiceUnavailable,
        TEXT,
        &headers,
        body.as_bytes(),
    );
}
