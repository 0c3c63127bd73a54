//! Recovering the on-disk log's channels at start: every channel directory is first
//! checked without changing anything (a directory that cannot be trusted stops the
//! start), then each channel is recovered: a segment whose creation was cut short is
//! removed, a torn tail of the last segment (a write never acknowledged) is cut, and
//! the channel's bounds and newest events are read back. `DiskLog::recover`
//! (`disk.rs`) runs this, around the replay of the write-ahead log.

use std::collections::VecDeque;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use log::{error, warn};

use super::disk::{ChannelLog, SegmentInfo};
use super::layout;
use super::record::{Record, Scan, Tag};
use super::segment::{self, Header};
use super::{Bounds, Recovered, StorageError};
use crate::channel::Event;
use crate::stats::{add, Stats};

/// A channel directory checked and ready to recover.
#[derive(Debug)]
pub(super) struct ChannelPlan {
    dir: PathBuf,
    name: String,
    /// Its segments with whole headers, oldest first.
    segments: Vec<(u64, PathBuf)>,
    /// A last segment whose creation was cut short, to remove.
    torn_last: Option<PathBuf>,
}

/// How recovery reports damage: not at all before the write-ahead log is replayed
/// (the replay may make it good), then in the log and `/stats`.
#[derive(Clone, Copy)]
pub(super) struct Damage<'a> {
    pub quiet: bool,
    pub stats: &'a Stats,
}

impl Damage<'_> {
    fn report(&self, path: &Path, blocks: usize) {
        if self.quiet {
            return;
        }
        error!(
            "storage: {}: {blocks} damaged block(s); their events will not be served (subscribers get a gap)",
            path.display()
        );
        add(&self.stats.admin.damaged_blocks, blocks as u64);
    }
}

/// Checks every channel directory under `root`, changing nothing.
pub(super) fn check_channels(root: &Path) -> Result<Vec<ChannelPlan>, StorageError> {
    let channels = root.join("channels");
    let entries = fs::read_dir(&channels).map_err(|e| StorageError::io(&channels, e))?;
    let mut plans = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| StorageError::io(&channels, e))?;
        if entry
            .file_type()
            .map_err(|e| StorageError::io(&entry.path(), e))?
            .is_dir()
        {
            plans.extend(check_channel(&entry.path())?);
        }
    }
    Ok(plans)
}

/// Checks one channel directory without changing it.
fn check_channel(dir: &Path) -> Result<Option<ChannelPlan>, StorageError> {
    let untrusted = |why: String| StorageError::Untrusted(format!("{}: {why}", dir.display()));
    let Some(dir_name) = dir.file_name().and_then(|n| n.to_str()) else {
        return Err(untrusted("not a channel directory name".into()));
    };
    let mut ids: Vec<u64> = list_segments(dir)?;
    ids.sort_unstable();
    let mut plan = ChannelPlan {
        dir: dir.to_path_buf(),
        name: String::new(),
        segments: Vec::new(),
        torn_last: None,
    };
    for (i, &id) in ids.iter().enumerate() {
        let path = dir.join(layout::segment_file(id));
        match segment::read_header(&path).map_err(|e| StorageError::io(&path, e))? {
            Header::Valid { channel, first_id } => {
                if first_id != id || layout::dir_name(&channel) != dir_name {
                    return Err(untrusted(format!(
                        "{} says it holds channel {channel:?} from id {first_id}",
                        path.display()
                    )));
                }
                plan.name = channel;
                plan.segments.push((id, path));
            }
            Header::Torn if i + 1 == ids.len() => plan.torn_last = Some(path),
            Header::Torn => {
                return Err(untrusted(format!(
                    "{}: a sealed segment with no header",
                    path.display()
                )))
            }
            Header::Bad(why) => return Err(untrusted(format!("{}: {why}", path.display()))),
        }
    }
    Ok((!plan.segments.is_empty() || plan.torn_last.is_some()).then_some(plan))
}

/// The first ids of the segments in a channel directory, unsorted.
pub(super) fn list_segments(dir: &Path) -> Result<Vec<u64>, StorageError> {
    let entries = fs::read_dir(dir).map_err(|e| StorageError::io(dir, e))?;
    Ok(entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str().and_then(layout::parse_segment_file))
        .collect())
}

/// Recovers every channel checked, keeping its newest `keep` events; syncs the
/// directories whose entries it changed.
pub(super) fn recover_channels(
    plans: Vec<ChannelPlan>,
    keep: usize,
    damage: Damage<'_>,
) -> Result<Vec<(ChannelLog, Recovered)>, StorageError> {
    let mut recovered = Vec::new();
    let mut changed_dirs = Vec::new();
    for plan in plans {
        recovered.extend(recover_channel(plan, keep, damage, &mut changed_dirs)?);
    }
    for dir in changed_dirs {
        layout::sync_dir(&dir)?;
    }
    Ok(recovered)
}

