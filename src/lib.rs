//! Halley, a Comet server: browsers subscribe to channels over long-polling, interval
//! polling, XHR streaming, forever frames or server-sent events; publishers post to a
//! separate admin port. The wire protocol is `PROTOCOL.md` (beside the project), with
//! our choices where it is silent in `docs/protocol.md`.
//!
//! # A tour
//!
//! Start at [`server::Server::start`]: it binds one listener per event loop on the
//! subscriber port (SO_REUSEPORT, [`net`]), the admin listener, and starts a thread
//! for each.
//!
//! - [`worker`]: one subscriber event loop (a `mio::Poll`, a slab of connections, a
//!   [`timer`] wheel, its [`channel::ChannelIndex`]). Its files: `conn` (a
//!   connection's states), `accept`, `drive` (read, answer in order, flush, timers),
//!   `respond` (routing, CORS, heads) and `subscribe` (subscriptions and delivery).
//! - [`admin`]: the admin port's own loop; `store` gives events their ids, `storing`
//!   stores them before they are acknowledged, `routes` answers publish, close,
//!   channel info, stats, metrics, health.
//! - [`storage`]: where events are kept: the storage interface, in memory or in an
//!   append-only log on disk (`--data-dir`), with its journal (written by the admin
//!   thread: group commit, `--fsync`, retention), its sync thread and its catch-up
//!   thread (reads for old cursors).
//! - [`sched`]: the admin thread's request for a short scheduler slice.
//! - [`admission`]: the count and limit of subscriber connections, shared by the loops.
//! - [`bus`]: how the admin thread hands each event to every loop (a
//!   `crossbeam-channel` per loop plus a coalesced `mio::Waker`).
//! - [`channel`]: names, an [`channel::Event`] encoded once in every frame form,
//!   the bounded [`channel::History`], and each loop's index of who waits where.
//! - [`subscribe`]: reading `GET /sub/...` and a subscription's cursors and catch-up
//!   (`reset`, `gap`, events), shared by every transport.
//! - [`transport`]: the bytes of each transport (longpoll/poll bodies, stream lines,
//!   SSE events, forever-frame scripts); no sockets.
//! - [`http`]: request heads and their limits, targets, response heads, chunked
//!   bodies, and the write queue of shared `Bytes` flushed with `writev`.
//! - [`stats`]: per-loop counters and their `/stats` and `/metrics` renderings.
//! - [`assets`]: the client library and the pages, built into the binary.
//! - [`config`], [`cli`], [`units`], [`json`]: settings, flags, `500ms`/`64KiB`
//!   parsing, and script-safe JSON strings.

pub mod admin;
pub mod admission;
pub mod assets;
pub mod bus;
pub mod channel;
pub mod cli;
pub mod config;
pub mod engine;
pub mod http;
pub mod json;
pub mod net;
pub mod sched;
pub mod server;
pub mod stats;
pub mod storage;
pub mod subscriber;
pub mod subscription;
pub mod timer;
pub mod transport;
pub mod units;
