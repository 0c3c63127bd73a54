//! The durable storage's reader, used by the catch-up thread while the admin thread writes:
//! it trusts only whole, checksummed records, reads only up to ids the caller knows are
//! stored, and reports damaged blocks rather than serving them.

use std::collections::VecDeque;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use log::error;

use super::record::{Record, Tag};
use super::recovery::list_segments;
use super::{layout, segment, StorageReader, Stored};
use crate::stats::{add, Stats};

/// Segments read recently, kept by the reader: a subscriber catching up reads one
/// segment in several requests.
const CACHED_SEGMENTS: usize = 4;

/// A segment's records, checked, by id; ids missing from a run were in damaged blocks.
/// Events are made from them only when asked for: a segment's events, in every form a
/// transport sends, take several times its bytes.
#[derive(Debug)]
struct CachedSegment {
    path: PathBuf,
    /// The file's length when read (the last segment grows).
    len: u64,
    /// Its messages and close marker.
    records: Vec<Record>,
}

/// A request: the events of `channel` after `cursor` up to `to`, about `max_bytes`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Request {
    channel: Arc<str>,
    cursor: u64,
    to: u64,
    max_bytes: usize,
}

/// Reads the log from the catch-up thread.
#[derive(Debug)]
pub struct DiskReader {
    root: PathBuf,
    stats: Arc<Stats>,
    cache: VecDeque<CachedSegment>,
    /// The request the last answer leads to, when it left events owed: `read_ahead`
    /// prepares its answer and reads the segment after.
    next: Option<Request>,
    /// The answer `read_ahead` prepared for `next`.
    prepared: Option<(Request, Vec<Stored>)>,
}

impl DiskReader {
    pub fn new(root: &Path, stats: Arc<Stats>) -> DiskReader {
        DiskReader {
            root: root.to_path_buf(),
            stats,
            cache: VecDeque::new(),
            next: None,
            prepared: None,
        }
    }

    /// How many segments are read and kept.
    #[cfg(test)]
    pub(crate) fn cached_segments(&self) -> usize {
        self.cache.len()
    }

    /// Whether an answer is prepared.
    #[cfg(test)]
    pub(crate) fn has_prepared(&self) -> bool {
        self.prepared.is_some()
    }

    /// Where the cache holds the segment at `path` as read at length `len`.
    fn cached(&self, path: &Path, len: u64) -> Option<usize> {
        self.cache
            .iter()
            .position(|c| c.path == path && c.len == len)
    }

    /// The records of the segment at `path`, read or from the cache; `None` when the
    /// file is gone (retention deleted it).
    fn segment_records(&mut self, path: &Path) -> Option<usize> {
        let len = fs::metadata(path).ok()?.len();
        self.cached(path, len)
            .or_else(|| self.read_segment(path, len))
    }

    /// Reads the segment at `path`, `len` bytes long now, into the cache.
    fn read_segment(&mut self, path: &Path, len: u64) -> Option<usize> {
        self.cache.retain(|c| c.path != path);
        let scan = match segment::scan_file(path) {
            Ok(scan) => scan,
            Err(e) => {
                error!("storage: cannot read {}: {e}", path.display());
                return None;
            }
        };
        // Damage after the last whole record of the segment being written is a
        // write in progress, not damage.
        let damaged = scan
            .damaged
            .iter()
            .filter(|&&at| at < scan.good_end)
            .count();
        if damaged > 0 {
            error!(
                "storage: {}: {damaged} damaged block(s) not served",
                path.display()
            );
            add(&self.stats.admin.damaged_blocks, damaged as u64);
        }
        let mut records = scan.records;
        records.retain(|r| matches!(r.tag, Tag::Message | Tag::Close));
        if self.cache.len() == CACHED_SEGMENTS {
            self.cache.pop_front();
        }
        self.cache.push_back(CachedSegment {
            path: path.to_path_buf(),
            len,
            records,
        });
        Some(self.cache.len() - 1)
    }

    /// The channel's segments (their first ids, in order), and its directory.
    fn segments(&self, channel: &str) -> (PathBuf, Vec<u64>) {
        let dir = layout::channel_dir(&self.root, channel);
        let mut ids = list_segments(&dir).unwrap_or_default();
        ids.sort_unstable();
        (dir, ids)
    }

