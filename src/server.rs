//! Starting and stopping the server: the descriptor budget, storage, the subscriber
//! listeners (one per loop, SO_REUSEPORT) and the admin listener, a thread per
//! subscriber loop and the admin thread (each an `engine::EventLoop` with its
//! application), with `--redis` the threads of `redis_node.rs`, and stopping them all
//! on request.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::Sender;
use log::{info, warn};
use mio::net::TcpListener;
use mio::{Poll, Waker};

use crate::admin::{AdminApp, ChannelIds};
use crate::admin_inbox::{admin_channel, AdminMessage, AdminSender};
use crate::admission::Admission;
use crate::auth::TokenKey;
use crate::bus::{loop_channel, Bus, LoopMessage};
use crate::channel::ChannelIndex;
use crate::config::{Config, ConfigError};
use crate::engine::{self, EventLoop, Listening};
use crate::net;
use crate::redis_node::{self, RedisNode};
use crate::stats::Stats;
use crate::storage::catchup::FetchRequest;
use crate::storage::journal::Journal;
use crate::storage::redis_store::barrier::Barriers;
use crate::storage::redis_store::RedisReader;
use crate::storage::syncer::Syncer;
use crate::storage::StorageReader;
use crate::storage::{
    self, DiskLog, DiskOptions, DiskReader, FsyncPolicy, MemoryStorage, Recovered, Storage,
    StorageError,
};
use crate::subscriber::SubscriberApp;
use crate::tls::TlsServer;

/// Descriptors kept back from `--max-conns` when it is derived from the limit: the
/// listeners, wakers and polls, each loop's reserve descriptor, the admin port's
/// connections, and log files or the like.
const DESCRIPTORS_HELD_BACK: usize = 64;
/// Log segments kept open for writing at once with `--data-dir`.
const OPEN_SEGMENTS: usize = 64;

/// Why the server could not start.
#[derive(Debug)]
pub enum StartError {
    Config(ConfigError),
    Bind { addr: SocketAddr, error: io::Error },
    Storage(StorageError),
    Io(io::Error),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Config(e) => write!(f, "{e}"),
            StartError::Bind { addr, error } => write!(f, "cannot listen on {addr}: {error}"),
            StartError::Storage(e) => write!(f, "{e}"),
            StartError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for StartError {}

impl From<io::Error> for StartError {
    fn from(error: io::Error) -> Self {
        StartError::Io(error)
    }
}

impl From<StorageError> for StartError {
    fn from(error: StorageError) -> Self {
        StartError::Storage(error)
    }
}

/// Runs a thread's body; a panic there is a bug that has left its connections and
/// state unknowable, so the process exits (for its supervisor to restart it) rather
/// than go on with a dead loop that the kernel still sends connections to.
fn exit_if_panics(name: &str, body: impl FnOnce()) {
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)).is_err() {
        log::error!("halley: {name} panicked; exiting");
        std::process::exit(70);
    }
}

/// Asks the loops of a running server whether they turn.
#[derive(Clone)]
pub struct Prober {
    bus: Bus,
    admin: AdminSender,
    /// The subscriber loops and the admin loop.
    loops: usize,
}

impl Prober {
    /// Whether every loop, the admin loop included, answers a message within
    /// `timeout`: each drains its inbox at every turn, so an answer means it is not
    /// stuck. The error says how many answered.
    pub fn all_answer(&self, timeout: Duration) -> Result<(), String> {
        let (reply, answers) = crossbeam_channel::bounded(self.loops);
        let asked = self.bus.probe(&reply)
            + usize::from(self.admin.send(AdminMessage::Probe(reply.clone())));
        let deadline = std::time::Instant::now() + timeout;
        let answered = (0..asked)
            .map_while(|_| answers.recv_deadline(deadline).ok())
            .count();
        if answered == self.loops {
            Ok(())
        } else {
            Err(format!(
                "{answered} of {} event loops answered within {timeout:?}",
                self.loops
            ))
        }
    }
}

