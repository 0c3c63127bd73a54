//! The durable storage's reader, used by the catch-up thread while the admin thread writes:
//! it trusts only whole, checksummed records, reads only up to ids the caller knows are
//! stored, and reports damaged blocks rather than serving them.

use std::collections::VecDeque;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use log::error;

use super::disk::{list_segments, to_event};
use super::{layout, segment, StorageReader, Stored};
use crate::channel::Event;
use crate::stats::{add, Stats};

/// Segments decoded recently, kept by the reader: a subscriber catching up reads one
/// segment in several requests.
const CACHED_SEGMENTS: usize = 4;

/// A segment's events, decoded.
#[derive(Debug)]
struct CachedSegment {
    path: PathBuf,
    /// The file's length when decoded (the last segment grows).
    len: u64,
    /// Its events, by id; ids missing from a run were in damaged blocks.
    events: Vec<Arc<Event>>,
}

/// Reads the log from the catch-up thread.
#[derive(Debug)]
pub struct DiskReader {
    root: PathBuf,
    stats: Arc<Stats>,
    cache: VecDeque<CachedSegment>,
    /// Segments the last read left owed, nearest last: `read_ahead` decodes them.
    ahead: Vec<(Arc<str>, PathBuf)>,
}

impl DiskReader {
    pub fn new(root: &Path, stats: Arc<Stats>) -> DiskReader {
        DiskReader {
            root: root.to_path_buf(),
            stats,
            cache: VecDeque::new(),
            ahead: Vec::new(),
        }
    }

    /// How many segments are decoded and kept.
    #[cfg(test)]
    pub(crate) fn decoded_segments(&self) -> usize {
        self.cache.len()
    }

    /// Whether the segment at `path` is decoded, as long as it is now.
    fn is_cached(&self, path: &Path) -> bool {
        fs::metadata(path).is_ok_and(|meta| {
            self.cache
                .iter()
                .any(|c| c.path == path && c.len == meta.len())
        })
    }

    /// The events of the segment at `path`, decoded or from the cache; `None` when
    /// the file is gone (retention deleted it).
    fn segment_events(&mut self, channel: &Arc<str>, path: &Path) -> Option<usize> {
        let len = fs::metadata(path).ok()?.len();
        if let Some(i) = self
            .cache
            .iter()
            .position(|c| c.path == path && c.len == len)
        {
            return Some(i);
        }
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
        let events = scan
            .records
            .iter()
            .filter_map(|r| to_event(channel, r))
            .collect();
        if self.cache.len() == CACHED_SEGMENTS {
            self.cache.pop_front();
        }
        self.cache.push_back(CachedSegment {
            path: path.to_path_buf(),
            len,
            events,
        });
        Some(self.cache.len() - 1)
    }
}

impl StorageReader for DiskReader {
    fn read_after(&mut self, channel: &str, cursor: u64, to: u64, max_bytes: usize) -> Vec<Stored> {
        let mut out = Vec::new();
        if cursor >= to {
            return out;
        }
        let dir = layout::channel_dir(&self.root, channel);
        let mut ids = list_segments(&dir).unwrap_or_default();
        ids.sort_unstable();
        let name: Arc<str> = Arc::from(channel);
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
            let Some(at) = self.segment_events(&name, &path) else {
                continue;
            };
            let events = &self.cache[at].events;
            let from = events.partition_point(|e| e.id < next);
            for event in &events[from..] {
                if event.id > to || bytes >= max_bytes {
                    break;
                }
                if event.id > next {
                    out.push(Stored::Gap {
                        from: next,
                        to: event.id - 1,
                    });
                }
                bytes += event.data_len + 1;
                next = event.id + 1;
                out.push(Stored::Event(event.clone()));
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
        }
        // Owed more: the segment that holds the next event, and the one after it.
        self.ahead.clear();
        if next <= to {
            let at = ids
                .partition_point(|&first| first <= next)
                .saturating_sub(1);
            for &first_id in ids.iter().skip(at).take(2).rev() {
                let path = dir.join(layout::segment_file(first_id));
                self.ahead.push((name.clone(), path));
            }
        }
        out
    }

    fn read_ahead(&mut self) -> bool {
        while let Some((channel, path)) = self.ahead.pop() {
            if !self.is_cached(&path) {
                self.segment_events(&channel, &path);
                return true;
            }
        }
        false
    }
}