/// Recovers one channel directory (already checked by `check_channel`): its log as
/// the writer takes it over, and what the loops and the admin thread start from.
/// Notes in `changed_dirs` a directory whose entries it changed.
fn recover_channel(
    plan: ChannelPlan,
    keep: usize,
    damage: Damage<'_>,
    changed_dirs: &mut Vec<PathBuf>,
) -> Result<Option<(ChannelLog, Recovered)>, StorageError> {
    let ChannelPlan {
        dir,
        name,
        mut segments,
        torn_last,
    } = plan;
    if let Some(path) = torn_last {
        warn!(
            "storage: removing {}, a segment whose creation was cut short",
            path.display()
        );
        fs::remove_file(&path).map_err(|e| StorageError::io(&path, e))?;
        changed_dirs.push(dir.clone());
    }
    let Some((last_first, last_path)) = segments.pop() else {
        return Ok(None);
    };
    let last = scan_last_segment(&last_path, damage)?;
    let name: Arc<str> = Arc::from(name);
    let events: Vec<&Record> = last
        .records
        .iter()
        .filter(|r| r.tag != Tag::SegmentHeader)
        .collect();
    let last_id = events.last().map_or(last_first - 1, |r| r.id);
    let closed_id = events.last().filter(|r| r.tag == Tag::Close).map(|r| r.id);
    let mut infos = segment_infos(&segments)?;
    let last_meta = fs::metadata(&last_path).map_err(|e| StorageError::io(&last_path, e))?;
    infos.push_back(SegmentInfo {
        first_id: last_first,
        bytes: last.good_end as u64,
        last_write_ms: modified_ms(&last_meta),
    });
    let tail = newest_events(&name, &events, segments, keep, damage)?;
    let first_id = infos.front().map_or(last_id + 1, |s| s.first_id);
    let log = ChannelLog::recovered(dir, infos, last_id, closed_id);
    let recovered = Recovered {
        name,
        bounds: Bounds {
            first_id,
            last_id,
            closed_id,
        },
        tail,
    };
    Ok(Some((log, recovered)))
}

/// Scans a channel's last segment, cutting a torn tail (a write that was never
/// acknowledged) and reporting other damage.
fn scan_last_segment(path: &Path, damage: Damage<'_>) -> Result<Scan, StorageError> {
    let scan = segment::scan_file(path).map_err(|e| StorageError::io(path, e))?;
    if scan.damaged.is_empty() {
        return Ok(scan);
    }
    if !scan.only_torn_tail() {
        damage.report(path, scan.damaged.len());
        return Ok(scan);
    }
    if !damage.quiet {
        warn!(
            "storage: {}: cutting a torn tail at byte {} (the write was never acknowledged)",
            path.display(),
            scan.good_end
        );
    }
    fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|f| f.set_len(scan.good_end as u64).and_then(|()| f.sync_all()))
        .map_err(|e| StorageError::io(path, e))?;
    Ok(scan)
}

/// What the writer knows of sealed segments: first id, size, last write.
fn segment_infos(segments: &[(u64, PathBuf)]) -> Result<VecDeque<SegmentInfo>, StorageError> {
    segments
        .iter()
        .map(|(first_id, path)| {
            let meta = fs::metadata(path).map_err(|e| StorageError::io(path, e))?;
            Ok(SegmentInfo {
                first_id: *first_id,
                bytes: meta.len(),
                last_write_ms: modified_ms(&meta),
            })
        })
        .collect()
}

/// The channel's newest `keep` events, oldest first: from the last segment's
/// `events`, then back through the sealed `segments` (oldest first) as needed. Only
/// the unbroken newest run is kept: a replica's ids must be consecutive.
fn newest_events(
    name: &Arc<str>,
    events: &[&Record],
    mut segments: Vec<(u64, PathBuf)>,
    keep: usize,
    damage: Damage<'_>,
) -> Result<Vec<Arc<Event>>, StorageError> {
    let mut tail: Vec<Arc<Event>> = events
        .iter()
        .rev()
        .take(keep)
        .filter_map(|r| r.to_event(name))
        .collect();
    while tail.len() < keep {
        let Some((_, path)) = segments.pop() else {
            break;
        };
        let scan = segment::scan_file(&path).map_err(|e| StorageError::io(&path, e))?;
        if !scan.damaged.is_empty() {
            damage.report(&path, scan.damaged.len());
        }
        let more = keep - tail.len();
        tail.extend(
            scan.records
                .iter()
                .rev()
                .filter(|r| r.tag != Tag::SegmentHeader)
                .take(more)
                .filter_map(|r| r.to_event(name)),
        );
    }
    tail.reverse();
    if let Some(cut) = tail.windows(2).rposition(|w| w[1].id != w[0].id + 1) {
        tail.drain(..=cut);
    }
    Ok(tail)
}

fn modified_ms(meta: &fs::Metadata) -> u64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis() as u64)
}