/// A running server.
pub struct Server {
    subscriber_addr: SocketAddr,
    tls_addr: Option<SocketAddr>,
    admin_addr: SocketAddr,
    /// The certificate pairs in use (subscriber port's, admin port's), for reloads.
    tls: Vec<TlsServer>,
    bus: Bus,
    admin_sender: AdminSender,
    threads: Vec<JoinHandle<()>>,
    stats: Arc<Stats>,
    /// With `--redis`: the publisher and listener threads.
    redis: Option<RedisNode>,
}

/// A subscriber loop's parts before it runs: its poll, listeners and application.
type LoopParts = (Poll, Vec<Listening>, SubscriberApp);

/// The listening sockets, bound: the subscriber port's (one per loop), its TLS twin's
/// (one per loop, or none), and the admin port's.
struct Bound {
    subscribers: Vec<TcpListener>,
    tls: Vec<TcpListener>,
    admin: TcpListener,
}

impl Server {
    /// Binds every socket and starts every thread: the descriptor budget first, then
    /// storage (a directory that cannot be trusted stops the start before any port is
    /// bound), the listeners, the subscriber loops and the bus to them, the storage's
    /// threads, and the admin thread.
    pub fn start(mut config: Config) -> Result<Server, StartError> {
        config.validate().map_err(StartError::Config)?;
        if let Some(path) = &config.token_key_file {
            let key = TokenKey::load(path).map_err(|e| StartError::Config(ConfigError(e.0)))?;
            info!(
                "halley: subscriptions need tokens signed with {:?}",
                key.algorithm()
            );
            config.token_key = Some(Arc::new(key));
        }
        if let Some(path) = &config.admin_token_file {
            let read = std::fs::read(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))
                .and_then(|content| crate::admin::guard::token_of_file(&content))
                .map_err(|e| StartError::Config(ConfigError(format!("--admin-token-file: {e}"))))?;
            config.admin_token = Some(crate::auth::Secret::new(read));
        }
        let tls = load_tls(&config)?;
        let (fd_limit, max_conns) = descriptor_budget(&config);
        let subscribers = Arc::new(Admission::new(max_conns));
        let config = Arc::new(config);
        let stats = Arc::new(Stats::new(config.threads));
        let log = open_log(&config, &stats)?;
        let bound = bind_listeners(&config)?;
        let subscriber_addr = bound.subscribers[0].local_addr()?;
        let tls_addr = bound.tls.first().map(|l| l.local_addr()).transpose()?;
        let admin_addr = bound.admin.local_addr()?;
        let listeners = loop_listeners(bound.subscribers, bound.tls, &tls.subscriber);
        let admin_listener = vec![Listening {
            socket: bound.admin,
            tls: tls.admin.clone(),
        }];
        let admin_poll = Poll::new()?;
        let admin_waker = Arc::new(Waker::new(admin_poll.registry(), engine::WAKER)?);
        let (admin_sender, admin_inbox) = admin_channel(admin_waker.clone());
        let recovered = log.as_ref().map_or(&[][..], |(_, recovered)| recovered);
        let (mut loops, bus) =
            subscriber_loops(listeners, recovered, &config, &stats, &admin_sender)?;
        let mut threads = Vec::new();
        // With --redis: the catch-up reader's answers wait for the listeners.
        let barriers = Barriers::new();
        let storage = match log {
            Some((log, recovered)) => {
                let reader = Box::new(DiskReader::new(log.root(), stats.clone()));
                let (catchup, thread) = spawn_catchup(reader, &bus, &stats)?;
                threads.push(thread);
                for (_, _, app) in &mut loops {
                    app.set_catchup(catchup.clone());
                }
                durable_journal(log, &recovered, &config, &admin_waker, &stats)?
            }
            None => {
                if let Some(url) = &config.redis {
                    let reader = Box::new(RedisReader::behind(
                        url,
                        config.redis_timeout,
                        barriers.clone(),
                    ));
                    let (catchup, thread) = spawn_catchup(reader, &bus, &stats)?;
                    threads.push(thread);
                    for (_, _, app) in &mut loops {
                        app.set_catchup(catchup.clone());
                    }
                }
                let memory = Box::new(MemoryStorage::new(config.history));
                let journal = Journal::in_memory(memory, stats.clone());
                (ChannelIds::new(config.history), journal)
            }
        };

