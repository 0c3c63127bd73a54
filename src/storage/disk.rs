//! The durable storage's writer: per channel, a directory of append-only segment files
//! (`segment.rs`, bytes as in `record.rs`), the newest one written, older ones sealed
//! and deleted by retention; and its recovery (`recovery.rs` reads the channels
//! back), which first writes back what the write-ahead log (`wal.rs`) holds.
//!
//! Every event goes to the write-ahead log, written once at the end of each turn of
//! the admin loop (`flush`), and to its segment, which gathers up to
//! `gather_records` of them (or 64 KiB) before it writes them in one `pwrite`: so a
//! turn costs one write however many channels it touched, and a crash of the process
//! loses nothing the log was not flushed with. Segments are written whole before
//! they are sealed, closed or checkpointed.
//!
//! `DiskLog` is used by one thread, the admin thread (`journal.rs`), which hands its
//! sync plans to the sync thread; `reader.rs` reads the same files from the catch-up
//! thread, which is asked only for events older than the loops' in-memory history,
//! and so always finds them written.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use log::error;

use super::layout;
use super::record::Tag;
use super::recovery::{self, Damage};
use super::retention::{Oldest, Retention};
use super::segment::{self, SegmentWriter};
use super::wal::{self, WalContents, WalEvent, WalWriter};
use super::{Bounds, Entry, Recovered, Storage, StorageError, SyncPlan};
use crate::channel::Event;
use crate::stats::{add, Stats};

/// Most records a segment gathers before they are written (fewer with a small
/// `--history`).
pub const GATHER_RECORDS: usize = 32;

/// Most bytes a segment gathers before they are written.
const GATHER_BYTES: usize = 64 * 1024;

/// How the log is cut and kept.
#[derive(Debug, Clone)]
pub struct DiskOptions {
    /// A segment is sealed and a new one started once it passes this many bytes.
    pub segment_bytes: usize,
    pub retention: Retention,
    /// Most segment files kept open for writing at once (the rest are reopened when
    /// written to again): descriptors are shared with subscribers.
    pub max_open_files: usize,
    /// A checkpoint of the write-ahead log (`wal.rs`) is made each time it passes
    /// this many bytes.
    pub checkpoint_bytes: usize,
    /// Whether checkpoints sync what they cover (every `--fsync` but `never`).
    pub sync_checkpoints: bool,
    /// Whether write-ahead log files are prepared (zero-filled) ahead of use
    /// (`wal.rs`), which makes each sync of them cheaper (`--fsync always`); only
    /// with `sync_checkpoints`.
    pub prepare_log_files: bool,
    /// Most records a segment gathers before they are written to it. They must stay
    /// fewer than the loops keep in memory (`--history`), so that the catch-up
    /// thread, which reads only what memory no longer holds, finds them written.
    pub gather_records: usize,
}

impl Default for DiskOptions {
    fn default() -> DiskOptions {
        DiskOptions {
            segment_bytes: 4 << 20,
            retention: Retention::default(),
            max_open_files: 64,
            checkpoint_bytes: wal::CHECKPOINT_BYTES,
            sync_checkpoints: true,
            prepare_log_files: true,
            gather_records: GATHER_RECORDS,
        }
    }
}

/// One segment as the writer knows it.
#[derive(Debug, Clone, Copy)]
pub(super) struct SegmentInfo {
    pub first_id: u64,
    pub bytes: u64,
    pub last_write_ms: u64,
}

/// One channel's log.
#[derive(Debug)]
pub(super) struct ChannelLog {
    dir: PathBuf,
    /// Oldest first; the last is the one written to.
    segments: VecDeque<SegmentInfo>,
    /// The last segment, while its file is open.
    writer: Option<SegmentWriter>,
    last_id: u64,
    closed_id: Option<u64>,
    /// The next event starts a segment of its own (recovery skipped ids lost before it).
    new_segment: bool,
}

impl ChannelLog {
    /// A channel's log as recovery found it: `segments` in `dir`, none open.
    pub(super) fn recovered(
        dir: PathBuf,
        segments: VecDeque<SegmentInfo>,
        last_id: u64,
        closed_id: Option<u64>,
    ) -> ChannelLog {
        ChannelLog {
            dir,
            segments,
            writer: None,
            last_id,
            closed_id,
            new_segment: false,
        }
    }
}

