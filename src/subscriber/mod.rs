//! The subscriber port's application, one per event loop: what a request on the
//! subscriber port becomes, and how each published event reaches the connections
//! waiting for it. The engine (`engine/`) reads requests and calls it; it shares
//! nothing with other threads but its inbox (`bus.rs`) and its counters.
//!
//! Its files, in the order data flows:
//!
//! - `routes.rs`: a request arrives: methods, CORS, the pages, `/sub/...`.
//! - `authorize.rs`: with `--token-key-file`, whether its token lets it subscribe.
//! - `start.rs`: a subscription starts: its cursors, `204`, and which answer it gets;
//!   its place in the loop's channel index.
//! - `poll.rs`: `poll` and `longpoll` answers, at once or when held.
//! - `fetch.rs`: events older than the loop's memory, asked of the catch-up thread.
//! - `stream.rs`: streams (XHR, iframe, SSE): catch-up, frames, heartbeats, the end.
//! - `websocket.rs`: WebSocket subscriptions: the handshake, the client's frames, the
//!   server's closes (frames out are the stream's).
//! - `publish.rs`: browsers publish (`POST /pub/...`, WebSocket messages), handed to
//!   the admin thread and answered in order when it answers.
//! - `delivery.rs`: a published event reaches this loop and every connection waiting
//!   on its channel.

mod authorize;
mod delivery;
mod fetch;
mod poll;
mod publish;
mod routes;
mod start;
mod stream;
mod websocket;

pub use poll::etag_matches;

use std::sync::Arc;

use crossbeam_channel::Sender;

use crate::admin_inbox::AdminSender;
use crate::bus::{LoopInbox, LoopMessage};
use crate::channel::ChannelIndex;
use crate::config::Config;
use crate::engine::{
    Application, Connection, Conns, Cx, Flow, HeadVerdict, Limits, OnExhaustion, Phase, Request,
};
use crate::http::RequestHead;
use crate::stats::{bump, ConnStats, LoopStats, Stats};
use crate::storage::catchup::FetchRequest;
use crate::subscription::Subscription;
use crate::websocket::close;

/// The answer to a connection over `--max-conns` or past the descriptor limit.
pub const REFUSAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Type: text/plain\r\nContent-Length: 31\r\nConnection: close\r\nAccess-Control-Allow-Origin: *\r\n\r\nthe server is full, retry soon\n";

/// Who may read an answer cross-origin, decided per request. Four bytes: a held
/// subscriber keeps it, and an allowed origin is named by its place in
/// `--allow-origin`'s list, not copied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Cors {
    /// No CORS headers.
    #[default]
    Nothing,
    /// `Access-Control-Allow-Origin: *`.
    Any,
    /// The origin at this place of `--allow-origin`'s list is allowed (it is echoed,
    /// with `Vary: Origin`).
    Echo(u16),
    /// Origins are checked but this one is not allowed: `Vary: Origin` only.
    Denied,
}

/// `held_until_ms` of a connection that holds no poll.
const NOT_HELD: u64 = u64::MAX;

/// What a subscriber connection holds besides its HTTP state (32 bytes: every held
/// subscriber has one).
#[derive(Debug)]
pub struct SubscriberConn {
    /// CORS for the current answer.
    cors: Cors,
    /// The subscription being served: a held poll, a stream, a WebSocket's.
    sub: Option<Box<Subscription>>,
    /// While a poll is held (`Phase::Answering`): when it is answered empty (ms);
    /// while a WebSocket waits for the echo of its close: when it stops waiting;
    /// `NOT_HELD` otherwise.
    held_until_ms: u64,
    /// What the client sends back, once it does.
    inbound: Option<Box<Inbound>>,
}

impl Default for SubscriberConn {
    fn default() -> SubscriberConn {
        SubscriberConn {
            cors: Cors::Nothing,
            sub: None,
            held_until_ms: NOT_HELD,
            inbound: None,
        }
    }
}

