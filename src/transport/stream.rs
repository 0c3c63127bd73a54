//! `t=stream`: XHR streaming, one JSON frame per line (`application/x-ndjson`), each
//! line its own chunk so a browser's `onprogress` sees whole lines.

use bytes::Bytes;

use crate::channel::ChannelIndex;
use crate::subscription::state::{push_control_json, Frame, Subscription};

/// The heartbeat line as a chunk.
const HEARTBEAT_CHUNK: &[u8] = b"9\r\n{\"hb\":1}\n\r\n";

/// See `encode_stream_frame`.
pub fn frame(
    sub: &Subscription,
    frame: &Frame,
    chunked: bool,
    index: &ChannelIndex,
    head: &mut Vec<u8>,
) -> (Option<Bytes>, &'static [u8]) {
    match frame {
        Frame::Event(event) => (Some(event.stream_line(chunked)), b""),
        Frame::Heartbeat if chunked => (None, HEARTBEAT_CHUNK),
        _ => {
            let mut line = Vec::with_capacity(64);
            push_control_json(frame, sub, index, &mut line);
            line.push(b'\n');
            super::push_chunk(head, &line, chunked);
            (None, b"")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{setup, wire};
    use crate::subscription::state::Frame;
    use crate::subscription::Transport;

    #[test]
    fn lines_as_chunks() {
        let (index, mut sub) = setup(Transport::Stream, &["a"], 2, 0, None);
        let frame1 = r#"{"ch":"a","id":1,"data":"m1"}"#;
        let frame2 = r#"{"ch":"a","id":2,"data":"m2"}"#;
        assert_eq!(
            wire(&index, &mut sub, true),
            format!(
                "{:x}\r\n{frame1}\n\r\n{:x}\r\n{frame2}\n\r\n",
                frame1.len() + 1,
                frame2.len() + 1
            )
        );
    }

    #[test]
    fn bare_lines_for_http10_and_control_frames() {
        let (index, mut sub) = setup(Transport::Stream, &["a"], 3, 9, None);
        assert_eq!(
            wire(&index, &mut sub, false),
            "{\"ch\":\"a\",\"reset\":3}\n"
        );
        let mut head = Vec::new();
        let (shared, tail) = super::frame(&sub, &Frame::Heartbeat, true, &index, &mut head);
        assert!(shared.is_none() && head.is_empty());
        assert_eq!(tail, b"9\r\n{\"hb\":1}\n\r\n");
        let (_, tail) = super::frame(&sub, &Frame::Heartbeat, false, &index, &mut head);
        assert_eq!((head.as_slice(), tail), (&b"{\"hb\":1}\n"[..], &b""[..]));
    }
}