/// The writer of the on-disk log.
#[derive(Debug)]
pub struct DiskLog {
    root: PathBuf,
    options: DiskOptions,
    channels: HashMap<Arc<str>, ChannelLog>,
    /// Channels whose writer is open, least recently opened first.
    open: VecDeque<Arc<str>>,
    /// The data directory, open, for a sync plan of its whole file system.
    root_handle: Arc<fs::File>,
    /// The write-ahead log, once recovered.
    wal: Option<WalWriter>,
    /// The write-ahead log file written last (by the last `flush`), for a sync plan.
    last_written: Option<(Arc<fs::File>, PathBuf)>,
    /// A checkpoint to hand out (`take_checkpoint`).
    checkpoint: Option<SyncPlan>,
    /// A checkpoint was handed out and has not been reported done.
    checkpointing: bool,
    /// Segments closed for writing since the last checkpoint plan (sealed, or closed
    /// to keep descriptors): with the ones open then, what a checkpoint syncs.
    touched_files: HashSet<PathBuf>,
    /// Directories that gained an entry since the last checkpoint plan.
    touched_dirs: HashSet<PathBuf>,
    stats: Arc<Stats>,
}

/// Most files and directories a checkpoint syncs one by one; with more, it syncs the
/// file system (`SyncPlan`).
pub const SYNC_FILES_MAX: usize = 256;

impl DiskLog {
    /// Opens (or creates) the data directory `root`; refuses one it cannot trust,
    /// changing nothing. Call `recover` next.
    pub fn open(
        root: &Path,
        options: DiskOptions,
        stats: Arc<Stats>,
    ) -> Result<DiskLog, StorageError> {
        layout::open_root(root)?;
        let root_handle = fs::File::open(root).map_err(|e| StorageError::io(root, e))?;
        Ok(DiskLog {
            root: root.to_path_buf(),
            options,
            channels: HashMap::new(),
            open: VecDeque::new(),
            root_handle: Arc::new(root_handle),
            wal: None,
            last_written: None,
            checkpoint: None,
            checkpointing: false,
            touched_files: HashSet::new(),
            touched_dirs: HashSet::new(),
            stats,
        })
    }

    /// The data directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Makes sure `name`'s writer is open and has room, starting a segment at `id`
    /// if needed.
    fn writer_for(&mut self, name: &Arc<str>, id: u64, now_ms: u64) -> Result<(), StorageError> {
        let channel = self.channels.get_mut(name).expect("created by append");
        let full = channel.new_segment
            || channel
                .segments
                .back()
                .is_none_or(|s| s.bytes as usize >= self.options.segment_bytes);
        if full {
            channel.new_segment = false;
            if let Some(mut sealed) = channel.writer.take() {
                sealed.flush()?;
                self.touched_files.insert(sealed.path().to_path_buf());
                self.open.retain(|n| n != name);
            }
            let writer = SegmentWriter::create(&channel.dir, name, id)
                .map_err(|e| StorageError::io(&channel.dir, e))?;
            self.touched_dirs.insert(channel.dir.clone());
            channel.segments.push_back(SegmentInfo {
                first_id: id,
                bytes: writer.end() as u64,
                last_write_ms: now_ms,
            });
            channel.writer = Some(writer);
        } else if channel.writer.is_none() {
            let last = channel.segments.back().expect("not full, so there is one");
            let path = channel.dir.join(layout::segment_file(last.first_id));
            let writer = SegmentWriter::reopen(path.clone(), last.bytes as usize)
                .map_err(|e| StorageError::io(&path, e))?;
            channel.writer = Some(writer);
        } else {
            return Ok(());
        }
        self.open.push_back(name.clone());
        if self.open.len() > self.options.max_open_files {
            if let Some(oldest) = self.open.pop_front() {
                if let Some(mut closed) =
                    self.channels.get_mut(&oldest).and_then(|c| c.writer.take())
                {
                    closed.flush()?;
                    self.touched_files.insert(closed.path().to_path_buf());
                }
            }
        }
        Ok(())
    }

    /// A checkpoint, after preparing the next write-ahead log file if asked: a sync of
    /// every segment closed for writing since the last plan or open now, of every
    /// directory that gained an entry (the log's among them, for its new file), and
    /// of the prepared file; or, if that is more than `SYNC_FILES_MAX`, of the file
    /// system.
    fn checkpoint_plan(&mut self, prepare: Option<wal::Preparation>) -> SyncPlan {
        let mut files: Vec<PathBuf> = self.touched_files.drain().collect();
        for name in &self.open {
            if let Some(writer) = self.channels.get(name).and_then(|c| c.writer.as_ref()) {
                files.push(writer.path().to_path_buf());
            }
        }
        files.extend(prepare.as_ref().map(wal::Preparation::path));
        files.sort_unstable();
        files.dedup();
        let mut dirs: Vec<PathBuf> = self.touched_dirs.drain().collect();
        dirs.push(self.root.join(wal::WAL_DIR));
        dirs.sort_unstable();
        dirs.dedup();
        if files.len() + dirs.len() > SYNC_FILES_MAX {
            return SyncPlan::FileSystem {
                dir: self.root_handle.clone(),
                path: self.root.clone(),
                prepare,
            };
        }
        SyncPlan::Files {
            files,
            dirs,
            prepare,
        }
    }