        for (number, (poll, listener, app)) in loops.into_iter().enumerate() {
            let admission = subscribers.clone();
            let event_loop = EventLoop::new(poll, listener, app, admission.clone(), admission)?;
            threads.push(spawn(format!("halley-loop-{number}"), move || {
                event_loop.run()
            })?);
        }
        let mut admin = AdminApp::new(
            admin_inbox,
            config.clone(),
            stats.clone(),
            bus.clone(),
            storage,
        );
        let redis = match &config.redis {
            Some(url) => {
                let (node, jobs) = redis_node::start(
                    url,
                    &config,
                    bus.clone(),
                    admin_sender.clone(),
                    stats.clone(),
                    barriers,
                )?;
                admin.share_through(jobs);
                info!("halley: channels shared through {url}");
                Some(node)
            }
            None => None,
        };
        let admin_admission = Arc::new(Admission::new(config.admin_max_conns));
        let admin_loop = EventLoop::new(
            admin_poll,
            admin_listener,
            admin,
            admin_admission,
            subscribers,
        )?;
        threads.push(spawn("halley-admin".into(), move || run_admin(admin_loop))?);
        info!(
            "halley: subscribers on {subscriber_addr} ({} loops, at most {max_conns} connections, descriptor limit {fd_limit}), admin on {admin_addr}",
            config.threads
        );
        if let Some(addr) = tls_addr {
            info!("halley: subscribers over TLS on {addr}");
        }
        if tls.admin.is_some() {
            info!("halley: the admin port speaks TLS");
        }
        Ok(Server {
            subscriber_addr,
            tls_addr,
            admin_addr,
            tls: tls.subscriber.into_iter().chain(tls.admin).collect(),
            bus,
            admin_sender,
            threads,
            stats,
            redis,
        })
    }

    /// Where subscribers connect.
    pub fn subscriber_addr(&self) -> SocketAddr {
        self.subscriber_addr
    }

    /// Where subscribers connect over TLS, with `--tls-listen`.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls_addr
    }

    /// Where publishers connect.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    /// Reads every certificate pair again from its files (SIGHUP): new handshakes use
    /// the new pairs, connections already open go on. A pair that fails to load is
    /// logged and the one in use kept. Returns whether all loaded.
    pub fn reload_tls(&self) -> bool {
        let mut all = true;
        for tls in &self.tls {
            match tls.reload() {
                Ok(()) => info!("halley: reloaded {}", tls.cert_path().display()),
                Err(e) => {
                    log::error!("halley: TLS pair not reloaded, the old one stays: {e}");
                    all = false;
                }
            }
        }
        all
    }

    /// The server's counters.
    pub fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }

    /// Something that asks every loop, the admin port's too, whether it still turns
    /// (`Prober::all_answer`); the systemd watchdog's question.
    pub fn prober(&self) -> Prober {
        Prober {
            bus: self.bus.clone(),
            admin: self.admin_sender.clone(),
            loops: self.stats.loops.len() + 1,
        }
    }

    /// Ends streams and held polls cleanly, stops every thread and waits for them.
    pub fn shutdown(self) {
        self.bus.shutdown();
        self.admin_sender.send(AdminMessage::Shutdown);
        for thread in self.threads {
            let _ = thread.join();
        }
        if let Some(redis) = self.redis {
            redis.stop();
        }
        info!("halley: stopped");
    }
}

