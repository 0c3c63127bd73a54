//! The admin port's application: publishing, closing, channel info, `/stats`,
//! `/metrics`, `/healthz`. It runs on its own thread, in an event loop of the same
//! engine as the subscriber loops (`engine/`) but never in one of them, so a
//! publisher gets in however loaded the subscriber port is.
//!
//! A publish, hop by hop: `routes.rs` reads it; `ids.rs` gives the event its id;
//! `acks.rs` hands it to the storage's journal and answers once it is stored (at the
//! end of the turn with `--data-dir`), then queues it to every loop on the bus. A
//! browser's publish comes from a loop instead (`browser.rs`) and takes the same hops;
//! its answer goes back to that loop. With `--redis`, Redis gives the ids and keeps
//! the events instead (`shared.rs`).

mod acks;
mod browser;
pub mod guard;
mod ids;
mod routes;
mod shared;

pub use crate::admin_inbox::AdminMessage;
pub use ids::{ChannelIds, ChannelInfo, PublishError};

use std::sync::Arc;

use crossbeam_channel::Receiver;

use crate::bus::Bus;
use crate::config::Config;
use crate::engine::{
    Application, Connection, Conns, Cx, Flow, HeadVerdict, Limits, OnExhaustion, Request,
};
use crate::http::{RequestHead, Status};
use crate::stats::{ConnStats, Stats};
use crate::storage::journal::Journal;
use crate::storage::redis_store::publisher::{Job, Queues};

/// The answer to an admin connection over `--admin-max-conns`.
const REFUSAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

/// Input buffer capacity kept between requests; a larger one (a big publish) is freed.
const KEPT_INPUT: usize = 16 * 1024;

/// What an admin connection holds besides its HTTP state.
#[derive(Debug, Default)]
pub struct AdminConn {
    /// The answer to the current request waits for the journal to store up to this
    /// append (`Phase::Answering` meanwhile: pipelined requests wait behind it).
    awaiting: Option<u64>,
    /// With `--redis`: the answer waits for this job of the Redis thread.
    awaiting_job: Option<u64>,
}

/// The admin port's application.
pub struct AdminApp {
    config: Arc<Config>,
    stats: Arc<Stats>,
    /// Where stored events go: every subscriber loop.
    bus: Bus,
    inbox: Receiver<AdminMessage>,
    ids: ChannelIds,
    /// Answers waiting for storage, and the journal they wait for.
    acks: acks::Acks,
    /// With `--redis`: the jobs handed to the Redis thread, and who waits for each.
    shared: Option<shared::Shared>,
}

impl AdminApp {
    /// The admin application over `ids` and `journal` (which must agree: both
    /// recovered from the same storage, or both new).
    pub fn new(
        inbox: Receiver<AdminMessage>,
        config: Arc<Config>,
        stats: Arc<Stats>,
        bus: Bus,
        (ids, journal): (ChannelIds, Journal),
    ) -> AdminApp {
        AdminApp {
            config,
            stats,
            bus,
            inbox,
            ids,
            acks: acks::Acks::new(journal),
            shared: None,
        }
    }

    /// Publishes, closes and channel questions go to Redis through `jobs`
    /// (`--redis`); their results come back as `AdminMessage::Redis`.
    pub fn share_through(&mut self, jobs: Queues<Job>) {
        self.shared = Some(shared::Shared::new(jobs));
    }
}

/// The admin port's limits, from the settings.
pub fn limits(config: &Config) -> Limits {
    let ms = |d: std::time::Duration| d.as_millis() as u64;
    Limits {
        max_head: config.max_head,
        max_body: config.max_message,
        max_pending: config.max_pending,
        kept_input: KEPT_INPUT,
        header_ms: ms(config.header_timeout),
        body_ms: ms(config.write_timeout),
        keepalive_ms: ms(config.keepalive_timeout),
        write_ms: ms(config.write_timeout),
        abandon_on_peer_close: false,
        refusal: REFUSAL,
        on_exhaustion: OnExhaustion::ServeOne,
    }
}

const TEXT: &[u8] = b"text/plain; charset=utf-8";

/// Writes a whole answer (its head alone to a HEAD request) and completes it.
fn reply(
    cx: &mut Cx,
    conn: &mut Connection<AdminConn>,
    status: Status,
    content_type: &[u8],
    body: &[u8],
) {
    let headers: [(&[u8], &[u8]); 1] = [(b"Cache-Control", b"no-store")];
    conn.respond(cx, status, content_type, &headers, body);
}

impl Application for AdminApp {
    type Conn = AdminConn;

    fn limits(&self) -> Limits {
        limits(&self.config)
    }

    fn conn_stats(&self) -> &ConnStats {
        &self.stats.admin.conns
    }

    fn name(&self) -> &str {
        "admin"
    }

    fn on_head(
        &mut self,
        cx: &mut Cx,
        conn: &mut Connection<AdminConn>,
        head: &RequestHead,
        input: &[u8],
    ) -> HeadVerdict {
        guard::check(self, cx, conn, head, input)
    }

    fn on_request(
        &mut self,
        cx: &mut Cx,
        key: usize,
        conn: &mut Connection<AdminConn>,
        request: &Request<'_>,
    ) {
        routes::route(self, cx, key, conn, request);
    }

    fn deadline(&self, _conn: &Connection<AdminConn>) -> Option<u64> {
        // Storage answers every request it holds: the connection waits for it.
        None
    }

    fn on_timer(&mut self, _cx: &mut Cx, _key: usize, _conn: &mut Connection<AdminConn>) {}

    fn on_close(&mut self, _key: usize, _conn: &mut Connection<AdminConn>) {
        // An answer still waiting for storage is dropped when its turn comes (the
        // event is stored all the same).
    }

    fn before_poll(&mut self, conns: &mut Conns<AdminConn>) {
        acks::end_turn(self, conns);
    }

    fn next_deadline(&self) -> Option<u64> {
        Some(self.acks.journal.next_deadline_ms())
    }

    fn on_wake(&mut self, conns: &mut Conns<AdminConn>) -> Flow {
        while let Ok(message) = self.inbox.try_recv() {
            match message {
                AdminMessage::Publish(publish) => browser::publish(self, publish),
                AdminMessage::Redis(done) => shared::on_done(self, conns, done),
                AdminMessage::Probe(reply) => {
                    let _ = reply.send(());
                }
                AdminMessage::Shutdown => return Flow::Exit,
            }
        }
        acks::take_journal_reports(self, conns);
        Flow::Continue
    }

    fn on_exit(&mut self) {
        acks::stop_journal(self);
    }
}

#[cfg(test)]
mod tests;