    /// Writes what every open segment has gathered.
    fn flush_segments(&mut self) -> Result<(), StorageError> {
        for name in &self.open {
            if let Some(writer) = self.channels.get_mut(name).and_then(|c| c.writer.as_mut()) {
                writer.flush()?;
            }
        }
        Ok(())
    }

    /// Writes the write-ahead log's events back into the segments: each channel's
    /// segments are cut before the first event the log holds of it (what follows
    /// may not have reached the disk), and the log's events appended again.
    fn replay(&mut self, wal: &WalContents) -> Result<(), StorageError> {
        for (name, events) in &wal.channels {
            self.cut_from(name, events[0].id)?;
            for event in events {
                let last_id = self.channels.get(name).map_or(0, |c| c.last_id);
                if event.id <= last_id {
                    continue;
                }
                if event.id > last_id + 1 {
                    error!(
                        "storage: channel {name:?}: events {}..{} are in neither the log nor the write-ahead log; subscribers get a gap",
                        last_id + 1,
                        event.id - 1
                    );
                    let channel = self.channel_log(name)?;
                    channel.last_id = event.id - 1;
                    channel.new_segment = true;
                }
                let Some(entry) = wal_entry(event) else {
                    error!("storage: channel {name:?}: event {} in the write-ahead log is not UTF-8; left out", event.id);
                    continue;
                };
                self.append(&entry)?;
            }
        }
        Ok(())
    }

    /// Removes events `from` and after of `name` from its segments.
    fn cut_from(&mut self, name: &str, from: u64) -> Result<(), StorageError> {
        let Some(channel) = self.channels.get_mut(name) else {
            return Ok(());
        };
        if channel.last_id < from {
            return Ok(());
        }
        if let Some(mut writer) = channel.writer.take() {
            writer.flush()?;
        }
        self.open.retain(|n| &**n != name);
        while let Some(last) = channel.segments.back() {
            if last.first_id < from {
                break;
            }
            let path = channel.dir.join(layout::segment_file(last.first_id));
            fs::remove_file(&path).map_err(|e| StorageError::io(&path, e))?;
            channel.segments.pop_back();
        }
        channel.last_id = from - 1;
        if let Some(last) = channel.segments.back_mut() {
            let path = channel.dir.join(layout::segment_file(last.first_id));
            let scan = segment::scan_file(&path).map_err(|e| StorageError::io(&path, e))?;
            let events = || scan.records.iter().filter(|r| r.tag != Tag::SegmentHeader);
            let end = events()
                .find(|r| r.id >= from)
                .map_or(scan.good_end, |r| r.offset);
            fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .and_then(|f| f.set_len(end as u64))
                .map_err(|e| StorageError::io(&path, e))?;
            last.bytes = end as u64;
            channel.last_id = events()
                .rfind(|r| r.id < from)
                .map_or(last.first_id - 1, |r| r.id);
        }
        if channel.closed_id.is_some_and(|id| id >= from) {
            channel.closed_id = None;
        }
        Ok(())
    }

    /// Takes over the channels' logs recovery found; returns what it recovered of
    /// each.
    fn take_over(&mut self, logs: Vec<(ChannelLog, Recovered)>) -> Vec<Recovered> {
        logs.into_iter()
            .map(|(log, recovered)| {
                self.channels.insert(recovered.name.clone(), log);
                recovered
            })
            .collect()
    }

    /// The log of channel `name`, created (with its directory) if new.
    fn channel_log(&mut self, name: &Arc<str>) -> Result<&mut ChannelLog, StorageError> {
        if !self.channels.contains_key(&**name) {
            let dir = layout::channel_dir(&self.root, name);
            fs::create_dir_all(&dir).map_err(|e| StorageError::io(&dir, e))?;
            if let Some(parent) = dir.parent() {
                self.touched_dirs.insert(parent.to_path_buf());
            }
            let log = ChannelLog::recovered(dir, VecDeque::new(), 0, None);
            self.channels.insert(name.clone(), log);
        }
        Ok(self.channels.get_mut(&**name).expect("inserted above"))
    }
}

/// The entry to append again for an event of the write-ahead log, if its data is UTF-8.
fn wal_entry(event: &WalEvent) -> Option<Entry<'_>> {
    let stored = if event.closed {
        Event::close_marker(event.channel.clone(), event.id)
    } else {
        let data = std::str::from_utf8(&event.data).ok()?;
        Event::message(event.channel.clone(), event.id, data)
    };
    Some(Entry {
        event: Arc::new(stored),
        data: &event.data,
        at_ms: event.at_ms,
    })
}