/// Raises the descriptor limit and decides `--max-conns` within it: the limit less
/// what the admin port, the loops and storage hold back. Returns the limit and the
/// connections allowed.
fn descriptor_budget(config: &Config) -> (usize, usize) {
    let fd_limit = net::raise_fd_limit().unwrap_or(1024) as usize;
    let storage = if config.data_dir.is_some() {
        OPEN_SEGMENTS + 8
    } else {
        0
    };
    let held_back = DESCRIPTORS_HELD_BACK + config.admin_max_conns + 4 * config.threads + storage;
    let allowed = fd_limit.saturating_sub(held_back).max(1);
    let max_conns = match config.max_conns {
        Some(asked) if asked > allowed => {
            warn!("--max-conns {asked} is more than the descriptor limit {fd_limit} allows with the admin port's share; using {allowed}");
            allowed
        }
        Some(asked) => asked,
        None => allowed,
    };
    (fd_limit, max_conns)
}

/// With `--data-dir`: opens the log and recovers its channels.
fn open_log(
    config: &Config,
    stats: &Arc<Stats>,
) -> Result<Option<(DiskLog, Vec<Recovered>)>, StartError> {
    let Some(dir) = &config.data_dir else {
        return Ok(None);
    };
    let options = DiskOptions {
        segment_bytes: config.segment_size,
        retention: config.retain.clone(),
        max_open_files: OPEN_SEGMENTS,
        checkpoint_bytes: storage::wal::CHECKPOINT_BYTES,
        sync_checkpoints: config.fsync != FsyncPolicy::Never,
        // With `batch` the log is synced once a second: zero-filling a file per
        // checkpoint would cost more than it saves.
        prepare_log_files: config.fsync == FsyncPolicy::Always,
        gather_records: (config.history / 2).clamp(1, storage::disk::GATHER_RECORDS),
    };
    let mut log = DiskLog::open(dir, options, stats.clone())?;
    let recovered = log.recover(config.history)?;
    info!(
        "storage: {} recovered {} channels",
        dir.display(),
        recovered.len()
    );
    Ok(Some((log, recovered)))
}

/// The TLS of each port, if it has one.
struct PortsTls {
    subscriber: Option<TlsServer>,
    admin: Option<TlsServer>,
}

/// Reads the certificate pairs the flags name; one that does not load stops the start.
fn load_tls(config: &Config) -> Result<PortsTls, StartError> {
    let load =
        |cert: &Option<std::path::PathBuf>, key: &Option<std::path::PathBuf>, flag: &str| match (
            cert, key,
        ) {
            (Some(cert), Some(key)) => TlsServer::load(cert, key)
                .map(Some)
                .map_err(|e| StartError::Config(ConfigError(format!("{flag}: {e}")))),
            _ => Ok(None),
        };
    Ok(PortsTls {
        subscriber: load(&config.tls_cert, &config.tls_key, "--tls-cert/--tls-key")?,
        admin: load(
            &config.admin_tls_cert,
            &config.admin_tls_key,
            "--admin-tls-cert/--admin-tls-key",
        )?,
    })
}

/// Binds a listener per subscriber loop on one address (SO_REUSEPORT: the kernel
/// spreads connections over them), as many on the TLS address if there is one, and
/// the admin listener.
fn bind_listeners(config: &Config) -> Result<Bound, StartError> {
    let bind = |addr: SocketAddr, reuse_port: bool, defer_accept: Duration| {
        net::bind_listener(addr, reuse_port, defer_accept)
            .map_err(|error| StartError::Bind { addr, error })
    };
    let per_loop = |addr: SocketAddr| -> Result<Vec<TcpListener>, StartError> {
        let first = bind(addr, true, config.defer_accept)?;
        let addr = first.local_addr()?;
        let mut listeners = vec![first];
        for _ in 1..config.threads {
            listeners.push(bind(addr, true, config.defer_accept)?);
        }
        Ok(listeners)
    };
    let subscribers = per_loop(config.listen)?;
    let tls = match config.tls_listen {
        Some(addr) => per_loop(addr)?,
        None => Vec::new(),
    };
    let admin = bind(config.admin_listen, false, Duration::ZERO)?;
    Ok(Bound {
        subscribers,
        tls,
        admin,
    })
}