/// What a connection that talks back keeps: the WebSocket messages it is reading, and
/// its publishes waiting for their answers. Made at its first message or publish, so
/// an idle subscriber holds none.
#[derive(Debug, Default)]
pub struct Inbound {
    reader: crate::websocket::read::Reader,
    publishing: publish::Queue,
    /// Channels a token lets it publish to (the `publish` claim): the WebSocket
    /// handshake's, or the current `POST`'s.
    token_publish: crate::channel::ChannelPatterns,
}

impl SubscriberConn {
    /// When the held poll is answered empty, if one is held.
    fn held_until(&self) -> Option<u64> {
        (self.held_until_ms != NOT_HELD).then_some(self.held_until_ms)
    }
}

/// One loop's subscriber application.
pub struct SubscriberApp {
    /// This loop's number, for logs and counters.
    number: usize,
    /// `loop N`, for logs.
    name: String,
    config: Arc<Config>,
    stats: Arc<Stats>,
    /// This loop's channels: history replicas and who waits on each.
    index: ChannelIndex,
    /// Events and requests from other threads.
    inbox: LoopInbox,
    /// Where to ask for events older than the index's histories (durable storage only).
    catchup: Option<Sender<FetchRequest>>,
    /// Serial of the last fetch asked for.
    fetch_serial: u64,
    /// Frames a stream catches up on, gathered to be written with one `writev`;
    /// cleared before use.
    batch: Vec<u8>,
    /// Scratch list of keys: of connections (delivery), of channels (a subscription
    /// starting).
    keys: Vec<usize>,
    /// A poll answer's ETag and the opening of its body, reused from answer to answer.
    etag: Vec<u8>,
    body_open: Vec<u8>,
    /// Messages taken from the inbox, reused from turn to turn.
    messages: Vec<LoopMessage>,
    /// Where browser publishes go (none in tests that build an application alone:
    /// they are answered `unavailable`).
    admin: Option<AdminSender>,
    /// Browser publishes were queued to the admin thread this turn: wake it.
    admin_unwoken: bool,
    /// The last serial given to a connection that publishes.
    serial: u64,
}

impl SubscriberApp {
    /// Loop `number`'s application, serving the channels of `index` and taking
    /// events from `inbox`.
    pub fn new(
        number: usize,
        inbox: LoopInbox,
        index: ChannelIndex,
        config: Arc<Config>,
        stats: Arc<Stats>,
    ) -> SubscriberApp {
        SubscriberApp {
            number,
            name: format!("loop {number}"),
            config,
            stats,
            index,
            inbox,
            catchup: None,
            fetch_serial: 0,
            batch: Vec::new(),
            keys: Vec::new(),
            etag: Vec::new(),
            body_open: Vec::new(),
            messages: Vec::new(),
            admin: None,
            admin_unwoken: false,
            serial: 0,
        }
    }

    /// Hands browser publishes to the admin thread through `admin`.
    pub fn set_admin(&mut self, admin: AdminSender) {
        self.admin = Some(admin);
    }

    /// Sends requests for events older than the loop's histories to `catchup`.
    pub fn set_catchup(&mut self, catchup: Sender<FetchRequest>) {
        self.catchup = Some(catchup);
    }

    /// The loop's counters.
    fn loop_stats(&self) -> &LoopStats {
        &self.stats.loops[self.number]
    }
}

/// The subscriber port's limits, from the settings.
pub fn limits(config: &Config) -> Limits {
    let ms = |d: std::time::Duration| d.as_millis() as u64;
    Limits {
        max_head: config.max_head,
        // Browser publishes (`POST /pub/...`); every other body is refused with 405
        // before it is read (`routes::on_head`). A WebSocket's messages are read
        // from the same input: `max_input` makes room for them.
        max_body: config.max_message + websocket::ENVELOPE_ROOM,
        max_pending: config.max_pending,
        kept_input: 0,
        header_ms: ms(config.header_timeout),
        body_ms: ms(config.write_timeout),
        keepalive_ms: ms(config.keepalive_timeout),
        write_ms: ms(config.write_timeout),
        abandon_on_peer_close: true,
        refusal: REFUSAL,
        on_exhaustion: OnExhaustion::Refuse,
    }
}

type Conn = Connection<SubscriberConn>;

impl Application for SubscriberApp {
    type Conn = SubscriberConn;

    fn limits(&self) -> Limits {
        limits(&self.config)
    }

