//! Server frames (RFC 6455 section 5.2): never masked, never fragmented. A text frame's
//! head is made apart from its payload, so a published event's JSON is framed once and
//! the same bytes go to every WebSocket subscriber.

use super::Opcode;

/// Bytes of the longest head of a server frame: 2, and 8 of length.
pub const MAX_SERVER_HEAD: usize = 10;

/// The head of a final, unmasked frame of `opcode` with `len` bytes of payload, in
/// the shortest of the three length forms: the array and how many of its bytes are
/// the head.
pub fn head(opcode: Opcode, len: usize) -> ([u8; MAX_SERVER_HEAD], usize) {
    let mut out = [0u8; MAX_SERVER_HEAD];
    out[0] = 0x80 | opcode.bits();
    let used = if len < 126 {
        out[1] = len as u8;
        2
    } else if len <= usize::from(u16::MAX) {
        out[1] = 126;
        out[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        4
    } else {
        out[1] = 127;
        out[2..10].copy_from_slice(&(len as u64).to_be_bytes());
        10
    };
    (out, used)
}

/// Appends the head of a final, unmasked frame of `opcode` with `len` bytes of payload.
pub fn push_head(out: &mut Vec<u8>, opcode: Opcode, len: usize) {
    let (bytes, used) = head(opcode, len);
    out.extend_from_slice(&bytes[..used]);
}

/// Appends a whole text frame of `text`.
pub fn push_text(out: &mut Vec<u8>, text: &[u8]) {
    push_head(out, Opcode::Text, text.len());
    out.extend_from_slice(text);
}

/// Appends a pong echoing a ping's payload (at most 125 bytes: the reader checked).
pub fn push_pong(out: &mut Vec<u8>, payload: &[u8]) {
    push_head(out, Opcode::Pong, payload.len());
    out.extend_from_slice(payload);
}

/// Appends a close frame with `code` and `reason` (cut to fit the 125 bytes of a
/// control frame, at a character boundary).
pub fn push_close(out: &mut Vec<u8>, code: u16, reason: &str) {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let reason = &reason.as_bytes()[..end];
    push_head(out, Opcode::Close, 2 + reason.len());
    out.extend_from_slice(&code.to_be_bytes());
    out.extend_from_slice(reason);
}
