//! `t=sse`: server-sent events. Each event is `id: CURSOR` and `data: FRAME`, where
//! CURSOR is the subscription's cursor after the frame, so `EventSource` reconnects
//! with `Last-Event-ID` set to exactly where it stopped. A `retry:` line comes first;
//! heartbeats are comment lines (`: hb`), which `EventSource` ignores.

use bytes::Bytes;

use crate::channel::ChannelIndex;
use crate::subscription::state::{push_control_json, Frame, Subscription};

/// The heartbeat comment as a chunk.
const HEARTBEAT_CHUNK: &[u8] = b"6\r\n: hb\n\n\r\n";

/// Appends the `retry:` line (as a chunk when chunked).
pub fn push_prelude(retry_ms: u64, chunked: bool, out: &mut Vec<u8>) {
    let body = format!("retry: {retry_ms}\n\n");
    super::push_chunk(out, body.as_bytes(), chunked);
}

/// See `encode_stream_frame`.
pub fn frame(
    sub: &Subscription,
    frame: &Frame,
    chunked: bool,
    index: &ChannelIndex,
    head: &mut Vec<u8>,
) -> (Option<Bytes>, &'static [u8]) {
    match frame {
        Frame::Event(event) if !sub.is_multiplexed() => (Some(event.sse_single(chunked)), b""),
        Frame::Event(event) => {
            let start = head.len();
            head.extend_from_slice(b"id: ");
            sub.push_cursor(head);
            head.push(b'\n');
            if chunked {
                let id_line = head.split_off(start);
                crate::channel::event::push_chunk_header(
                    head,
                    id_line.len() + event.sse_data_len(),
                );
                head.extend_from_slice(&id_line);
            }
            (Some(event.sse_data(chunked)), b"")
        }
        Frame::Heartbeat if chunked => (None, HEARTBEAT_CHUNK),
        Frame::Heartbeat => (None, b": hb\n\n"),
        _ => {
            let mut body = Vec::with_capacity(96);
            body.extend_from_slice(b"id: ");
            sub.push_cursor(&mut body);
            body.extend_from_slice(b"\ndata: ");
            push_control_json(frame, sub, index, &mut body);
            body.extend_from_slice(b"\n\n");
            super::push_chunk(head, &body, chunked);
            (None, b"")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{setup, wire};
    use crate::subscription::Transport;

    #[test]
    fn one_channel_ids_are_event_ids() {
        let (index, mut sub) = setup(Transport::Sse, &["a"], 2, 0, None);
        let body1 = "id: 1\ndata: {\"ch\":\"a\",\"id\":1,\"data\":\"m1\"}\n\n";
        let body2 = "id: 2\ndata: {\"ch\":\"a\",\"id\":2,\"data\":\"m2\"}\n\n";
        assert_eq!(wire(&index, &mut sub, false), format!("{body1}{body2}"));
    }

    #[test]
    fn multiplexed_ids_are_cursor_lists() {
        let (index, mut sub) = setup(Transport::Sse, &["a", "b"], 1, 0, None);
        let expected = "id: 1,0\ndata: {\"ch\":\"a\",\"id\":1,\"data\":\"m1\"}\n\n\
                        id: 1,1\ndata: {\"ch\":\"b\",\"id\":1,\"data\":\"m1\"}\n\n";
        assert_eq!(wire(&index, &mut sub, false), expected);
        let (index, mut sub) = setup(Transport::Sse, &["a", "b"], 1, 0, None);
        let chunked = wire(&index, &mut sub, true);
        let first = "id: 1,0\ndata: {\"ch\":\"a\",\"id\":1,\"data\":\"m1\"}\n\n";
        assert!(
            chunked.starts_with(&format!("{:x}\r\n{first}\r\n", first.len())),
            "{chunked}"
        );
    }

    #[test]
    fn control_frames_carry_the_cursor() {
        let (index, mut sub) = setup(Transport::Sse, &["a", "b"], 2, 5, None);
        assert_eq!(
            wire(&index, &mut sub, false),
            "id: 2,5\ndata: {\"ch\":\"a\",\"reset\":2}\n\nid: 2,2\ndata: {\"ch\":\"b\",\"reset\":2}\n\n"
        );
    }

    #[test]
    fn prelude_has_retry() {
        let mut out = Vec::new();
        super::push_prelude(2000, false, &mut out);
        assert_eq!(out, b"retry: 2000\n\n");
    }
}
