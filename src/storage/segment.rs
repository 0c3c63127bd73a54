//! One segment file of a channel: created with its header record, appended to at its
//! end, and read back whole. Appends are gathered and written together (`flush`): the
//! write-ahead log (`wal.rs`) holds them until then, and the log (`disk.rs`) says when.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::record::{self, Scan, Tag, BLOCK, HEADER};
use super::{layout, StorageError};

/// A segment open for appending.
#[derive(Debug)]
pub struct SegmentWriter {
    file: File,
    path: PathBuf,
    /// Bytes of whole records, written or gathered; the next record goes here.
    end: usize,
    /// Bytes written to the file.
    written: usize,
    /// Records gathered since the last flush, to go at `written`.
    pending: Vec<u8>,
    /// How many records `pending` holds.
    pending_records: usize,
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
        let mut bytes = Vec::new();
        let header = layout::segment_header(channel);
        let end = record::encode(&mut bytes, 0, first_id, Tag::SegmentHeader, 0, &header);
        file.write_all_at(&bytes, 0)?;
        Ok(SegmentWriter::at(file, path, end))
    }

    /// Opens an existing segment whose whole records end at `end` (recovery has cut
    /// anything after it).
    pub fn reopen(path: PathBuf, end: usize) -> io::Result<SegmentWriter> {
        let file = OpenOptions::new().write(true).read(true).open(&path)?;
        Ok(SegmentWriter::at(file, path, end))
    }

    fn at(file: File, path: PathBuf, end: usize) -> SegmentWriter {
        SegmentWriter {
            file,
            path,
            end,
            written: end,
            pending: Vec::new(),
            pending_records: 0,
        }
    }

    /// Gathers one record; it reaches the file at the next `flush`.
    pub fn append(&mut self, id: u64, tag: Tag, at_ms: u64, data: &[u8]) {
        self.end = record::encode(&mut self.pending, self.end, id, tag, at_ms, data);
        self.pending_records += 1;
    }

    /// Records gathered and not yet written.
    pub fn pending_records(&self) -> usize {
        self.pending_records
    }

    /// Bytes gathered and not yet written.
    pub fn pending_bytes(&self) -> usize {
        self.pending.len()
    }

    /// Writes what was gathered, in one write.
    pub fn flush(&mut self) -> Result<(), StorageError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.file
            .write_all_at(&self.pending, self.written as u64)
            .map_err(|e| StorageError::io(&self.path, e))?;
        self.written = self.end;
        self.pending.clear();
        self.pending_records = 0;
        Ok(())
    }

    /// Bytes of whole records in the segment, gathered ones included: where the next
    /// one goes.
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
