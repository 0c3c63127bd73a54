//! One segment file of a channel: created with its header record, appended to at its
//! end with positioned writes, and read back whole. Syncing is the log's (`disk.rs`):
//! a writer only says whether it was written since the last sync plan.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::layout;
use super::record::{self, Scan, Tag, BLOCK, HEADER};

/// A segment open for appending.
#[derive(Debug)]
pub struct SegmentWriter {
    /// Shared with sync plans, which may outlive the writer.
    file: Arc<File>,
    path: PathBuf,
    /// Bytes of whole records in it; the next record goes here.
    end: usize,
    /// Appended to since the last sync plan.
    unsynced: bool,
}

impl SegmentWriter {
    /// Creates the segment of `channel` whose first id is `first_id` in `dir`, with its
    /// header record written. A file left there by a torn creation is replaced.
    pub fn create(dir: &Path, channel: &str, first_id: u64) -> io::Result<SegmentWriter> {
        let path = dir.join(layout::segment_file(first_id));
        let file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .read(true)
            .open(&path)?;
        // The header is not counted as unsynced: creating the file changed its
        // directory, and a plan that syncs a directory syncs the whole file system.
        let mut segment = SegmentWriter {
            file: Arc::new(file),
            path,
            end: 0,
            unsynced: false,
        };
        let mut bytes = Vec::new();
        let header = layout::segment_header(channel);
        let end = record::encode(&mut bytes, 0, first_id, Tag::SegmentHeader, 0, &header);
        segment.file.write_all_at(&bytes, 0)?;
        segment.end = end;
        Ok(segment)
    }

    /// Opens an existing segment whose whole records end at `end` (recovery has cut
    /// anything after it).
    pub fn reopen(path: PathBuf, end: usize) -> io::Result<SegmentWriter> {
        let file = OpenOptions::new().write(true).read(true).open(&path)?;
        Ok(SegmentWriter {
            file: Arc::new(file),
            path,
            end,
            unsynced: false,
        })
    }

    /// Appends one record, encoded in `scratch`. Returns whether it is the first
    /// append since the last sync plan (so the log counts the file unsynced once).
    pub fn append(
        &mut self,
        scratch: &mut Vec<u8>,
        id: u64,
        tag: Tag,
        at_ms: u64,
        data: &[u8],
    ) -> io::Result<bool> {
        scratch.clear();
        let end = record::encode(scratch, self.end, id, tag, at_ms, data);
        self.file.write_all_at(scratch, self.end as u64)?;
        self.end = end;
        Ok(!std::mem::replace(&mut self.unsynced, true))
    }

    /// Notes that a sync plan now covers what was appended.
    pub fn planned(&mut self) {
        self.unsynced = false;
    }

    /// The open file, for a sync plan.
    pub fn file(&self) -> &Arc<File> {
        &self.file
    }

    /// Bytes of whole records in the segment: where the next one goes.
    pub fn end(&self) -> usize {
        self.end
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// What the start of a segment says.
#[derive(Debug, PartialEq, Eq)]
pub enum Header {
    /// A whole header naming this channel, for a segment starting at this id.
    Valid { channel: String, first_id: u64 },
    /// Cut short or never written: a crash while the segment was being created.
    Torn,
    /// Whole but wrong: not ours, damaged, or another format.
    Bad(String),
}

/// Reads a segment's header record.
pub fn read_header(path: &Path) -> io::Result<Header> {
    let mut first = Vec::with_capacity(BLOCK);
    File::open(path)?
        .take(BLOCK as u64)
        .read_to_end(&mut first)?;
    if first.len() < HEADER || first.iter().all(|&b| b == 0) {
        return Ok(Header::Torn);
    }
    let declared = u16::from_le_bytes([first[4], first[5]]) as usize;
    if HEADER + declared > first.len() {
        return Ok(Header::Torn);
    }
    let scan = record::scan(&first[..HEADER + declared]);
    let Some(header) = scan.records.first().filter(|r| r.tag == Tag::SegmentHeader) else {
        return Ok(Header::Bad("the segment header record is damaged".into()));
    };
    match layout::parse_segment_header(&header.data) {
        Ok(channel) => Ok(Header::Valid {
            channel: channel.to_string(),
            first_id: header.id,
        }),
        Err(why) => Ok(Header::Bad(why)),
    }
}

/// Reads and scans a whole segment.
pub fn scan_file(path: &Path) -> io::Result<Scan> {
    let bytes = std::fs::read(path)?;
    Ok(record::scan(&bytes))
}
