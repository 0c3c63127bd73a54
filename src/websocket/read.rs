//! Client frames into messages (RFC 6455 sections 5.2 to 5.6). `Reader::read` takes
//! the frame at the start of a connection's input, unmasks it in place and says what
//! it is: a whole text message (where it lies in the input, or in the reader's buffer
//! when it came in fragments), a ping, a pong or a close. Everything PROTOCOL.md
//! closes a connection for is a `Violation` with its close code, found from the
//! frame's head before its payload is waited for, so an oversized frame is refused
//! without buffering it.

use std::ops::Range;

use super::{close, Opcode};

/// Bytes of the longest frame head: 2, 8 of length, 4 of mask.
pub const MAX_HEAD: usize = 14;

/// Why the connection ends, with the close code to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Violation {
    /// `1002`, with what was wrong.
    Protocol(&'static str),
    /// `1009`: a message over the limit.
    TooBig,
    /// `1007`: text (a message or a close reason) that is not UTF-8.
    NotUtf8,
}

impl Violation {
    /// The close code to send.
    pub fn code(self) -> u16 {
        match self {
            Violation::Protocol(_) => close::PROTOCOL_ERROR,
            Violation::TooBig => close::TOO_BIG,
            Violation::NotUtf8 => close::NOT_UTF8,
        }
    }

    /// A short reason for the close frame and the log.
    pub fn reason(self) -> &'static str {
        match self {
            Violation::Protocol(why) => why,
            Violation::TooBig => "message too big",
            Violation::NotUtf8 => "text is not UTF-8",
        }
    }
}

/// Where a complete text message is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextAt {
    /// In the input, unmasked, at this range (a message of one frame: not copied).
    Input(Range<usize>),
    /// In `Reader::assembled` (a message that came in fragments).
    Assembled,
}

/// What one frame was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// A complete text message, checked to be UTF-8.
    Text(TextAt),
    /// A fragment of a text message, kept; nothing to do yet.
    Fragment,
    /// A ping, with its payload at this range of the input (to echo in the pong).
    Ping(Range<usize>),
    /// A pong (ignored).
    Pong,
    /// A close, with the client's code if it gave one.
    Close(Option<u16>),
}

/// The state of one connection's incoming messages.
#[derive(Debug, Default)]
pub struct Reader {
    /// The fragments so far of a text message, when one is in progress.
    assembled: Vec<u8>,
    /// Whether a fragmented text message is in progress (its first frame came).
    in_message: bool,
}

/// A frame's head, parsed.
struct Head {
    fin: bool,
    opcode: Opcode,
    mask: [u8; 4],
    /// Bytes of the head.
    len: usize,
    /// Bytes of the payload.
    payload: u64,
}

impl Reader {
    pub fn new() -> Reader {
        Reader::default()
    }

    /// The text message last reported as `TextAt::Assembled`.
    pub fn assembled(&self) -> &[u8] {
        &self.assembled
    }

    /// Forgets the assembled message once it is handled (keeping the buffer).
    pub fn clear_assembled(&mut self) {
        self.assembled.clear();
    }

    /// Takes the assembled message out, to handle it while the reader is borrowed
    /// elsewhere; `give_back` returns the buffer.
    pub fn take_assembled(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.assembled)
    }

    /// Returns the buffer `take_assembled` took, emptied.
    pub fn give_back(&mut self, mut buffer: Vec<u8>) {
        buffer.clear();
        self.assembled = buffer;
    }

    /// Bytes held for a message in progress (for the memory of a held connection).
    pub fn capacity(&self) -> usize {
        self.assembled.capacity()
    }

    /// Reads the frame at the start of `input`: `Ok(None)` until all of it is there;
    /// else what it was and how many bytes of `input` it took (unmasked in place).
    /// `max_message` bounds a text message, whole or in fragments.
    pub fn read(
        &mut self,
        input: &mut [u8],
        max_message: usize,
    ) -> Result<Option<(Incoming, usize)>, Violation> {
        let Some(head) = parse_head(input)? else {
            return Ok(None);
        };
        let so_far = if self.in_message {
            self.assembled.len()
        } else {
            0
        };
        check(&head, self.in_message, so_far, max_message)?;
        // Fits in usize: `check` bounded it by `max_message` or 125.
        let payload_len = head.payload as usize;
        let end = head.len + payload_len;
        if input.len() < end {
            return Ok(None);
        }
        let payload = head.len..end;
        unmask(&mut input[payload.clone()], head.mask);
        let incoming = match head.opcode {
            Opcode::Text | Opcode::Continuation => {
                self.text(&head, &input[payload.clone()], payload)?
            }
            Opcode::Ping => Incoming::Ping(payload),
            Opcode::Pong => Incoming::Pong,
            Opcode::Close => Incoming::Close(close_code(&input[payload])?),
            // `check` refused it already; said again here so no input can panic.
            Opcode::Binary => return Err(Violation::Protocol("binary messages are not accepted")),
        };
        Ok(Some((incoming, end)))
    }

    /// A text frame or a continuation: a whole message, or a fragment kept.
    fn text(&mut self, head: &Head, bytes: &[u8], at: Range<usize>) -> Result<Incoming, Violation> {
        if head.opcode == Opcode::Text && head.fin {
            std::str::from_utf8(bytes).map_err(|_| Violation::NotUtf8)?;
            return Ok(Incoming::Text(TextAt::Input(at)));
        }
        if head.opcode == Opcode::Text {
            // The first fragment: whatever an earlier message left is gone.
            self.assembled.clear();
        }
        self.assembled.extend_from_slice(bytes);
        self.in_message = !head.fin;
        if !head.fin {
            return Ok(Incoming::Fragment);
        }
        if std::str::from_utf8(&self.assembled).is_err() {
            self.assembled.clear();
            return Err(Violation::NotUtf8);
        }
        Ok(Incoming::Text(TextAt::Assembled))
    }
}

