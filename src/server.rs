//! Starting and stopping the server: binds the subscriber listeners (one per loop,
//! SO_REUSEPORT) and the admin listener, raises the descriptor limit, starts a thread
//! per loop and the admin thread, and stops them all on request.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::Sender;
use log::{info, warn};
use mio::{Poll, Waker};

use crate::admin::{self, Admin, AdminMessage, Store};
use crate::admission::Admission;
use crate::bus::{loop_channel, Bus, LoopMessage};
use crate::channel::ChannelIndex;
use crate::config::{Config, ConfigError};
use crate::net;
use crate::stats::Stats;
use crate::storage::journal::Journal;
use crate::storage::syncer::Syncer;
use crate::storage::{
    self, DiskLog, DiskOptions, DiskReader, FsyncPolicy, MemoryStorage, Recovered, Storage,
    StorageError,
};
use crate::worker::{self, Worker};

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

/// Runs a thread's body; a panic there is a bug that has left its connections and
/// state unknowable, so the process exits (for its supervisor to restart it) rather
/// than go on with a dead loop that the kernel still sends connections to.
fn exit_if_panics(name: &str, body: impl FnOnce()) {
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)).is_err() {
        log::error!("halley: {name} panicked; exiting");
        std::process::exit(70);
    }
}

/// A running server.
pub struct Server {
    subscriber_addr: SocketAddr,
    admin_addr: SocketAddr,
    bus: Bus,
    admin_sender: Sender<AdminMessage>,
    admin_waker: Arc<Waker>,
    threads: Vec<JoinHandle<()>>,
    stats: Arc<Stats>,
}

