//! Server frames (RFC 6455 section 5.2): never masked, never fragmented. A text frame's
//! head is made apart from its payload, so a published event's JSON is framed once and
//! the same bytes go to every WebSocket subscriber.

use super::Opcode;

/// Bytes of the longest head of a server frame: 2, and 8 of length.
pub const MAX_SERVER_HEAD: usize = 10;

/// Appends the head of a final, unmasked frame of `opcode` with `len` bytes of payload,
/// in the shortest of the three length forms.
pub fn push_head(out: &mut Vec<u8>, opcode: Opcode, len: usize) {
    out.push(0x80 | opcode.bits());
    if len < 126 {
        out.push(len as u8);
    } else if len <= usize::from(u16::MAX) {
        out.push(126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
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
