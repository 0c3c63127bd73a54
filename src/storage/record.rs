//! The bytes of a segment file: fixed 4 KiB blocks of fragments, each fragment framed
//! with a checksum, its length, its kind and the id of the record it carries.
//!
//! ```text
//! fragment = crc32:u32 | len:u16 | kind:u8 | id:u64 | payload[len]      (all little-endian)
//! record   = tag:u8 | at_ms:u64 | data                                 (split over fragments)
//! ```
//!
//! A record that does not fit in what is left of a block continues in the next one
//! (`FIRST`, `MIDDLE`..., `LAST`); a block's last bytes too few for a fragment header
//! and one payload byte are zeros. The checksum covers everything after itself, so a
//! torn or flipped byte anywhere in a fragment is found, and because fragments never
//! cross a block boundary a reader that meets damage resumes at the next block.
//!
//! Why 4 KiB: it is the page size and the file system's block, so a torn write at a
//! power cut damages whole blocks of ours and no more; it keeps the per-block header
//! cost of a 64 KiB message at 16 fragments (1 KiB blocks would take 64); and it bounds
//! what one bad block loses to a few dozen typical events.

/// Bytes in a block.
use std::sync::Arc;

use crate::channel::Event;

pub const BLOCK: usize = 4096;
/// Bytes of a fragment header.
pub const HEADER: usize = 15;
/// Bytes of a record's own header (tag and time) before its data.
pub const RECORD_HEADER: usize = 9;

/// Fragment kinds.
const FULL: u8 = 1;
const FIRST: u8 = 2;
const MIDDLE: u8 = 3;
const LAST: u8 = 4;

/// What a record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tag {
    /// A published message; `data` is its body.
    Message,
    /// The channel's close marker; no data.
    Close,
    /// The first record of every segment: `data` is the segment header.
    SegmentHeader,
}

impl Tag {
    fn byte(self) -> u8 {
        match self {
            Tag::Message => 0,
            Tag::Close => 1,
            Tag::SegmentHeader => 0xF0,
        }
    }

    fn from_byte(byte: u8) -> Option<Tag> {
        match byte {
            0 => Some(Tag::Message),
            1 => Some(Tag::Close),
            0xF0 => Some(Tag::SegmentHeader),
            _ => None,
        }
    }
}

/// A whole record read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub id: u64,
    pub tag: Tag,
    /// Wall-clock milliseconds when it was written (for retention by age).
    pub at_ms: u64,
    pub data: Vec<u8>,
    /// Offset of its first fragment in the file.
    pub offset: usize,
    /// Offset just past its last fragment.
    pub end: usize,
}

impl Record {
    /// The event this record holds of `channel`, if it is one (a message whose data
    /// is UTF-8, or a close).
    pub fn to_event(&self, channel: &Arc<str>) -> Option<Arc<Event>> {
        match self.tag {
            Tag::Message => std::str::from_utf8(&self.data)
                .ok()
                .map(|data| Arc::new(Event::message(channel.clone(), self.id, data))),
            Tag::Close => Some(Arc::new(Event::close_marker(channel.clone(), self.id))),
            Tag::SegmentHeader => None,
        }
    }
}

/// Appends the fragments of one record to `out`, which will be written at file offset
/// `offset`. Returns the file offset after it.
pub fn encode(
    out: &mut Vec<u8>,
    offset: usize,
    id: u64,
    tag: Tag,
    at_ms: u64,
    data: &[u8],
) -> usize {
    let mut head = [0u8; RECORD_HEADER];
    head[0] = tag.byte();
    head[1..].copy_from_slice(&at_ms.to_le_bytes());
    let total = RECORD_HEADER + data.len();
    let mut pos = offset;
    let mut done = 0;
    let mut first = true;
    loop {
        let left_in_block = BLOCK - pos % BLOCK;
        if left_in_block < HEADER + 1 {
            out.resize(out.len() + left_in_block, 0);
            pos += left_in_block;
            continue;
        }
        let len = (total - done).min(left_in_block - HEADER);
        let last = done + len == total;
        let kind = match (first, last) {
            (true, true) => FULL,
            (true, false) => FIRST,
            (false, false) => MIDDLE,
            (false, true) => LAST,
        };
        let start = out.len();
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&(len as u16).to_le_bytes());
        out.push(kind);
        out.extend_from_slice(&id.to_le_bytes());
        if done < RECORD_HEADER {
            let from_head = (RECORD_HEADER - done).min(len);
            out.extend_from_slice(&head[done..done + from_head]);
            let from_data = len - from_head;
            out.extend_from_slice(&data[..from_data]);
        } else {
            out.extend_from_slice(&data[done - RECORD_HEADER..done - RECORD_HEADER + len]);
        }
        let crc = crc32fast::hash(&out[start + 4..]);
        out[start..start + 4].copy_from_slice(&crc.to_le_bytes());
        pos += HEADER + len;
        done += len;
        first = false;
        if last {
            return pos;
        }
    }
}