impl Server {
    /// Binds every socket and starts every thread.
    pub fn start(config: Config) -> Result<Server, StartError> {
        config.validate().map_err(StartError::Config)?;
        let fd_limit = net::raise_fd_limit().unwrap_or(1024) as usize;
        let held_back = DESCRIPTORS_HELD_BACK
            + config.admin_max_conns
            + 4 * config.threads
            + if config.data_dir.is_some() {
                OPEN_SEGMENTS + 8
            } else {
                0
            };
        let allowed = fd_limit.saturating_sub(held_back).max(1);
        let max_conns = match config.max_conns {
            Some(asked) if asked > allowed => {
                warn!("--max-conns {asked} is more than the descriptor limit {fd_limit} allows with the admin port's share; using {allowed}");
                allowed
            }
            Some(asked) => asked,
            None => allowed,
        };
        let admission = Arc::new(Admission::new(max_conns));
        let config = Arc::new(config);
        let stats = Arc::new(Stats::new(config.threads));
        // Storage first: a directory that cannot be trusted stops the start before
        // any port is bound.
        let disk = match &config.data_dir {
            Some(dir) => {
                let options = DiskOptions {
                    segment_bytes: config.segment_size,
                    retention: config.retain.clone(),
                    max_open_files: OPEN_SEGMENTS,
                    checkpoint_bytes: storage::wal::CHECKPOINT_BYTES,
                    sync_checkpoints: config.fsync != FsyncPolicy::Never,
                    // With `batch` the log is synced once a second: zero-filling a
                    // file per checkpoint would cost more than it saves.
                    prepare_log_files: config.fsync == FsyncPolicy::Always,
                    gather_records: (config.history / 2).clamp(1, storage::disk::GATHER_RECORDS),
                };
                let mut log =
                    DiskLog::open(dir, options, stats.clone()).map_err(StartError::Storage)?;
                let recovered = log.recover(config.history).map_err(StartError::Storage)?;
                info!(
                    "storage: {} recovered {} channels",
                    dir.display(),
                    recovered.len()
                );
                Some((log, recovered))
            }
            None => None,
        };
        let recovered: &[Recovered] = disk.as_ref().map_or(&[], |(_, r)| r);

        let bind = |addr: SocketAddr, reuse_port: bool, defer_accept: Duration| {
            net::bind_listener(addr, reuse_port, defer_accept)
                .map_err(|error| StartError::Bind { addr, error })
        };
        let first = bind(config.listen, true, config.defer_accept)?;
        let subscriber_addr = first.local_addr()?;
        let mut listeners = vec![first];
        for _ in 1..config.threads {
            listeners.push(bind(subscriber_addr, true, config.defer_accept)?);
        }
        let admin_listener = bind(config.admin_listen, false, Duration::ZERO)?;
        let admin_addr = admin_listener.local_addr()?;

        let mut workers = Vec::new();
        let mut senders = Vec::new();
        for (number, listener) in listeners.into_iter().enumerate() {
            let poll = Poll::new()?;
            let waker = Arc::new(Waker::new(poll.registry(), worker::WAKER)?);
            let (sender, inbox) = loop_channel(waker);
            senders.push(sender);
            let index = match &disk {
                Some(_) => ChannelIndex::backed(
                    config.history,
                    recovered
                        .iter()
                        .map(|channel| (channel.name.clone(), channel.history(config.history))),
                ),
                None => ChannelIndex::new(config.history),
            };
            workers.push(Worker::new(
                number,
                poll,
                listener,
                inbox,
                index,
                config.clone(),
                stats.clone(),
                admission.clone(),
            )?);
        }
        let bus = Bus::new(senders);

        let admin_poll = Poll::new()?;
        let admin_waker = Arc::new(Waker::new(admin_poll.registry(), admin::WAKER)?);
        let (admin_sender, admin_inbox) = crossbeam_channel::unbounded();
        let mut threads = Vec::new();
        let storing = match disk {
            Some((log, recovered)) => {
                let loops = bus.senders();
                let reply = move |number: usize, fetched| {
                    if let Some(sender) = loops.get(number) {
                        sender.send(LoopMessage::Fetched(fetched));
                    }
                };
                let (catchup, thread) = storage::catchup::spawn(
                    Box::new(DiskReader::new(log.root(), stats.clone())),
                    reply,
                    stats.clone(),
                )?;
                threads.push(thread);
                for worker in &mut workers {
                    worker.set_catchup(catchup.clone());
                }
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
                (Store::recovered(config.history, &recovered), journal)
            }
            None => {
                let memory = Box::new(MemoryStorage::new(config.history));
                let journal = Journal::in_memory(memory, stats.clone());
                (Store::new(config.history), journal)
            }
        };
        let admin = Admin::new(
            admin_poll,
            admin_listener,
            admin_inbox,
            config.clone(),
            stats.clone(),
            bus.clone(),
            admission.clone(),
            storing,
        )?;

        for (number, worker) in workers.into_iter().enumerate() {
            threads.push(
                std::thread::Builder::new()
                    .name(format!("halley-loop-{number}"))
                    .spawn(move || exit_if_panics(&format!("loop {number}"), || worker.run()))?,
            );
        }
        threads.push(
            std::thread::Builder::new()
                .name("halley-admin".into())
                .spawn(move || exit_if_panics("admin", || admin.run()))?,
        );
        info!(
            "halley: subscribers on {subscriber_addr} ({} loops, at most {max_conns} connections, descriptor limit {fd_limit}), admin on {admin_addr}",
            config.threads
        );
        Ok(Server {
            subscriber_addr,
            admin_addr,
            bus,
            admin_sender,
            admin_waker,
            threads,
            stats,
        })
    }

    /// Where subscribers connect.
    pub fn subscriber_addr(&self) -> SocketAddr {
        self.subscriber_addr
    }

    /// Where publishers connect.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    /// The server's counters.
    pub fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }

    /// Ends streams and held polls cleanly, stops every thread and waits for them.
    pub fn shutdown(self) {
        self.bus.shutdown();
        let _ = self.admin_sender.send(AdminMessage::Shutdown);
        let _ = self.admin_waker.wake();
        for thread in self.threads {
            let _ = thread.join();
        }
        info!("halley: stopped");
    }
}