    /// Answers `request` from the segments; returns the answer and the first id it
    /// leaves owed.
    fn answer(&mut self, request: &Request) -> (Vec<Stored>, u64) {
        let Request {
            channel,
            cursor,
            to,
            max_bytes,
        } = request;
        let (to, max_bytes) = (*to, *max_bytes);
        let mut out = Vec::new();
        let (dir, ids) = self.segments(channel);
        let mut next = cursor + 1;
        let mut bytes = 0;
        let start = ids
            .partition_point(|&first| first <= next)
            .saturating_sub(1);
        for (i, &first_id) in ids.iter().enumerate().skip(start) {
            if next > to || bytes >= max_bytes {
                break;
            }
            if first_id > next {
                out.push(Stored::Gap {
                    from: next,
                    to: (first_id - 1).min(to),
                });
                next = first_id;
                if next > to {
                    break;
                }
            }
            let path = dir.join(layout::segment_file(first_id));
            let Some(at) = self.segment_records(&path) else {
                continue;
            };
            let records = &self.cache[at].records;
            let from = records.partition_point(|r| r.id < next);
            for record in &records[from..] {
                if record.id > to || bytes >= max_bytes {
                    break;
                }
                // A message that is not UTF-8 is not served: a gap, like damage.
                let Some(event) = record.to_event(channel) else {
                    continue;
                };
                if record.id > next {
                    out.push(Stored::Gap {
                        from: next,
                        to: record.id - 1,
                    });
                }
                bytes += record.data.len() + 1;
                next = record.id + 1;
                out.push(Stored::Event(event));
            }
            let segment_end = ids.get(i + 1).map_or(to + 1, |&n| n);
            if bytes < max_bytes && next < segment_end.min(to + 1) && ids.get(i + 1).is_some() {
                // The segment ended before the next begins: its last records were damaged.
                out.push(Stored::Gap {
                    from: next,
                    to: segment_end.min(to + 1) - 1,
                });
                next = segment_end;
            }
        }
        if out.is_empty() {
            out.push(Stored::Gap {
                from: cursor + 1,
                to,
            });
            next = to + 1;
        }
        (out, next)
    }

    /// Reads the segment that holds `id` (`skip` 0) or the one after it (`skip` 1), if
    /// it is not read yet; returns whether it read one.
    fn read_segment_of(&mut self, channel: &str, id: u64, skip: usize) -> bool {
        let (dir, ids) = self.segments(channel);
        let at = ids.partition_point(|&first| first <= id).saturating_sub(1) + skip;
        let Some(&first_id) = ids.get(at) else {
            return false;
        };
        let path = dir.join(layout::segment_file(first_id));
        let Ok(meta) = fs::metadata(&path) else {
            return false;
        };
        if self.cached(&path, meta.len()).is_some() {
            return false;
        }
        self.read_segment(&path, meta.len());
        true
    }
}

impl StorageReader for DiskReader {
    fn read_after(&mut self, channel: &str, cursor: u64, to: u64, max_bytes: usize) -> Vec<Stored> {
        if cursor >= to {
            return Vec::new();
        }
        let request = Request {
            channel: Arc::from(channel),
            cursor,
            to,
            max_bytes,
        };
        self.next = None;
        // A prepared answer serves a request for more (`to` grows as events are
        // published): it is all stored, and stops short of `to` at worst.
        let (items, next) = match self.prepared.take() {
            Some((asked, items))
                if asked.channel == request.channel
                    && (asked.cursor, asked.max_bytes) == (cursor, max_bytes)
                    && asked.to <= to =>
            {
                let next = match items.last() {
                    Some(Stored::Event(event)) => event.id + 1,
                    Some(Stored::Gap { to, .. }) => to + 1,
                    None => cursor + 1,
                };
                (items, next)
            }
            _ => self.answer(&request),
        };
        if next <= to {
            self.next = Some(Request {
                cursor: next - 1,
                ..request
            });
        }
        items
    }

    fn read_ahead(&mut self) -> bool {
        let Some(next) = self.next.clone() else {
            return false;
        };
        let owed = next.cursor + 1;
        if self.read_segment_of(&next.channel, owed, 0) {
            return true;
        }
        if self.prepared.is_none() {
            let (items, _) = self.answer(&next);
            self.prepared = Some((next, items));
            return true;
        }
        self.next = None;
        self.read_segment_of(&next.channel, owed, 1)
    }
}