/// Each loop's listeners: its plain one, and its TLS one if there is one.
fn loop_listeners(
    plain: Vec<TcpListener>,
    tls: Vec<TcpListener>,
    tls_server: &Option<TlsServer>,
) -> Vec<Vec<Listening>> {
    let mut tls = tls.into_iter();
    plain
        .into_iter()
        .map(|socket| {
            let mut listening = vec![Listening::plain(socket)];
            if let (Some(socket), Some(server)) = (tls.next(), tls_server) {
                listening.push(Listening {
                    socket,
                    tls: Some(server.clone()),
                });
            }
            listening
        })
        .collect()
}

/// A subscriber application per listener, each with its poll and the inbox the bus
/// feeds, its channel index starting from what storage recovered.
fn subscriber_loops(
    listeners: Vec<Vec<Listening>>,
    recovered: &[Recovered],
    config: &Arc<Config>,
    stats: &Arc<Stats>,
    admin: &AdminSender,
) -> Result<(Vec<LoopParts>, Bus), StartError> {
    let mut loops = Vec::new();
    let mut senders = Vec::new();
    for (number, listener) in listeners.into_iter().enumerate() {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), engine::WAKER)?);
        let (sender, inbox) = loop_channel(waker);
        senders.push(sender);
        let index = match config.data_dir {
            None if config.redis.is_some() => ChannelIndex::shared(config.history),
            Some(_) => ChannelIndex::backed(
                config.history,
                recovered
                    .iter()
                    .map(|channel| (channel.name.clone(), channel.history(config.history))),
            ),
            None => ChannelIndex::new(config.history),
        };
        let mut app = SubscriberApp::new(number, inbox, index, config.clone(), stats.clone());
        app.set_admin(admin.clone());
        loops.push((poll, listener, app));
    }
    Ok((loops, Bus::new(senders)))
}

/// Starts the catch-up thread over `reader` (the log's, or Redis's); its answers go
/// back through the bus.
fn spawn_catchup(
    reader: Box<dyn StorageReader>,
    bus: &Bus,
    stats: &Arc<Stats>,
) -> io::Result<(Sender<FetchRequest>, JoinHandle<()>)> {
    let loops = bus.senders();
    let reply = move |number: usize, fetched| {
        if let Some(sender) = loops.get(number) {
            sender.send(LoopMessage::Fetched(fetched));
        }
    };
    storage::catchup::spawn(reader, reply, stats.clone())
}

/// The admin thread's ids and journal over the recovered log, with a sync thread
/// unless `--fsync never`.
fn durable_journal(
    log: DiskLog,
    recovered: &[Recovered],
    config: &Config,
    admin_waker: &Arc<Waker>,
    stats: &Arc<Stats>,
) -> io::Result<(ChannelIds, Journal)> {
    let syncer = match config.fsync {
        FsyncPolicy::Never => None,
        _ => Some(Syncer::spawn(admin_waker.clone(), stats.clone())?),
    };
    let journal = Journal::new(
        Box::new(log),
        config.fsync,
        config.fsync_interval,
        syncer,
        stats.clone(),
    );
    Ok((ChannelIds::recovered(config.history, recovered), journal))
}

/// The admin thread's body: its loop, on the shortest scheduler slice the kernel
/// gives, so that a publish arriving while the subscriber loops are busy runs at once
/// instead of waiting for their slices to end.
fn run_admin(admin_loop: EventLoop<AdminApp>) {
    if let Err(e) = crate::sched::request_slice(crate::sched::SHORTEST_SLICE) {
        log::debug!("admin: no short scheduler slice: {e}");
    }
    admin_loop.run()
}

/// Starts a named thread that exits the process if its body panics.
fn spawn(name: String, body: impl FnOnce() + Send + 'static) -> io::Result<JoinHandle<()>> {
    let label = name.clone();
    std::thread::Builder::new()
        .name(name)
        .spawn(move || exit_if_panics(&label, body))
}