/// What a scan of a segment's bytes found.
#[derive(Debug, Default)]
pub struct Scan {
    /// Every whole, checksummed record, in file order.
    pub records: Vec<Record>,
    /// Where damage was met (a bad checksum, an impossible length or kind, a fragment
    /// out of its record): the first such offset in each damaged block.
    pub damaged: Vec<usize>,
    /// Offset just past the last whole record (0 when none).
    pub good_end: usize,
}

impl Scan {
    /// Whether every damage lies after the last whole record: a torn tail, to be cut at
    /// `good_end`, rather than corruption among good records.
    pub fn only_torn_tail(&self) -> bool {
        self.damaged.iter().all(|&offset| offset >= self.good_end)
    }
}

/// Reads every record out of a segment's bytes, skipping to the next block at damage.
pub fn scan(bytes: &[u8]) -> Scan {
    let mut scan = Scan::default();
    let mut partial: Option<Record> = None;
    let mut pos = 0;
    let mut damage = |scan: &mut Scan, at: usize| {
        if scan
            .damaged
            .last()
            .is_none_or(|&last| last / BLOCK != at / BLOCK)
        {
            scan.damaged.push(at);
        }
    };
    while pos < bytes.len() {
        let left_in_block = BLOCK - pos % BLOCK;
        if left_in_block < HEADER + 1 {
            pos += left_in_block;
            continue;
        }
        let fragment = parse_fragment(&bytes[pos..], left_in_block);
        let Some((kind, id, payload)) = fragment else {
            damage(&mut scan, pos);
            partial = None;
            pos += left_in_block;
            continue;
        };
        let start = pos;
        pos += HEADER + payload.len();
        match (kind, partial.take()) {
            (FULL | FIRST, previous) => {
                if previous.is_some() {
                    damage(&mut scan, start);
                }
                let record = Record {
                    id,
                    tag: Tag::Message,
                    at_ms: 0,
                    data: payload.to_vec(),
                    offset: start,
                    end: pos,
                };
                if kind == FULL {
                    finish(&mut scan, record, start, &mut damage);
                } else {
                    partial = Some(record);
                }
            }
            (MIDDLE | LAST, Some(mut record)) if record.id == id => {
                record.data.extend_from_slice(payload);
                record.end = pos;
                if kind == LAST {
                    finish(&mut scan, record, start, &mut damage);
                } else {
                    partial = Some(record);
                }
            }
            _ => damage(&mut scan, start),
        }
    }
    scan
}

/// Turns the reassembled payload of a record into its tag, time and data.
fn finish(
    scan: &mut Scan,
    mut record: Record,
    at: usize,
    damage: &mut impl FnMut(&mut Scan, usize),
) {
    let tag = record.data.first().copied().and_then(Tag::from_byte);
    match (tag, record.data.get(1..RECORD_HEADER)) {
        (Some(tag), Some(time)) => {
            record.tag = tag;
            record.at_ms = u64::from_le_bytes(time.try_into().expect("8 bytes"));
            record.data.drain(..RECORD_HEADER);
            scan.good_end = record.end;
            scan.records.push(record);
        }
        _ => damage(scan, at),
    }
}

