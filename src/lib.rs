//! Halley, a Comet server: browsers subscribe to channels over long-polling, interval
//! polling, XHR streaming, forever frames, server-sent events or WebSocket; publishers
//! post to a separate admin port, and browsers publish where `--client-publish` lets
//! them. The wire protocol is `PROTOCOL.md` (beside the project), with
//! our choices where it is silent in `docs/protocol.md`; `docs/architecture.md` draws
//! what follows.
//!
//! # A tour
//!
//! Start at [`server::Server::start`]: it binds one listener per subscriber event
//! loop on the subscriber port (SO_REUSEPORT, [`net`]) and the admin listener, and
//! starts a thread for each loop and one for the admin port. Every one of those
//! threads runs the same [`engine::EventLoop`]; what differs is the application.
//!
//! - [`engine`]: the one connection engine. A connection is a stack of types:
//!   `ByteLayer` (the socket's bytes: plain, or TLS through [`tls`]), `Http1` (the
//!   protocol: a state machine over buffers, socket-free; after an upgrade its
//!   `Phase::WebSocket` hands the input's frames to the application), and the
//!   application's state. `Conns` drives connections and their timers
//!   ([`timer`]); `EventLoop` is the loop skeleton (tokens, accept, the reserve
//!   descriptor, wake-ups).
//! - [`subscriber`]: the subscriber port's application, one per loop: routes, the
//!   start of a subscription, poll and long-poll answers, fetches from storage,
//!   streams, WebSockets, browser publishes, and the delivery of published events; with [`admission`], the count and
//!   limit of subscriber connections over all loops.
//! - [`admin`]: the admin port's application: routes, `ids` (every event's id),
//!   `acks` (answers once the storage has the event), `browser` (publishes the loops
//!   hand over, through [`admin_inbox`]).
//! - [`bus`]: how the admin thread hands each event to every loop (a
//!   `crossbeam-channel` per loop plus a coalesced `mio::Waker`).
//! - [`storage`]: where events are kept: in memory or in an append-only log on disk
//!   (`--data-dir`), its journal (written by the admin thread: group commit,
//!   `--fsync`, retention), its sync thread and its catch-up thread.
//! - [`subscription`]: what `GET /sub/...` asks for, and a subscription's cursors and
//!   catch-up (`reset`, `gap`, events), shared by every transport.
//! - [`transport`]: the bytes of each transport (longpoll/poll bodies, stream lines,
//!   SSE events, forever-frame scripts); no sockets.
//! - [`channel`]: names, an [`channel::Event`] encoded once in every frame form,
//!   the bounded [`channel::History`], and each loop's index of who waits where.
//! - [`http`]: request heads and their limits, targets, response heads, chunked
//!   bodies, and the write queue of shared `Bytes` flushed with `writev`.
//! - [`websocket`]: RFC 6455 as bytes: the handshake's accept key, client frames read
//!   into messages with every limit and close code, server frames.
//! - [`auth`]: signed tokens: the key (`--token-key-file`) and what a token grants.
//! - [`tls`]: rustls on our own loops: the certificate pair and its reload, and one
//!   connection's session with no buffer held while it idles.
//! - [`stats`]: counters (the engine's `ConnStats` on both ports) and their `/stats`
//!   and `/metrics` renderings.
//! - [`redis_node`]: with `--redis`, the threads that share a server's channels with
//!   others through Redis (publisher, listener, catch-up reader).
//! - [`settings`]: the command line and `--config FILE` (TOML) resolved into the
//!   flags in force, and `--print-config`; [`service`]: running under systemd
//!   (readiness and the watchdog through [`server::Prober`], journal log lines).
//! - [`sched`] (the admin thread's short scheduler slice), [`assets`] (the client
//!   library and pages), [`config`], [`cli`], [`units`], [`json`].
//!
//! Dependencies point down, in the order `tests/layers.rs` checks: leaves (`units`,
//! `json`, `sched`, `timer`, `assets`), then `http`, `websocket`, `net`, `stats`,
//! `admission`, then `channel`, `storage`, `auth`, `tls`, `admin_inbox`, then `config`,
//! `subscription`, `bus`, then
//! `transport`, `engine`, the two applications, and `server`, `cli`, `settings` (the
//! command line and the configuration file) and `service` (systemd) on top.
//!
//! # The life of a publish
//!
//! 1. **Admin port.** `POST /pub/live` arrives on the admin thread's event loop
//!    (`engine/event_loop.rs`); `engine/http1.rs` reads the head and the body and
//!    hands the request to `admin/routes.rs`.
//! 2. **Ids and storage.** `admin/ids.rs` gives it the channel's next id, and
//!    `channel/event.rs` encodes it once in every frame form. `admin/acks.rs` hands it
//!    to `storage/journal.rs`, which appends it (to memory, or to the write-ahead log
//!    and the channel's segment: `storage/wal.rs`, `storage/disk.rs`); the `201` goes
//!    out once it is stored (at the end of the admin loop's turn with `--data-dir`).
//! 3. **Bus.** Then `admin/acks.rs` queues it to every loop's inbox (`bus.rs`); each
//!    loop with a subscriber waiting is woken once per admin turn.
//! 4. **Loop.** Each subscriber loop drains its inbox at the top of its turn
//!    (`subscriber/mod.rs`, `on_wake`) and `subscriber/delivery.rs` appends the event
//!    to the loop's replica of the channel (`channel/index.rs`, `channel/history.rs`).
//! 5. **Subscriptions.** For each connection waiting on the channel,
//!    `subscriber/delivery.rs` answers a held long-poll (`subscriber/poll.rs`) or
//!    gives a stream its frame (`subscriber/stream.rs`); the subscription's cursor
//!    moves (`subscription/state.rs`).
//! 6. **Transport.** `transport/` makes the transport's bytes: the event's shared
//!    frame and a small per-connection head (chunk size, SSE `id:`, `<script>`).
//! 7. **Socket.** `engine/http1.rs` writes them through the connection's queue
//!    (`http/write_queue.rs`) to the byte layer (`engine/byte_layer.rs`) with one
//!    `writev`; what the socket does not take waits, shared, for the next flush.

pub mod admin;
pub mod admin_inbox;
pub mod admission;
pub mod assets;
pub mod auth;
pub mod bus;
pub mod channel;
pub mod cli;
pub mod config;
pub mod engine;
pub mod http;
pub mod json;
pub mod net;
pub mod redis_node;
pub mod sched;
pub mod server;
pub mod service;
pub mod settings;
pub mod stats;
pub mod storage;
pub mod subscriber;
pub mod subscription;
pub mod timer;
pub mod tls;
pub mod transport;
pub mod units;
pub mod websocket;