impl Storage for DiskLog {
    fn recover(&mut self, keep: usize) -> Result<Vec<Recovered>, StorageError> {
        // First check everything, changing nothing; then recover.
        let wal = wal::read(&self.root)?;
        let plans = recovery::check_channels(&self.root)?;
        if wal.damaged_blocks > 0 {
            error!(
                "storage: the write-ahead log has {} damaged block(s); events in them may be missing",
                wal.damaged_blocks
            );
            add(&self.stats.admin.damaged_blocks, wal.damaged_blocks as u64);
        }
        let stats = self.stats.clone();
        let damage = |quiet| Damage {
            quiet,
            stats: &stats,
        };
        let recovered = if wal.channels.is_empty() {
            recovery::recover_channels(plans, keep, damage(false))?
        } else {
            // Write the write-ahead log back into the segments, make them durable,
            // then recover from the segments alone.
            let logs = recovery::recover_channels(plans, 0, damage(true))?;
            self.take_over(logs);
            self.replay(&wal)?;
            self.flush_segments()?;
            layout::sync_file_system(&self.root_handle)
                .map_err(|e| StorageError::io(&self.root, e))?;
            self.channels.clear();
            self.open.clear();
            let plans = recovery::check_channels(&self.root)?;
            recovery::recover_channels(plans, keep, damage(false))?
        };
        let recovered = self.take_over(recovered);
        wal::remove(&wal.files)?;
        let generation = wal.files.last().map_or(1, |(g, _)| g + 1);
        let wal = WalWriter::create(
            &self.root,
            generation,
            self.options.checkpoint_bytes,
            self.options.sync_checkpoints && self.options.prepare_log_files,
        )?;
        layout::sync_file_system(&self.root_handle).map_err(|e| StorageError::io(&self.root, e))?;
        // Everything recovery wrote is durable now.
        self.touched_files.clear();
        self.touched_dirs.clear();
        // The next file is prepared on the sync thread, as a checkpoint of nothing.
        if let Some(preparation) = wal.next_preparation() {
            self.checkpoint = Some(self.checkpoint_plan(Some(preparation)));
            self.checkpointing = true;
        }
        self.wal = Some(wal);
        Ok(recovered)
    }

