//! `t=ws`: WebSocket. Each frame is one unmasked, unfragmented text message holding
//! exactly the frame's JSON. A published event's message is encoded once with the
//! event (`Event::ws_frame`) and shared; control frames (gap, reset) are made here
//! per connection, and the heartbeat is a constant.

use bytes::Bytes;

use crate::channel::ChannelIndex;
use crate::subscription::state::{push_control_json, Frame, Subscription};
use crate::websocket::write;

/// The heartbeat message: a final text frame of `{"hb":1}`.
pub const HEARTBEAT: &[u8] = b"\x81\x08{\"hb\":1}";

/// See `encode_stream_frame`.
pub fn frame(
    sub: &Subscription,
    frame: &Frame,
    index: &ChannelIndex,
    head: &mut Vec<u8>,
) -> (Option<Bytes>, &'static [u8]) {
    match frame {
        Frame::Event(event) => (Some(event.ws_frame()), b""),
        Frame::Heartbeat => (None, HEARTBEAT),
        _ => {
            let mut json = Vec::with_capacity(96);
            push_control_json(frame, sub, index, &mut json);
            write::push_text(head, &json);
            (None, b"")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{setup, wire_bytes};
    use crate::subscription::state::Frame;
    use crate::subscription::Transport;

    /// The text messages of a byte string of unmasked server frames.
    fn messages(mut wire: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        while !wire.is_empty() {
            assert_eq!(wire[0], 0x81, "a final text frame");
            let (len, at) = match wire[1] {
                126 => (u16::from_be_bytes([wire[2], wire[3]]) as usize, 4),
                127 => (
                    u64::from_be_bytes(wire[2..10].try_into().unwrap()) as usize,
                    10,
                ),
                short => (short as usize, 2),
            };
            out.push(String::from_utf8(wire[at..at + len].to_vec()).unwrap());
            wire = &wire[at + len..];
        }
        out
    }

    #[test]
    fn one_text_message_per_frame() {
        let (index, mut sub) = setup(Transport::Ws, &["a"], 2, 0, None);
        let wire = wire_bytes(&index, &mut sub, true);
        assert_eq!(
            messages(&wire),
            [
                r#"{"ch":"a","id":1,"data":"m1"}"#,
                r#"{"ch":"a","id":2,"data":"m2"}"#
            ]
        );
    }

    #[test]
    fn control_frames_and_heartbeats() {
        let (index, mut sub) = setup(Transport::Ws, &["a"], 3, 9, None);
        assert_eq!(
            messages(&wire_bytes(&index, &mut sub, true)),
            [r#"{"ch":"a","reset":3}"#]
        );
        let mut head = Vec::new();
        let (shared, tail) = super::frame(&sub, &Frame::Heartbeat, &index, &mut head);
        assert!(shared.is_none() && head.is_empty());
        assert_eq!(messages(tail), [r#"{"hb":1}"#]);
    }

    #[test]
    fn long_events_take_the_longer_length_forms() {
        let (mut index, mut sub) = setup(Transport::Ws, &["a"], 0, 0, None);
        for (id, len) in [(1, 200), (2, 70_000)] {
            let data = "x".repeat(len);
            index.append(std::sync::Arc::new(crate::channel::Event::message(
                "a".into(),
                id,
                &data,
            )));
        }
        let got = messages(&wire_bytes(&index, &mut sub, true));
        assert_eq!(got.len(), 2);
        assert!(got[0].ends_with(&format!("{}\"}}", "x".repeat(200))));
        assert_eq!(
            got[1].len(),
            70_000 + r#"{"ch":"a","id":2,"data":""}"#.len()
        );
    }
}