    fn conn_stats(&self) -> &ConnStats {
        &self.loop_stats().conns
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn on_head(
        &mut self,
        cx: &mut Cx,
        conn: &mut Conn,
        head: &RequestHead,
        input: &[u8],
    ) -> HeadVerdict {
        routes::on_head(self, cx, conn, head, input)
    }

    fn on_request(&mut self, cx: &mut Cx, key: usize, conn: &mut Conn, request: &Request<'_>) {
        routes::route(self, cx, key, conn, request);
    }

    fn feed(&mut self, cx: &mut Cx, key: usize, conn: &mut Conn) -> bool {
        stream::feed(self, cx, key, conn)
    }

    fn on_input(&mut self, cx: &mut Cx, key: usize, conn: &mut Conn) -> bool {
        websocket::on_input(self, cx, key, conn)
    }

    fn deadline(&self, conn: &Conn) -> Option<u64> {
        match conn.http.phase {
            Phase::Answering => conn.app.held_until(),
            Phase::Streaming => conn.app.sub.as_ref().map(|sub| stream::deadline(self, sub)),
            Phase::WebSocket => websocket::deadline(self, conn),
            _ => None,
        }
    }

    fn on_timer(&mut self, cx: &mut Cx, key: usize, conn: &mut Conn) {
        match conn.http.phase {
            Phase::Answering if conn.app.held_until().is_some_and(|at| cx.now_ms >= at) => {
                if conn
                    .app
                    .sub
                    .as_ref()
                    .is_some_and(|sub| sub.token_expired(cx.now_ms))
                {
                    bump(&self.loop_stats().auth_subscriptions_expired);
                }
                poll::answer_longpoll(self, cx, key, conn)
            }
            Phase::Streaming => stream::on_timer(self, cx, key, conn),
            Phase::WebSocket => websocket::on_timer(self, cx, conn),
            _ => {}
        }
    }

    fn on_shutdown(&mut self, cx: &mut Cx, key: usize, conn: &mut Conn) {
        match conn.http.phase {
            Phase::Answering => poll::answer_longpoll(self, cx, key, conn),
            Phase::Streaming => stream::end(self, cx, conn),
            Phase::WebSocket => {
                let linger = websocket::Linger::ForEcho;
                websocket::end(self, cx, conn, close::GOING_AWAY, "shutting down", linger)
            }
            _ => {}
        }
    }

    fn on_close(&mut self, _key: usize, conn: &mut Conn) {
        if let Some(mut sub) = conn.app.sub.take() {
            start::end_subscription(self, &mut sub);
        }
    }

    fn before_poll(&mut self, _conns: &mut Conns<SubscriberConn>) {
        if std::mem::take(&mut self.admin_unwoken) {
            if let Some(admin) = &self.admin {
                admin.wake();
            }
        }
    }

    fn next_deadline(&self) -> Option<u64> {
        // A message queued while the loop worked: take it before sleeping (see bus.rs).
        self.inbox.has_messages().then_some(0)
    }

    fn on_wake(&mut self, conns: &mut Conns<SubscriberConn>) -> Flow {
        let mut messages = std::mem::take(&mut self.messages);
        self.inbox.drain(|message| messages.push(message));
        for message in messages.drain(..) {
            match message {
                LoopMessage::Event(event) => delivery::deliver_event(self, conns, event),
                LoopMessage::CountSubscribers { channel, reply } => {
                    let _ = reply.send(self.index.subscriber_count(&channel));
                }
                LoopMessage::Retained { channel, first_id } => {
                    self.index.set_stored_first(&channel, first_id)
                }
                LoopMessage::Fetched(fetched) => fetch::on_fetched(self, conns, fetched),
                LoopMessage::Published { to, answer } => {
                    publish::on_answer(self, conns, to, answer)
                }
                LoopMessage::Resync => delivery::resync(self, conns),
                LoopMessage::Probe(reply) => {
                    let _ = reply.send(());
                }
                LoopMessage::Shutdown => conns.begin_shutdown(self),
            }
        }
        self.messages = messages;
        Flow::Continue
    }
}

#[cfg(test)]
mod tests;
