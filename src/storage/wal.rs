//! The write-ahead log: every event, of every channel, is also appended to one file,
//! written once per turn of the admin loop, so that a turn costs one write, and group
//! commit (`--fsync always`) syncs that one file (`fdatasync`) instead of every
//! channel's segment (`syncfs`). The segments are written later, gathered
//! (`disk.rs`), and synced only at a checkpoint.
//!
//! Files are `DIR/wal/{generation}.log`, in the segments' format (`record.rs`): a
//! header record naming the generation, then one record per event whose data is the
//! channel name (a length byte, then the name) followed by the published body.
//!
//! A checkpoint writes every segment, starts generation `g + 1` and syncs the segments
//! written since the last one (or, past `disk::SYNC_FILES_MAX` files, the whole file
//! system; on the sync thread; not with `--fsync never`), which makes every segment
//! write before it durable; generation
//! `g + 2` starts only after that sync has completed, so then generation `g` holds
//! nothing that is not durable in a segment, and is deleted. At most two generations
//! hold events; recovery (`disk.rs`) writes their events back into the segments,
//! syncs, and deletes them. A clean shutdown writes every segment, syncs (but with
//! `--fsync never`) and deletes them all, so that the next start has none to replay.
//!
//! With `--fsync always`, each file is **prepared**
//! before it is written: its header, then zeros to `PREPARED_BYTES` past the
//! checkpoint size, written and synced ahead of time (the first one at recovery, each
//! next one by the checkpoint before it, on the sync thread). Events then overwrite
//! blocks that are already allocated and on disk, so the file's size and extents do
//! not change, and an `fdatasync` has only the data to write, not a journal commit of
//! the file system (here about 145 us instead of 265 us; PostgreSQL zero-fills its
//! log segments for the same reason). Recovery reads the zeros after the last record
//! as an unwritten tail. So a third file, the prepared next generation, holds no
//! events.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::record::{self, Tag};
use super::{layout, StorageError};

/// The directory of the write-ahead log under the data directory.
pub const WAL_DIR: &str = "wal";

/// A checkpoint is made each time the log passes this size: recovery replays at most
/// about twice this, and each checkpoint syncs about this much of segments.
pub const CHECKPOINT_BYTES: usize = 16 << 20;

/// A prepared file is zero-filled to this many bytes past the checkpoint size: a turn
/// that ends past the checkpoint size still writes in place.
pub const PREPARED_SLACK: usize = 4 << 20;

/// The magic at the start of a write-ahead log's header record.
const WAL_MAGIC: &[u8] = b"HALLEYWAL";

/// An event read back from the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalEvent {
    pub channel: Arc<str>,
    pub id: u64,
    pub closed: bool,
    pub at_ms: u64,
    pub data: Vec<u8>,
}

/// What recovery found in the write-ahead log.
#[derive(Debug, Default)]
pub struct WalContents {
    /// The generations found, oldest first.
    pub files: Vec<(u64, PathBuf)>,
    /// Each channel's events, in the order written.
    pub channels: HashMap<Arc<str>, Vec<WalEvent>>,
    /// Blocks damaged among good records (their events may be missing).
    pub damaged_blocks: usize,
}

/// Reads every generation under `root`, checking them all first; changes nothing.
pub fn read(root: &Path) -> Result<WalContents, StorageError> {
    let dir = root.join(WAL_DIR);
    let mut contents = WalContents::default();
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(contents),
        Err(e) => return Err(StorageError::io(&dir, e)),
    };
    let mut generations: Vec<u64> = entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str().and_then(layout::parse_segment_file))
        .collect();
    generations.sort_unstable();
    let untrusted =
        |path: &Path, why: &str| StorageError::Untrusted(format!("{}: {why}", path.display()));
    for (i, &generation) in generations.iter().enumerate() {
        let path = dir.join(layout::segment_file(generation));
        let bytes = fs::read(&path).map_err(|e| StorageError::io(&path, e))?;
        let scan = record::scan(&bytes);
        let header = scan.records.first().filter(|r| r.tag == Tag::SegmentHeader);
        match header {
            Some(header) => check_header(&header.data, header.id, generation)
                .map_err(|why| untrusted(&path, &why))?,
            // A last file whose header write never finished holds nothing acknowledged.
            None if i + 1 == generations.len() && scan.good_end == 0 => {
                contents.files.push((generation, path));
                continue;
            }
            None => return Err(untrusted(&path, "the write-ahead log header is damaged")),
        }
        contents.damaged_blocks += scan
            .damaged
            .iter()
            .filter(|&&at| at < scan.good_end)
            .count();
        for record in &scan.records[1..] {
            let event = decode(record).ok_or_else(|| {
                untrusted(&path, "a write-ahead log record names no valid channel")
            })?;
            contents
                .channels
                .entry(event.channel.clone())
                .or_default()
                .push(event);
        }
        contents.files.push((generation, path));
    }
    Ok(contents)
}

