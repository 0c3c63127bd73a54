//! Where channels' events are kept: the storage interface, and its two
//! implementations, in memory (`memory.rs`, the default) and an append-only log on disk
//! (`disk.rs`, with `--data-dir`).
//!
//! The interface is [`Storage`] (append, close, sync, recover, bounds, retention; used by
//! one writer thread) and [`StorageReader`] (read events after an id; used by the
//! catch-up thread). The event loops never call either: they serve from their in-memory
//! replica (`channel::History`) and, for a cursor older than it but newer than what the
//! storage retains, send a request to the catch-up thread (`catchup.rs`), which answers
//! with events and gaps through the loop's inbox. Which storage answered is invisible to
//! them.
//!
//! - `record.rs`: the bytes of a segment (blocks, fragments, checksums).
//! - `layout.rs`: the directory, its format header, channel and segment file names.
//! - `segment.rs`: one segment file, written and scanned.
//! - `disk.rs`: the writer of the log; `recovery.rs`: reading its channels back at
//!   start; `reader.rs`: its reader.
//! - `retention.rs`: `--retain` (count, bytes, age).
//! - `journal.rs`: the admin thread's writer, with group commit and `--fsync`;
//!   `syncer.rs`: the thread that runs its syncs.
//! - `wal.rs`: the write-ahead log, one file for every channel, written once a turn.
//! - `catchup.rs`: the reader thread.
//! - `redis_store/`: Redis as the storage several servers share (`--redis`, issue 18):
//!   its scripts, announcements and blocking client, not yet wired in.

pub mod catchup;
pub mod disk;
pub mod journal;
pub mod layout;
pub mod memory;
pub mod reader;
pub mod record;
mod recovery;
pub mod redis_store;
pub mod retention;
pub mod segment;
pub mod syncer;
pub mod wal;

use std::fmt;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::channel::{Event, History};

pub use disk::{DiskLog, DiskOptions};
pub use memory::MemoryStorage;
pub use reader::DiskReader;
pub use retention::Retention;

/// When a publish is acknowledged, against the disk (`--fsync`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// After the event is on disk: one `fdatasync` of the write-ahead log, shared by
    /// every publish of a turn of the admin loop (group commit).
    Always,
    /// After the event is written to the kernel; the write-ahead log is synced every
    /// `--fsync-interval`.
    Batch,
    /// After the event is written to the kernel; the kernel decides when it reaches disk.
    Never,
}

impl FsyncPolicy {
    /// Parses `always`, `batch` or `never`.
    pub fn parse(text: &str) -> Result<FsyncPolicy, String> {
        match text {
            "always" => Ok(FsyncPolicy::Always),
            "batch" => Ok(FsyncPolicy::Batch),
            "never" => Ok(FsyncPolicy::Never),
            _ => Err(format!("{text:?}: expected always, batch or never")),
        }
    }
}

/// An event to store, as the admin thread hands it over. The body is borrowed (from
/// the request it came in): the storage copies what it keeps.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    /// The event as the loops will share it (channel, id, frames).
    pub event: Arc<Event>,
    /// The published body (empty for a close marker).
    pub data: &'a [u8],
    /// Wall-clock milliseconds of the publish.
    pub at_ms: u64,
}

impl Entry<'_> {
    /// An entry for `event`, published with `data` now.
    pub fn new(event: Arc<Event>, data: &[u8]) -> Entry<'_> {
        Entry {
            event,
            data,
            at_ms: wall_ms(),
        }
    }
}

/// Milliseconds since the Unix epoch.
pub fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// What a storage holds of one channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// Oldest id retained (`last_id + 1` when none is).
    pub first_id: u64,
    /// Newest id, the close marker included (0 when none).
    pub last_id: u64,
    /// The close marker's id, once closed.
    pub closed_id: Option<u64>,
}

/// One channel found by `recover`.
#[derive(Debug)]
pub struct Recovered {
    pub name: Arc<str>,
    pub bounds: Bounds,
    /// Its newest events, oldest first, at most as many as asked.
    pub tail: Vec<Arc<Event>>,
}

