//! A connection's pending output: shared `Bytes` written with vectored writes.
//!
//! The common case costs no allocation: when nothing is pending, `write_through` hands
//! the pieces of a frame (a per-connection head from the loop's scratch buffer, the
//! shared frame, a constant tail) straight to `writev`, and only what the socket did
//! not take is kept, shared pieces by reference count and borrowed ones by copy. Once
//! something is pending, new output queues behind it in order.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};

use bytes::{Buf, Bytes};

/// Most slices handed to one `writev`.
const MAX_IOVECS: usize = 64;

/// One piece of output: borrowed bytes (copied only if they must wait) or a shared
/// frame (never copied).
#[derive(Debug, Clone, Copy)]
pub enum Piece<'a> {
    Copy(&'a [u8]),
    Share(&'a Bytes),
}

impl Piece<'_> {
    fn as_slice(&self) -> &[u8] {
        match self {
            Piece::Copy(bytes) => bytes,
            Piece::Share(bytes) => bytes,
        }
    }
}

/// Output waiting for the socket to take it, oldest first.
#[derive(Debug, Default)]
pub struct WriteQueue {
    chunks: VecDeque<Bytes>,
    /// Bytes in `chunks`.
    pending: usize,
}

impl WriteQueue {
    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.pending == 0
    }

    /// Bytes waiting.
    pub fn pending(&self) -> usize {
        self.pending
    }

    /// Queues `pieces` behind what waits, without writing.
    pub fn push(&mut self, pieces: &[Piece<'_>]) {
        for piece in pieces {
            self.push_one(piece, 0);
        }
    }

    fn push_one(&mut self, piece: &Piece<'_>, skip: usize) {
        let bytes = match piece {
            Piece::Copy(bytes) if bytes.len() > skip => Bytes::copy_from_slice(&bytes[skip..]),
            Piece::Share(bytes) if bytes.len() > skip => bytes.slice(skip..),
            _ => return,
        };
        self.pending += bytes.len();
        self.chunks.push_back(bytes);
    }

    /// Writes `pieces` at once if nothing waits, and queues what the socket did not
    /// take; otherwise queues them and flushes. Returns the bytes written now.
    pub fn write_through<W: Write>(
        &mut self,
        io: &mut W,
        pieces: &[Piece<'_>],
    ) -> io::Result<usize> {
        if !self.is_empty() {
            self.push(pieces);
            return self.flush(io);
        }
        let mut written_total = 0;
        let mut first = 0; // index of the first piece not wholly written
        let mut offset = 0; // bytes of it already written
        while first < pieces.len() {
            let mut slices = [IoSlice::new(&[]); 8];
            let mut count = 0;
            for (i, piece) in pieces[first..].iter().take(slices.len()).enumerate() {
                let bytes = piece.as_slice();
                slices[count] = IoSlice::new(if i == 0 { &bytes[offset..] } else { bytes });
                count += 1;
            }
            match io.write_vectored(&slices[..count]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(mut written) => {
                    written_total += written;
                    while first < pieces.len() && written > 0 {
                        let left = pieces[first].as_slice().len() - offset;
                        if written >= left {
                            written -= left;
                            first += 1;
                            offset = 0;
                        } else {
                            offset += written;
                            written = 0;
                        }
                    }
                    // Skip empty pieces so the loop ends.
                    while first < pieces.len() && pieces[first].as_slice().len() == offset {
                        first += 1;
                        offset = 0;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        if first < pieces.len() {
            self.push_one(&pieces[first], offset);
            for piece in &pieces[first + 1..] {
                self.push_one(piece, 0);
            }
        }
        Ok(written_total)
    }

    /// Writes what waits until the socket takes no more. Returns the bytes written.
    pub fn flush<W: Write>(&mut self, io: &mut W) -> io::Result<usize> {
        let mut written_total = 0;
        while !self.chunks.is_empty() {
            let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
            let count = self.chunks.len().min(MAX_IOVECS);
            for (slot, chunk) in slices.iter_mut().zip(self.chunks.iter()) {
                *slot = IoSlice::new(chunk);
            }
            match io.write_vectored(&slices[..count]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(written) => {
                    written_total += written;
                    self.consume(written);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        if self.chunks.is_empty() && self.chunks.capacity() > 8 {
            // A burst is over: give back the ring so an idle subscriber stays small.
            self.chunks = VecDeque::new();
        }
        Ok(written_total)
    }

    fn consume(&mut self, mut written: usize) {
        self.pending -= written;
        while written > 0 {
            let Some(front) = self.chunks.front_mut() else {
                break;
            };
            if written >= front.len() {
                written -= front.len();
                self.chunks.pop_front();
            } else {
                front.advance(written);
                written = 0;
            }
        }
    }

    /// Drops everything pending (the connection is going away).
    pub fn clear(&mut self) {
        self.chunks = VecDeque::new();
        self.pending = 0;
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A socket that takes at most `per_write` bytes per call, then `WouldBlock` once
    /// `budget` is spent: partial writes everywhere.
    #[derive(Debug)]
    pub struct StingySocket {
        pub written: Vec<u8>,
        pub per_write: usize,
        pub budget: usize,
    }

    impl Write for StingySocket {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.write_vectored(&[IoSlice::new(buf)])
        }

        fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            take_stingily(bufs, self.per_write, &mut self.budget, &mut self.written)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// Takes at most `per_write` bytes of `bufs` into `out`, and no more than
    /// `budget` in all (then `WouldBlock`): a socket whose buffer is nearly full.
    pub fn take_stingily(
        bufs: &[IoSlice<'_>],
        per_write: usize,
        budget: &mut usize,
        out: &mut Vec<u8>,
    ) -> io::Result<usize> {
        if *budget == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let mut allowed = per_write.min(*budget);
        let mut taken = 0;
        for buf in bufs {
            let n = buf.len().min(allowed);
            out.extend_from_slice(&buf[..n]);
            allowed -= n;
            taken += n;
            if allowed == 0 {
                break;
            }
        }
        *budget -= taken;
        Ok(taken)
    }

    #[test]
    fn write_through_keeps_exactly_what_the_socket_refused() {
        let shared = Bytes::from_static(b"SHARED-FRAME");
        for budget in 0..=30 {
            for per_write in 1..=7 {
                let mut socket = StingySocket {
                    written: Vec::new(),
                    per_write,
                    budget,
                };
                let mut queue = WriteQueue::default();
                let pieces = [
                    Piece::Copy(b"head:"),
                    Piece::Share(&shared),
                    Piece::Copy(b""),
                    Piece::Copy(b";tail"),
                ];
                let now = queue.write_through(&mut socket, &pieces).unwrap();
                assert_eq!(now, socket.written.len());
                assert_eq!(now + queue.pending(), 22);
                socket.budget = usize::MAX;
                queue.flush(&mut socket).unwrap();
                assert!(queue.is_empty());
                assert_eq!(
                    socket.written, b"head:SHARED-FRAME;tail",
                    "budget {budget} per {per_write}"
                );
            }
        }
    }

    #[test]
    fn later_output_queues_behind_earlier() {
        let mut socket = StingySocket {
            written: Vec::new(),
            per_write: 3,
            budget: 4,
        };
        let mut queue = WriteQueue::default();
        queue
            .write_through(&mut socket, &[Piece::Copy(b"first ")])
            .unwrap();
        queue
            .write_through(&mut socket, &[Piece::Copy(b"second")])
            .unwrap();
        assert_eq!(socket.written, b"firs");
        socket.budget = usize::MAX;
        queue.flush(&mut socket).unwrap();
        assert_eq!(socket.written, b"first second");
    }

    #[test]
    fn shared_pieces_are_not_copied_when_queued() {
        let shared = Bytes::from(vec![7u8; 1000]);
        let mut queue = WriteQueue::default();
        queue.push(&[Piece::Share(&shared)]);
        let queued = queue.chunks.front().unwrap();
        assert_eq!(
            queued.as_ptr(),
            shared.as_ptr(),
            "queued frame points at the shared buffer"
        );
    }
}