fn check_header(data: &[u8], id: u64, generation: u64) -> Result<(), String> {
    let format = data
        .strip_prefix(WAL_MAGIC)
        .and_then(|rest| rest.get(..4))
        .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
        .ok_or("not a write-ahead log header")?;
    if format != layout::FORMAT {
        return Err(format!(
            "a write-ahead log in format {format}; this Halley reads format {}",
            layout::FORMAT
        ));
    }
    if id != generation {
        return Err(format!("says it is generation {id}"));
    }
    Ok(())
}

fn decode(record: &record::Record) -> Option<WalEvent> {
    let (&len, rest) = record.data.split_first()?;
    let name = rest.get(..len as usize)?;
    let name = std::str::from_utf8(name).ok()?;
    let closed = match record.tag {
        Tag::Message => false,
        Tag::Close => true,
        Tag::SegmentHeader => return None,
    };
    Some(WalEvent {
        channel: Arc::from(name),
        id: record.id,
        closed,
        at_ms: record.at_ms,
        data: rest[len as usize..].to_vec(),
    })
}

/// The log being written.
#[derive(Debug)]
pub struct WalWriter {
    dir: PathBuf,
    generation: u64,
    file: Arc<File>,
    path: PathBuf,
    /// Bytes in the file; the next write goes here.
    end: usize,
    /// Records encoded since the last `write`, to go at `end`.
    pending: Vec<u8>,
    /// Where `pending` ends in the file.
    pending_end: usize,
    scratch: Vec<u8>,
    /// A checkpoint is due once the file reaches this size.
    limit: usize,
    /// Files are prepared (zero-filled ahead of time).
    prepare: bool,
    /// The next generation's file has been prepared and made durable.
    next_prepared: bool,
}

/// A write-ahead log file to prepare: its header and zeros, not synced (the checkpoint
/// that prepares it syncs it).
#[derive(Debug, Clone)]
pub struct Preparation {
    dir: PathBuf,
    generation: u64,
    bytes: usize,
}

impl Preparation {
    /// The file it makes.
    pub fn path(&self) -> PathBuf {
        self.dir.join(layout::segment_file(self.generation))
    }

    /// Creates the file (replacing one a crash left half prepared).
    pub fn run(&self) -> Result<(), StorageError> {
        let path = self.path();
        let (file, end) = create_with_header(&path, self.generation)?;
        let zeros = vec![0u8; 1 << 20];
        let mut at = end;
        while at < self.bytes {
            let len = zeros.len().min(self.bytes - at);
            file.write_all_at(&zeros[..len], at as u64)
                .map_err(|e| StorageError::io(&path, e))?;
            at += len;
        }
        Ok(())
    }
}

impl WalWriter {
    /// Starts generation `generation` under `root`, prepared if `prepare` (sync the
    /// file system before relying on it).
    pub fn create(
        root: &Path,
        generation: u64,
        limit: usize,
        prepare: bool,
    ) -> Result<WalWriter, StorageError> {
        let dir = root.join(WAL_DIR);
        fs::create_dir_all(&dir).map_err(|e| StorageError::io(&dir, e))?;
        let preparation = Preparation {
            dir: dir.clone(),
            generation,
            bytes: limit + PREPARED_SLACK,
        };
        let (file, path, end) = if prepare {
            preparation.run()?;
            open_prepared(&dir, generation)?
        } else {
            start_file(&dir, generation)?
        };
        Ok(WalWriter {
            dir,
            generation,
            file,
            path,
            end,
            pending: Vec::with_capacity(64 * 1024),
            pending_end: end,
            scratch: Vec::new(),
            limit,
            prepare,
            next_prepared: false,
        })
    }

    /// The next generation's file to prepare, if files are prepared and it is not yet.
    pub fn next_preparation(&self) -> Option<Preparation> {
        (self.prepare && !self.next_prepared).then(|| Preparation {
            dir: self.dir.clone(),
            generation: self.generation + 1,
            bytes: self.limit + PREPARED_SLACK,
        })
    }

    /// The preparation `next_preparation` gave has run and been synced.
    pub fn next_is_prepared(&mut self) {
        self.next_prepared = self.prepare;
    }