impl Recovered {
    /// A loop's in-memory window on this channel: its tail, in front of what the
    /// storage holds from `first_id` on.
    pub fn history(&self, capacity: usize) -> History {
        History::recovered(
            capacity,
            &self.tail,
            self.bounds.last_id,
            self.bounds.closed_id,
            self.bounds.first_id,
        )
    }
}

/// What a read yields, in id order.
#[derive(Debug, Clone)]
pub enum Stored {
    Event(Arc<Event>),
    /// Events `from..=to` cannot be served: retention removed them, or (reported in the
    /// log and `/stats`) they were in a damaged block.
    Gap {
        from: u64,
        to: u64,
    },
}

/// What to sync to make a storage's appended events durable (`Storage::take_sync_plan`).
/// It holds the descriptors it needs, so it stays valid while the writer goes on.
#[derive(Debug)]
pub enum SyncPlan {
    /// Nothing was written since the last plan.
    Nothing,
    /// `fdatasync` of one file: the write-ahead log, written last.
    File { file: Arc<File>, path: PathBuf },
    /// A checkpoint of the files written since the last one: prepares the next
    /// write-ahead log file if asked (`wal.rs`), then syncs each file (`fdatasync`)
    /// and each directory that gained an entry (`fsync`). Only our own data is
    /// flushed: `syncfs` would also write out whatever else is pending on the file
    /// system, on this thread's time, and that of any other program that shares it.
    Files {
        files: Vec<PathBuf>,
        dirs: Vec<PathBuf>,
        prepare: Option<wal::Preparation>,
    },
    /// A checkpoint of more files than `Files` syncs one by one
    /// (`disk::SYNC_FILES_MAX`): prepares the next write-ahead log file if asked,
    /// then one `syncfs` of the file system that holds `dir`, which costs about one
    /// journal commit where a sync per file costs one each.
    FileSystem {
        dir: Arc<File>,
        path: PathBuf,
        prepare: Option<wal::Preparation>,
    },
}

impl SyncPlan {
    /// Runs the plan; returns how many syncs it made.
    pub fn run(&self) -> Result<usize, StorageError> {
        match self {
            SyncPlan::Files {
                files,
                dirs,
                prepare,
            } => {
                if let Some(preparation) = prepare {
                    preparation.run()?;
                }
                let mut syncs = 0;
                for (path, is_dir) in files
                    .iter()
                    .map(|f| (f, false))
                    .chain(dirs.iter().map(|d| (d, true)))
                {
                    // A file gone since (retention deleted it) has nothing to keep.
                    let file = match std::fs::File::open(path) {
                        Ok(file) => file,
                        Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                        Err(e) => return Err(StorageError::io(path, e)),
                    };
                    let synced = if is_dir {
                        file.sync_all()
                    } else {
                        file.sync_data()
                    };
                    synced.map_err(|e| StorageError::io(path, e))?;
                    syncs += 1;
                }
                Ok(syncs)
            }
            SyncPlan::Nothing => Ok(0),
            SyncPlan::File { file, path } => file
                .sync_data()
                .map(|()| 1)
                .map_err(|e| StorageError::io(path, e)),
            SyncPlan::FileSystem { dir, path, prepare } => {
                if let Some(preparation) = prepare {
                    preparation.run()?;
                }
                layout::sync_file_system(dir)
                    .map(|()| 1)
                    .map_err(|e| StorageError::io(path, e))
            }
        }
    }
}

/// Why storage failed. Cloned to every answer refused after a failure.
#[derive(Debug, Clone)]
pub enum StorageError {
    /// An operating-system error on a path.
    Io { path: String, error: Arc<io::Error> },
    /// The data directory cannot be trusted (another format, a bad header, not ours);
    /// nothing was changed.
    Untrusted(String),
}

impl StorageError {
    pub fn io(path: &Path, error: io::Error) -> StorageError {
        StorageError::Io {
            path: path.display().to_string(),
            error: Arc::new(error),
        }
    }
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StorageError::Io { path, error } => write!(f, "{path}: {error}"),
            StorageError::Untrusted(why) => {
                write!(
                    f,
                    "refusing to use the data directory {why}; nothing was changed"
                )
            }
        }
    }
}