    fn append(&mut self, entry: &Entry) -> Result<(), StorageError> {
        let event = &entry.event;
        self.channel_log(&event.channel)?;
        let channel = &self.channels[&*event.channel];
        if event.id != channel.last_id + 1 || channel.closed_id.is_some() {
            return Err(StorageError::io(
                &channel.dir,
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("event {} does not follow {}", event.id, channel.last_id),
                ),
            ));
        }
        self.writer_for(&event.channel, event.id, entry.at_ms)?;
        let channel = self
            .channels
            .get_mut(&*event.channel)
            .expect("checked above");
        let writer = channel.writer.as_mut().expect("opened by writer_for");
        let tag = if event.closed {
            Tag::Close
        } else {
            Tag::Message
        };
        writer.append(event.id, tag, entry.at_ms, entry.data);
        if writer.pending_records() >= self.options.gather_records
            || writer.pending_bytes() >= GATHER_BYTES
        {
            writer.flush()?;
        }
        if let Some(wal) = &mut self.wal {
            wal.add(
                &event.channel,
                event.id,
                event.closed,
                entry.at_ms,
                entry.data,
            );
        }
        let segment = channel.segments.back_mut().expect("writer_for made one");
        segment.bytes = writer.end() as u64;
        segment.last_write_ms = entry.at_ms;
        channel.last_id = event.id;
        if event.closed {
            channel.closed_id = Some(event.id);
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StorageError> {
        let Some(wal) = &mut self.wal else {
            return Ok(()); // recovering: replayed segments are flushed at its end
        };
        let (file, path) = wal.file();
        self.last_written = Some((file.clone(), path.to_path_buf()));
        if !wal.checkpoint_due() || self.checkpointing {
            return wal.write();
        }
        // A checkpoint: every segment written, then a new generation (which writes
        // what is pending into the one ending), then a sync of everything before.
        self.flush_segments()?;
        let wal = self.wal.as_mut().expect("checked above");
        wal.start_next_generation()?;
        if self.options.sync_checkpoints {
            let preparation = wal.next_preparation();
            self.checkpoint = Some(self.checkpoint_plan(preparation));
            self.checkpointing = true;
        }
        Ok(())
    }

    fn take_sync_plan(&mut self) -> Result<SyncPlan, StorageError> {
        // Only the write-ahead log needs to be durable: the segments are synced by
        // checkpoints, and recovery replays the log into them.
        self.flush()?;
        Ok(match &self.last_written {
            Some((file, path)) => SyncPlan::File {
                file: file.clone(),
                path: path.clone(),
            },
            None => SyncPlan::Nothing,
        })
    }

    fn sync(&mut self) -> Result<usize, StorageError> {
        self.flush_segments()?;
        self.take_sync_plan()?.run()
    }

    /// A last checkpoint: every segment written (and, if `durable`, synced with the
    /// directories that gained files), then the write-ahead log deleted, so that the
    /// next start recovers from the segments without replaying it. Without a sync
    /// (`--fsync never`) the segments are as safe as the log was: in the kernel, which
    /// decides when they reach the disk.
    fn shut_down(&mut self, durable: bool) -> Result<usize, StorageError> {
        let Some(wal) = self.wal.take() else {
            return Ok(0);
        };
        self.flush_segments()?;
        let syncs = if durable {
            self.checkpoint_plan(None).run()?
        } else {
            0
        };
        wal.remove_all()?;
        Ok(syncs)
    }

    fn take_checkpoint(&mut self) -> Option<SyncPlan> {
        self.checkpoint.take()
    }

    fn checkpoint_done(&mut self) {
        self.checkpointing = false;
        if let Some(wal) = &mut self.wal {
            wal.next_is_prepared();
        }
    }

    fn bounds(&self, channel: &str) -> Option<Bounds> {
        let log = self.channels.get(channel)?;
        Some(Bounds {
            first_id: log.segments.front().map_or(log.last_id + 1, |s| s.first_id),
            last_id: log.last_id,
            closed_id: log.closed_id,
        })
    }

    fn enforce_retention(&mut self, now_ms: u64) -> Vec<(Arc<str>, u64)> {
        let mut moved = Vec::new();
        for (name, channel) in &mut self.channels {
            let mut dropped = false;
            while channel.segments.len() > 1 {
                let oldest = Oldest {
                    events_after: channel.last_id + 1 - channel.segments[1].first_id,
                    bytes_total: channel.segments.iter().map(|s| s.bytes).sum(),
                    last_write_ms: channel.segments[0].last_write_ms,
                };
                if !self.options.retention.drops(oldest, now_ms) {
                    break;
                }
                let path = channel
                    .dir
                    .join(layout::segment_file(channel.segments[0].first_id));
                match fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        error!("storage: cannot delete {}: {e}", path.display());
                        break;
                    }
                }
                self.stats
                    .admin
                    .segments_deleted
                    .fetch_add(1, Ordering::Relaxed);
                channel.segments.pop_front();
                dropped = true;
            }
            if dropped {
                moved.push((name.clone(), channel.segments[0].first_id));
            }
        }
        moved
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{DiskReader, MemoryStorage, StorageReader, Stored};
    use std::collections::BTreeMap;
    use std::io::Write;

    fn temp_root(name: &str) -> PathBuf {
        let root = std::env::temp_dir().join(format!("halley-disk-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        root
    }

    fn entry<'a>(channel: &str, id: u64, data: &'a str) -> Entry<'a> {
        Entry {
            event: Arc::new(Event::message(channel.into(), id, data)),
            data: data.as_bytes(),
            at_ms: 1_000 + id,
        }
    }

    fn small_segments() -> DiskOptions {
        DiskOptions {
            segment_bytes: 4096,
            ..DiskOptions::default()
        }
    }

    fn ids(items: &[Stored]) -> Vec<String> {
        items
            .iter()
            .map(|item| match item {
                Stored::Event(e) => String::from_utf8_lossy(&e.json).into_owned(),
                Stored::Gap { from, to } => format!("gap {from}..{to}"),
            })
            .collect()
    }