    /// Adds an event; it reaches the file at the next `write`.
    pub fn add(&mut self, channel: &str, id: u64, closed: bool, at_ms: u64, data: &[u8]) {
        self.scratch.clear();
        self.scratch.push(channel.len() as u8);
        self.scratch.extend_from_slice(channel.as_bytes());
        self.scratch.extend_from_slice(data);
        let tag = if closed { Tag::Close } else { Tag::Message };
        self.pending_end = record::encode(
            &mut self.pending,
            self.pending_end,
            id,
            tag,
            at_ms,
            &self.scratch,
        );
    }

    /// Writes what was added since the last call, in one write.
    pub fn write(&mut self) -> Result<(), StorageError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.file
            .write_all_at(&self.pending, self.end as u64)
            .map_err(|e| StorageError::io(&self.path, e))?;
        self.end = self.pending_end;
        self.pending.clear();
        Ok(())
    }

    /// Whether the file has grown enough for a checkpoint.
    pub fn checkpoint_due(&self) -> bool {
        self.end >= self.limit
    }

    /// Starts the next generation (after writing what is pending) and deletes the
    /// one before the current: call only once the checkpoint started with the current
    /// generation has completed, and start the next checkpoint (a sync of the whole
    /// file system).
    pub fn start_next_generation(&mut self) -> Result<(), StorageError> {
        self.write()?;
        let (file, path, end) = if std::mem::take(&mut self.next_prepared) {
            open_prepared(&self.dir, self.generation + 1)?
        } else {
            start_file(&self.dir, self.generation + 1)?
        };
        if let Some(older) = self.generation.checked_sub(1) {
            let older = self.dir.join(layout::segment_file(older));
            match fs::remove_file(&older) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(StorageError::io(&older, e)),
            }
        }
        self.generation += 1;
        self.file = file;
        self.path = path;
        self.end = end;
        self.pending_end = end;
        Ok(())
    }

    /// Deletes every generation, the one being written and a prepared one included:
    /// at a clean shutdown, once the segments hold every event.
    pub fn remove_all(self) -> Result<(), StorageError> {
        let entries = fs::read_dir(&self.dir).map_err(|e| StorageError::io(&self.dir, e))?;
        for entry in entries {
            let path = entry.map_err(|e| StorageError::io(&self.dir, e))?.path();
            if path.extension().is_some_and(|e| e == "log") {
                fs::remove_file(&path).map_err(|e| StorageError::io(&path, e))?;
            }
        }
        Ok(())
    }

    /// The file written now and its path, for a sync plan.
    pub fn file(&self) -> (&Arc<File>, &Path) {
        (&self.file, &self.path)
    }
}

/// Creates generation `generation`'s file with its header.
fn start_file(dir: &Path, generation: u64) -> Result<(Arc<File>, PathBuf, usize), StorageError> {
    let path = dir.join(layout::segment_file(generation));
    let (file, end) = create_with_header(&path, generation)?;
    Ok((Arc::new(file), path, end))
}

/// Opens generation `generation`'s prepared file, to write after its header.
fn open_prepared(dir: &Path, generation: u64) -> Result<(Arc<File>, PathBuf, usize), StorageError> {
    let path = dir.join(layout::segment_file(generation));
    let file = OpenOptions::new()
        .write(true)
        .open(&path)
        .map_err(|e| StorageError::io(&path, e))?;
    Ok((Arc::new(file), path, header(generation).len()))
}

/// Creates (or empties) the file at `path` with generation `generation`'s header;
/// returns it and where the header ends.
fn create_with_header(path: &Path, generation: u64) -> Result<(File, usize), StorageError> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(path)
        .map_err(|e| StorageError::io(path, e))?;
    let bytes = header(generation);
    file.write_all_at(&bytes, 0)
        .map_err(|e| StorageError::io(path, e))?;
    Ok((file, bytes.len()))
}

/// The header record of generation `generation`'s file.
fn header(generation: u64) -> Vec<u8> {
    let mut header = WAL_MAGIC.to_vec();
    header.extend_from_slice(&layout::FORMAT.to_le_bytes());
    let mut bytes = Vec::new();
    record::encode(&mut bytes, 0, generation, Tag::SegmentHeader, 0, &header);
    bytes
}

/// Deletes the generations recovery has written back into the segments.
pub fn remove(files: &[(u64, PathBuf)]) -> Result<(), StorageError> {
    for (_, path) in files {
        fs::remove_file(path).map_err(|e| StorageError::io(path, e))?;
    }
    Ok(())
}