/// The head at the start of `input`, if all of it is there.
fn parse_head(input: &[u8]) -> Result<Option<Head>, Violation> {
    let [first, second, ..] = *input else {
        return Ok(None);
    };
    if first & 0x70 != 0 {
        return Err(Violation::Protocol("reserved bits set"));
    }
    let opcode = Opcode::from_bits(first & 0x0F).ok_or(Violation::Protocol("unknown opcode"))?;
    if second & 0x80 == 0 {
        return Err(Violation::Protocol("client frames must be masked"));
    }
    let (payload, at) = match second & 0x7F {
        126 => match input.get(2..4) {
            Some(bytes) => (u64::from(u16::from_be_bytes([bytes[0], bytes[1]])), 4),
            None => return Ok(None),
        },
        127 => match input.get(2..10) {
            Some(bytes) => {
                let len = u64::from_be_bytes(bytes.try_into().expect("8 bytes"));
                if len >> 63 != 0 {
                    return Err(Violation::Protocol("length with its top bit set"));
                }
                (len, 10)
            }
            None => return Ok(None),
        },
        short => (u64::from(short), 2),
    };
    let Some(mask) = input.get(at..at + 4) else {
        return Ok(None);
    };
    Ok(Some(Head {
        fin: first & 0x80 != 0,
        opcode,
        mask: mask.try_into().expect("4 bytes"),
        len: at + 4,
        payload,
    }))
}

/// The rules a frame's head must keep, given what came before it.
fn check(head: &Head, in_message: bool, assembled: usize, max: usize) -> Result<(), Violation> {
    match head.opcode {
        Opcode::Binary => return Err(Violation::Protocol("binary messages are not accepted")),
        op if op.is_control() => {
            if !head.fin {
                return Err(Violation::Protocol("fragmented control frame"));
            }
            if head.payload > 125 {
                return Err(Violation::Protocol("control frame over 125 bytes"));
            }
            return Ok(());
        }
        Opcode::Continuation if !in_message => {
            return Err(Violation::Protocol("continuation without a message"))
        }
        Opcode::Text if in_message => {
            return Err(Violation::Protocol("new message inside a fragmented one"))
        }
        _ => {}
    }
    if head.payload > (max.saturating_sub(assembled)) as u64 {
        return Err(Violation::TooBig);
    }
    Ok(())
}

/// XORs `payload` with the frame's mask (RFC 6455 section 5.3).
fn unmask(payload: &mut [u8], mask: [u8; 4]) {
    let word = u32::from_ne_bytes(mask);
    let mut chunks = payload.chunks_exact_mut(4);
    for chunk in &mut chunks {
        let value = u32::from_ne_bytes(chunk.try_into().expect("4 bytes")) ^ word;
        chunk.copy_from_slice(&value.to_ne_bytes());
    }
    for (i, byte) in chunks.into_remainder().iter_mut().enumerate() {
        *byte ^= mask[i];
    }
}

/// The code of a close frame's payload: none when empty; else two bytes of a code a
/// client may send and a UTF-8 reason.
fn close_code(payload: &[u8]) -> Result<Option<u16>, Violation> {
    match payload {
        [] => Ok(None),
        [_] => Err(Violation::Protocol("close payload of one byte")),
        [high, low, reason @ ..] => {
            let code = u16::from_be_bytes([*high, *low]);
            if !close::is_sendable(code) {
                return Err(Violation::Protocol("close code not for the wire"));
            }
            std::str::from_utf8(reason).map_err(|_| Violation::NotUtf8)?;
            Ok(Some(code))
        }
    }
}