    #[test]
    fn the_log_and_memory_answer_alike_within_what_memory_keeps() {
        let root = temp_root("alike");
        let stats = Arc::new(Stats::new(1));
        let mut disk = DiskLog::open(&root, small_segments(), stats.clone()).unwrap();
        assert!(disk.recover(10).unwrap().is_empty());
        let mut memory = MemoryStorage::new(10_000);
        for id in 1..=300 {
            let data = format!("event {id} {}", "z".repeat(id as usize % 97));
            for storage in [&mut disk as &mut dyn Storage, &mut memory] {
                storage.append(&entry("a:b", id, &data)).unwrap();
            }
        }
        disk.close("a:b".into(), 301).unwrap();
        memory.close("a:b".into(), 301).unwrap();
        disk.sync().unwrap();
        assert_eq!(disk.bounds("a:b"), memory.bounds("a:b"));
        let mut reader = DiskReader::new(&root, stats);
        for (cursor, to) in [(0, 301), (17, 40), (150, 301), (299, 301), (301, 301)] {
            assert_eq!(
                ids(&reader.read_after("a:b", cursor, to, usize::MAX)),
                ids(&memory.read_after("a:b", cursor, to, usize::MAX)),
                "after {cursor} to {to}"
            );
        }
        let some = reader.read_after("a:b", 0, 301, 2_000);
        assert!(
            some.len() > 10 && some.len() < 300,
            "max_bytes bounds a read"
        );
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn reading_ahead_prepares_the_next_answer_and_reads_the_next_segment() {
        let root = temp_root("ahead");
        let stats = Arc::new(Stats::new(1));
        let mut disk = DiskLog::open(&root, small_segments(), stats.clone()).unwrap();
        disk.recover(10).unwrap();
        for id in 1..=300 {
            let data = format!("event {id} {}", "y".repeat(40));
            disk.append(&entry("a", id, &data)).unwrap();
        }
        disk.sync().unwrap();
        let mut reader = DiskReader::new(&root, stats.clone());
        let mut fresh = DiskReader::new(&root, stats);
        assert!(!reader.read_ahead(), "nothing was read yet");
        // About 20 events of the first segment's 60 or so.
        let first = reader.read_after("a", 0, 300, 1_000);
        assert_eq!(reader.cached_segments(), 1);
        assert!(
            reader.read_ahead() && reader.has_prepared(),
            "the next answer"
        );
        assert!(reader.read_ahead(), "then the next segment");
        assert_eq!(reader.cached_segments(), 2);
        assert!(!reader.read_ahead(), "and nothing more");
        let Some(Stored::Event(last)) = first.last() else {
            panic!("{:?}", ids(&first))
        };
        // The prepared answer is the answer, also to a request that reaches further.
        let second = reader.read_after("a", last.id, 310, 1_000);
        assert!(!reader.has_prepared());
        assert_eq!(
            ids(&second),
            ids(&fresh.read_after("a", last.id, 310, 1_000))
        );
        // One for another cursor is not used.
        reader.read_ahead();
        assert!(reader.has_prepared());
        assert_eq!(
            ids(&reader.read_after("a", 3, 300, 1_000)),
            ids(&fresh.read_after("a", 3, 300, 1_000))
        );
        let rest = reader.read_after("a", 150, 300, usize::MAX);
        assert_eq!(
            ids(&rest),
            ids(&fresh.read_after("a", 150, 300, usize::MAX))
        );
        assert!(
            !reader.read_ahead(),
            "a read to the end leaves nothing owed"
        );
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn recovery_brings_back_ids_payloads_tails_and_closed_state() {
        let root = temp_root("recover");
        let stats = Arc::new(Stats::new(1));
        let mut disk = DiskLog::open(&root, small_segments(), stats.clone()).unwrap();
        disk.recover(5).unwrap();
        for id in 1..=120 {
            disk.append(&entry("x", id, &format!("x{id}"))).unwrap();
        }
        disk.append(&entry("..", 1, "dots")).unwrap();
        disk.close("..".into(), 2).unwrap();
        disk.flush().unwrap();
        drop(disk);
        let mut disk = DiskLog::open(&root, small_segments(), stats).unwrap();
        let mut recovered = disk.recover(5).unwrap();
        recovered.sort_by(|a, b| a.name.cmp(&b.name));
        let dots = &recovered[0];
        assert_eq!(&*dots.name, "..");
        assert_eq!(dots.bounds.closed_id, Some(2));
        let x = &recovered[1];
        assert_eq!((x.bounds.first_id, x.bounds.last_id), (1, 120));
        let tail: Vec<u64> = x.tail.iter().map(|e| e.id).collect();
        assert_eq!(tail, [116, 117, 118, 119, 120]);
        assert!(String::from_utf8_lossy(&x.tail[4].json).contains("\"x120\""));
        // Appending goes on from the recovered id, and out-of-order ids are refused.
        disk.append(&entry("x", 121, "next")).unwrap();
        assert!(disk.append(&entry("x", 123, "skips")).is_err());
        assert!(disk.append(&entry("..", 3, "after close")).is_err());
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn segments_gather_records_and_write_them_before_memory_lets_them_go() {
        let root = temp_root("gather");
        let options = DiskOptions {
            gather_records: 4,
            ..small_segments()
        };
        let mut disk = DiskLog::open(&root, options, Arc::new(Stats::new(1))).unwrap();
        disk.recover(0).unwrap();
        let segment = layout::channel_dir(&root, "a").join(layout::segment_file(1));
        let length = || fs::metadata(&segment).unwrap().len();
        disk.append(&entry("a", 1, "x")).unwrap();
        let header = length();
        // A flush writes the write-ahead log, not the segment.
        disk.flush().unwrap();
        assert_eq!(length(), header);
        for id in 2..=3 {
            disk.append(&entry("a", id, "x")).unwrap();
        }
        assert_eq!(length(), header, "three gathered");
        disk.append(&entry("a", 4, "x")).unwrap();
        assert!(length() > header, "the fourth writes all four");
        let mut reader = DiskReader::new(&root, Arc::new(Stats::new(1)));
        assert_eq!(reader.read_after("a", 0, 4, usize::MAX).len(), 4);
        // A sealed segment is written whole.
        disk.append(&entry("a", 5, "y")).unwrap();
        for id in 6..=40 {
            disk.append(&entry("a", id, &"w".repeat(300))).unwrap();
        }
        assert!(segments_of(&root, "a") > 1);
        let first = reader.read_after("a", 0, 40, usize::MAX);
        let Some(Stored::Event(last_read)) = first.last() else {
            panic!("{:?}", ids(&first));
        };
        assert!(last_read.id >= 9, "the sealed segment is read to its end");
        // A sync writes every segment.
        disk.sync().unwrap();
        assert_eq!(reader.read_after("a", 0, 40, usize::MAX).len(), 40);
        fs::remove_dir_all(&root).unwrap();
    }

    /// Takes and runs a sync plan, which with a write-ahead log is always that log's.
    fn sync_the_log(disk: &mut DiskLog, root: &Path) {
        match disk.take_sync_plan().unwrap() {
            SyncPlan::File { file, path } => {
                assert!(path.starts_with(root.join(wal::WAL_DIR)), "{path:?}");
                file.sync_data().unwrap();
            }
            plan => panic!("{}", kind(plan)),
        }
    }

    fn kind(plan: SyncPlan) -> String {
        match plan {
            SyncPlan::Nothing => "nothing".to_string(),
            SyncPlan::File { path, .. } => path.file_name().unwrap().to_string_lossy().into(),
            SyncPlan::FileSystem { .. } => "file system".to_string(),
            SyncPlan::Files { .. } => "files".to_string(),
        }
    }

    fn wal_files(root: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(root.join(wal::WAL_DIR))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// Every segment file's length, to put back as a machine crash would.
    fn lengths(root: &Path) -> BTreeMap<PathBuf, u64> {
        let mut out = BTreeMap::new();
        for channel in fs::read_dir(root.join("channels")).unwrap() {
            for file in fs::read_dir(channel.unwrap().path()).unwrap() {
                let path = file.unwrap().path();
                out.insert(path.clone(), fs::metadata(&path).unwrap().len());
            }
        }
        out
    }

    #[test]
    fn with_a_write_ahead_log_only_it_is_synced_and_it_makes_good_lost_segment_writes() {
        let root = temp_root("wal");
        let stats = Arc::new(Stats::new(1));
        let options = DiskOptions {
            checkpoint_bytes: 20_000,
            ..small_segments()
        };
        let mut disk = DiskLog::open(&root, options.clone(), stats.clone()).unwrap();
        disk.recover(0).unwrap();
        assert_eq!(wal_files(&root), [layout::segment_file(1)]);
        // Every file is prepared: written in place, it never changes size.
        let prepared = 20_000 + wal::PREPARED_SLACK as u64;
        let wal_lengths = || -> Vec<u64> {
            wal_files(&root)
                .iter()
                .map(|name| {
                    fs::metadata(root.join(wal::WAL_DIR).join(name))
                        .unwrap()
                        .len()
                })
                .collect()
        };
        let data =
            |channel: &str, id: u64| format!("{channel}{id}:{}", "p".repeat(id as usize * 7 % 300));
        let mut durable = BTreeMap::new();
        let mut checkpoints = 0;
        for id in 1..=200 {
            for channel in ["a", "b:c"] {
                disk.append(&entry(channel, id, &data(channel, id)))
                    .unwrap();
            }
            sync_the_log(&mut disk, &root);
            if let Some(checkpoint) = disk.take_checkpoint() {
                checkpoint.run().unwrap();
                // What the checkpoint synced is durable at its length now; the rest
                // only as a checkpoint before left it.
                let SyncPlan::Files { files, .. } = &checkpoint else {
                    panic!(
                        "a checkpoint of a few files syncs them: {}",
                        kind(checkpoint)
                    );
                };
                let now = lengths(&root);
                for file in files {
                    if let Some(&len) = now.get(file) {
                        durable.insert(file.clone(), len);
                    }
                }
                disk.checkpoint_done();
                checkpoints += 1;
                // Two generations and the next one, prepared.
                assert!(wal_files(&root).len() <= 3, "{:?}", wal_files(&root));
            }
            assert!(
                wal_lengths().iter().all(|&len| len == prepared),
                "{:?}",
                wal_lengths()
            );
        }
        // The first checkpoint only prepared generation 2, at recovery.
        assert!(checkpoints >= 4, "{checkpoints} checkpoints");
        // Then a crash during a checkpoint: its plan is made (a new generation
        // started) and has prepared the next file, but it is not reported done, and
        // the segments keep only what the one before made durable (as if its sync
        // had not finished); what came since is in two generations, with the
        // prepared one after them. No other checkpoint starts (and no generation is
        // deleted) until that one is done.
        let mut last = 200;
        let mut pending = None;
        while last < 400 {
            last += 1;
            disk.append(&entry("a", last, &data("a", last))).unwrap();
            sync_the_log(&mut disk, &root);
            match (disk.take_checkpoint(), &pending) {
                (Some(checkpoint), None) => pending = Some(checkpoint),
                (None, _) => {}
                (Some(_), Some(_)) => panic!("a checkpoint while one runs"),
            }
            assert!(wal_files(&root).len() <= 3, "{:?}", wal_files(&root));
        }
        let pending = pending.expect("a checkpoint was due");
        let SyncPlan::Files {
            prepare: Some(preparation),
            ..
        } = pending
        else {
            panic!("the checkpoint prepares the next file");
        };
        preparation.run().unwrap();
        assert_eq!(wal_files(&root).len(), 3);
        disk.close("b:c".into(), 201).unwrap();
        disk.take_sync_plan().unwrap().run().unwrap();
        drop(disk);
        // A machine crash: segments lose what was written since the last checkpoint
        // (files cut back, files created since gone, garbage at a tail).
        for channel in fs::read_dir(root.join("channels")).unwrap() {
            for file in fs::read_dir(channel.unwrap().path()).unwrap() {
                let path = file.unwrap().path();
                match durable.get(&path) {
                    None => fs::remove_file(&path).unwrap(),
                    Some(&len) => {
                        let file = fs::OpenOptions::new().write(true).open(&path).unwrap();
                        file.set_len(len).unwrap();
                    }
                }
            }
        }
        let last_a = lengths(&root)
            .into_keys()
            .rfind(|p| p.to_string_lossy().contains("/a/"))
            .unwrap();
        fs::OpenOptions::new()
            .append(true)
            .open(&last_a)
            .unwrap()
            .write_all(&[0x5A; 900])
            .unwrap();

        let mut disk = DiskLog::open(&root, options, stats.clone()).unwrap();
        let recovered = disk.recover(3).unwrap();
        let bounds: BTreeMap<String, Bounds> = recovered
            .iter()
            .map(|r| (r.name.to_string(), r.bounds))
            .collect();
        assert_eq!(bounds["a"].last_id, last);
        assert_eq!(
            (bounds["b:c"].last_id, bounds["b:c"].closed_id),
            (201, Some(201))
        );
        let mut reader = DiskReader::new(&root, stats.clone());
        for (channel, last) in [("a", last), ("b:c", 200)] {
            let read = reader.read_after(channel, 0, last, usize::MAX);
            let want: Vec<String> = (1..=last)
                .map(|id| {
                    String::from_utf8_lossy(
                        &Event::message(channel.into(), id, &data(channel, id)).json,
                    )
                    .into_owned()
                })
                .collect();
            assert_eq!(ids(&read), want, "{channel}");
        }
        assert_eq!(stats.admin.damaged_blocks.load(Ordering::Relaxed), 0);
        // The replayed generations are gone; a new one is written.
        assert_eq!(wal_files(&root).len(), 1);
        disk.append(&entry("a", last + 1, "on")).unwrap();
        fs::remove_dir_all(&root).unwrap();
    }

    fn segments_of(root: &Path, channel: &str) -> usize {
        super::recovery::list_segments(&layout::channel_dir(root, channel))
            .unwrap()
            .len()
    }

    #[test]
    fn retention_by_count_keeps_at_least_what_was_asked() {
        let root = temp_root("retain");
        let options = DiskOptions {
            retention: Retention {
                limits: vec![super::super::retention::Limit::Events(50)],
            },
            ..small_segments()
        };
        let stats = Arc::new(Stats::new(1));
        let mut disk = DiskLog::open(&root, options, stats.clone()).unwrap();
        disk.recover(0).unwrap();
        for id in 1..=400 {
            disk.append(&entry("r", id, &"y".repeat(100))).unwrap();
        }
        let moved = disk.enforce_retention(u64::MAX);
        let first = moved[0].1;
        assert!(first > 1 && 400 - first + 1 >= 50, "first kept {first}");
        assert_eq!(disk.bounds("r").unwrap().first_id, first);
        disk.sync().unwrap();
        let mut reader = DiskReader::new(&root, stats);
        let read = reader.read_after("r", 3, 400, usize::MAX);
        assert_eq!(ids(&read[..1]), [format!("gap 4..{}", first - 1)]);
        assert_eq!(read.len() as u64, 1 + 400 - first + 1);
        fs::remove_dir_all(&root).unwrap();
    }
}
