//! `t=iframe`: the forever frame. An HTML document that never ends: a prelude padded
//! past 1 KiB (browsers start rendering, and so running scripts, only after the first
//! kilobyte or so), then `<script>CALLBACK(FRAME);</script>` per frame. Frames are
//! script-safe JSON (see `json.rs`), so no payload can end the script element, and the
//! callback is a validated dotted identifier.

use bytes::Bytes;

use crate::channel::ChannelIndex;
use crate::subscription::state::{push_control_json, Frame, Subscription};

/// Bytes of padding in the prelude, past the 1 KiB the protocol asks for.
const PADDING_BYTES: usize = 1100;

/// Appends the document's start, padded (as a chunk when chunked).
pub fn push_prelude(chunked: bool, out: &mut Vec<u8>) {
    let mut body = Vec::with_capacity(PADDING_BYTES + 200);
    body.extend_from_slice(b"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>halley</title></head><body>\n<!-- ");
    body.resize(body.len() + PADDING_BYTES, b' ');
    body.extend_from_slice(b" -->\n");
    super::push_chunk(out, &body, chunked);
}

/// See `encode_stream_frame`.
pub fn frame(
    sub: &Subscription,
    frame: &Frame,
    chunked: bool,
    index: &ChannelIndex,
    head: &mut Vec<u8>,
) -> (Option<Bytes>, &'static [u8]) {
    const OPEN: &[u8] = b"<script>";
    const CLOSE: &[u8] = b");</script>\n";
    let callback = sub.callback.as_deref().unwrap_or("").as_bytes();
    let shared = match frame {
        Frame::Event(event) => Some(event.json.clone()),
        _ => None,
    };
    let mut json = Vec::new();
    if shared.is_none() {
        push_control_json(frame, sub, index, &mut json);
    }
    let frame_len = shared.as_ref().map_or(json.len(), Bytes::len);
    if chunked {
        crate::channel::event::push_chunk_header(
            head,
            OPEN.len() + callback.len() + 1 + frame_len + CLOSE.len(),
        );
    }
    head.extend_from_slice(OPEN);
    head.extend_from_slice(callback);
    head.push(b'(');
    head.extend_from_slice(&json);
    let tail: &'static [u8] = if chunked { b");</script>\n\r\n" } else { CLOSE };
    (shared, tail)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{setup, wire};
    use crate::subscription::Transport;

    #[test]
    fn frames_are_callback_calls() {
        let (index, mut sub) = setup(Transport::Iframe, &["a"], 1, 0, Some("parent.h.push"));
        assert_eq!(
            wire(&index, &mut sub, false),
            "<script>parent.h.push({\"ch\":\"a\",\"id\":1,\"data\":\"m1\"});</script>\n"
        );
        let (index, mut sub) = setup(Transport::Iframe, &["a"], 1, 0, Some("f"));
        let body = "<script>f({\"ch\":\"a\",\"id\":1,\"data\":\"m1\"});</script>\n";
        assert_eq!(
            wire(&index, &mut sub, true),
            format!("{:x}\r\n{body}\r\n", body.len())
        );
    }

    #[test]
    fn prelude_is_padded_past_a_kilobyte() {
        let mut out = Vec::new();
        super::push_prelude(false, &mut out);
        assert!(out.len() > 1024);
        assert!(out.starts_with(b"<!DOCTYPE html>"));
    }
}