/// The kind, id and payload of the fragment at the start of `bytes`, if it is whole,
/// fits in the `left_in_block` bytes of its block and its checksum holds.
fn parse_fragment(bytes: &[u8], left_in_block: usize) -> Option<(u8, u64, &[u8])> {
    let header = bytes.get(..HEADER)?;
    let crc = u32::from_le_bytes(header[0..4].try_into().ok()?);
    let len = u16::from_le_bytes(header[4..6].try_into().ok()?) as usize;
    let kind = header[6];
    let id = u64::from_le_bytes(header[7..15].try_into().ok()?);
    if !(FULL..=LAST).contains(&kind) || HEADER + len > left_in_block {
        return None;
    }
    let whole = bytes.get(..HEADER + len)?;
    if crc32fast::hash(&whole[4..]) != crc {
        return None;
    }
    Some((kind, id, &whole[HEADER..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn write(records: &[(u64, Vec<u8>)]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut offset = 0;
        for (id, data) in records {
            offset = encode(&mut out, offset, *id, Tag::Message, 7, data);
            assert_eq!(offset, out.len());
        }
        out
    }

    #[test]
    fn small_records_round_trip() {
        let bytes = write(&[(1, b"hello".to_vec()), (2, Vec::new())]);
        let scan = scan(&bytes);
        assert!(scan.damaged.is_empty());
        assert_eq!(scan.good_end, bytes.len());
        let got: Vec<_> = scan
            .records
            .iter()
            .map(|r| (r.id, r.data.clone(), r.at_ms))
            .collect();
        assert_eq!(got, [(1, b"hello".to_vec(), 7), (2, Vec::new(), 7)]);
    }

    #[test]
    fn a_record_larger_than_a_block_spans_blocks() {
        let big: Vec<u8> = (0..20_000u32).map(|i| i as u8).collect();
        let bytes = write(&[(1, b"x".to_vec()), (2, big.clone()), (3, b"y".to_vec())]);
        assert!(bytes.len() > 4 * BLOCK);
        let scan = scan(&bytes);
        assert!(scan.damaged.is_empty());
        assert_eq!(scan.records[1].data, big);
        assert_eq!(scan.records[2].id, 3);
    }

    #[test]
    fn a_torn_tail_is_found_after_the_last_whole_record() {
        let big = vec![b'z'; 6000];
        let bytes = write(&[(1, b"a".to_vec()), (2, big)]);
        for cut in [bytes.len() - 1, BLOCK + 3, 40] {
            let scan = scan(&bytes[..cut]);
            assert_eq!(scan.records.len(), 1, "cut at {cut}");
            assert_eq!(scan.good_end, scan.records[0].end);
            assert!(scan.only_torn_tail());
        }
    }

    #[test]
    fn a_flipped_byte_in_the_middle_is_damage_among_good_records() {
        let records: Vec<_> = (1..=200).map(|id| (id, vec![b'm'; 100])).collect();
        let mut bytes = write(&records);
        bytes[BLOCK + 50] ^= 1;
        let scan = scan(&bytes);
        assert_eq!(scan.damaged.len(), 1);
        assert_eq!(scan.damaged[0] / BLOCK, 1);
        assert!(!scan.only_torn_tail());
        let ids: Vec<u64> = scan.records.iter().map(|r| r.id).collect();
        assert!(ids.len() < 200 && ids.len() > 150);
        assert_eq!(
            *ids.last().unwrap(),
            200,
            "records after the bad block are read"
        );
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
    }

    proptest! {
        #[test]
        fn whatever_the_bytes_scan_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..9000)) {
            let _ = scan(&bytes);
        }

        #[test]
        fn any_prefix_yields_a_prefix_of_the_records(
            sizes in proptest::collection::vec(0usize..5000, 1..12),
            cut in 0usize..60_000,
        ) {
            let records: Vec<_> = sizes.iter().enumerate().map(|(i, &n)| (i as u64 + 1, vec![i as u8; n])).collect();
            let bytes = write(&records);
            let cut = cut.min(bytes.len());
            let scan = scan(&bytes[..cut]);
            prop_assert!(scan.only_torn_tail());
            for (record, (id, data)) in scan.records.iter().zip(&records) {
                prop_assert_eq!(record.id, *id);
                prop_assert_eq!(&record.data, data);
            }
            let whole = records.len();
            prop_assert!(scan.records.len() < whole || cut == bytes.len());
        }
    }
}