impl std::error::Error for StorageError {}

/// The writer's side of a storage, used by the admin thread (`journal.rs`). Ids are
/// given by the caller, one channel's ids in order with no hole (1, 2, 3, ...); a close
/// marker is the last event of its channel.
pub trait Storage: Send {
    /// Finds every channel kept, with its newest `keep` events. Called once, first.
    fn recover(&mut self, keep: usize) -> Result<Vec<Recovered>, StorageError>;
    /// Stores an event (a message or a close marker). It is safe from a crash of the
    /// process after `flush`, and from a crash of the machine after `sync`.
    fn append(&mut self, entry: &Entry) -> Result<(), StorageError>;
    /// Stores the close marker `id` of `channel`.
    fn close(&mut self, channel: Arc<str>, id: u64) -> Result<(), StorageError> {
        let event = Arc::new(Event::close_marker(channel, id));
        self.append(&Entry::new(event, b""))
    }
    /// Makes every event appended so far safe from a crash of the process (written to
    /// the kernel). Called at the end of every turn of the admin loop, before the
    /// turn's publishes are answered.
    fn flush(&mut self) -> Result<(), StorageError> {
        Ok(())
    }
    /// At a clean shutdown, after the last append: makes every event durable if
    /// `durable` (every `--fsync` but `never`), safe from a crash of the process in
    /// any case, and leaves nothing for the next start to replay. Returns the syncs
    /// made.
    fn shut_down(&mut self, durable: bool) -> Result<usize, StorageError> {
        if durable {
            self.sync()
        } else {
            self.flush().map(|()| 0)
        }
    }
    /// Flushes, and says what to sync to make every event appended so far durable;
    /// the storage counts it synced from now on. The plan can be run by another
    /// thread while this one appends (`syncer.rs`).
    fn take_sync_plan(&mut self) -> Result<SyncPlan, StorageError>;
    /// Makes every event appended so far durable, on this thread. Returns how many
    /// syncs it made.
    fn sync(&mut self) -> Result<usize, StorageError> {
        self.take_sync_plan()?.run()
    }
    /// A sync that acknowledgements need not wait for, but that must complete before
    /// older data can be let go (a checkpoint of the write-ahead log), if one is due.
    /// Report its completion with `checkpoint_done`; no other is made before.
    fn take_checkpoint(&mut self) -> Option<SyncPlan> {
        None
    }
    /// The plan `take_checkpoint` gave has run.
    fn checkpoint_done(&mut self) {}
    /// What is held of `channel`, if it ever had an event.
    fn bounds(&self, channel: &str) -> Option<Bounds>;
    /// Applies the retention policy at wall-clock `now_ms`; returns the channels whose
    /// first id moved, with the new one.
    fn enforce_retention(&mut self, now_ms: u64) -> Vec<(Arc<str>, u64)>;
}

/// The reader's side: used by one other thread while the writer appends.
pub trait StorageReader: Send {
    /// The events of `channel` after `cursor` up to `to` (inclusive), oldest first, until
    /// about `max_bytes` of data; a leading `Gap` for what is no longer retained. Every
    /// answer starts at `cursor + 1` (with an event or a gap) unless nothing is stored
    /// after `cursor`.
    fn read_after(&mut self, channel: &str, cursor: u64, to: u64, max_bytes: usize) -> Vec<Stored>;
    /// Prepares, while nothing is asked, what the last `read_after` left owed (the
    /// same subscriber is likely to ask for it next). Returns whether it did anything.
    fn read_ahead(&mut self) -> bool {
        false
    }
    /// Storage shared with other servers: the channel's last id and close marker now
    /// (read after `read_after`, so at least as new as what it returned). Storage of
    /// this server's own answers `None`: the loops' replicas know as much.
    fn bounds(&mut self, _channel: &str) -> Option<(u64, Option<u64>)> {
        None
    }
}
