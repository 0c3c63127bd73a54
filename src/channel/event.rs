//! One event of a channel, encoded once when it is published, in every form a
//! transport sends it, and shared by reference count with every connection after that.
//!
//! The JSON frame is the same on every transport (its strings are script-safe, see
//! `json.rs`); around it each transport needs a little framing. Where that framing
//! is the same for every connection it is encoded here too:
//!
//! - `stream`: the chunk `{hex}\r\n{frame}\n\r\n`; HTTP/1.0 connections send the slice
//!   without the chunk framing.
//! - `sse`: the chunk `{hex}\r\nid: {id}\ndata: {frame}\n\n\r\n`, whole for a
//!   subscription of one channel (its cursor is the event's id). A multiplexed
//!   subscription writes its own `id:` line (its cursor lists every channel) and then
//!   shares the `data:` slice.
//!
//! - `ws`: the WebSocket text frame: its head (2 to 10 bytes) right before the JSON,
//!   so the frame and `json` are slices of the same bytes.
//!
//! The forever frame shares `json` between a per-connection `<script>CALLBACK(` and a
//! constant `);</script>`.
//!
//! All the forms are written into one buffer (room for the WebSocket head, the JSON,
//! the stream chunk, the SSE chunk), and are slices of it: an event costs two
//! allocations (the buffer and its reference count), however many forms it has, and
//! fanning it out to any number of connections copies none of it.

use std::io::Write;
use std::sync::Arc;

use bytes::Bytes;

use crate::json;
use crate::websocket::Opcode;

/// An event as every loop and connection sees it; immutable after publishing.
#[derive(Debug)]
pub struct Event {
    /// The channel it belongs to.
    pub channel: Arc<str>,
    /// Its id in the channel: 1, 2, 3, ... with no hole.
    pub id: u64,
    /// Whether this is the channel's close marker (no data).
    pub closed: bool,
    /// The JSON frame: `{"ch":..,"id":..,"data":..}` or `{"ch":..,"id":..,"closed":true}`.
    pub json: Bytes,
    /// Length of the published body, for counting.
    pub data_len: usize,
    /// The `stream` chunk; see the module doc. (`json`, `stream_chunk` and
    /// `sse_chunk` are slices of one buffer.)
    stream_chunk: Bytes,
    /// The single-channel SSE chunk; see the module doc.
    sse_chunk: Bytes,
    /// Where `data: ` starts in `sse_chunk`.
    sse_data_at: usize,
    /// Where the chunk body starts in `sse_chunk` (after `{hex}\r\n`).
    sse_body_at: usize,
    /// Where the chunk body starts in `stream_chunk`.
    stream_body_at: usize,
    /// The WebSocket text frame: its head, then `json` (the same bytes).
    ws_frame: Bytes,
}

/// Bytes of the chunk trailer `\r\n` at the end of every chunk.
const CHUNK_TRAILER: usize = 2;

/// Room left before the JSON for the WebSocket frame's head, written right-aligned
/// into it once the JSON's length is known.
const WS_ROOM: usize = crate::websocket::write::MAX_SERVER_HEAD;

impl Event {
    /// Encodes message `id` of `channel` with the published `data`.
    pub fn message(channel: Arc<str>, id: u64, data: &str) -> Event {
        // The frame, then its two framings, each about as long again.
        let mut frame = Vec::with_capacity(3 * (data.len() + channel.len()) + 160 + WS_ROOM);
        frame.resize(WS_ROOM, 0);
        frame.extend_from_slice(b"{\"ch\":\"");
        frame.extend_from_slice(channel.as_bytes());
        frame.extend_from_slice(b"\",\"id\":");
        push_decimal(&mut frame, id);
        frame.extend_from_slice(b",\"data\":");
        json::push_string(&mut frame, data);
        frame.push(b'}');
        Event::encode(channel, id, false, frame, data.len())
    }

    /// Encodes the close marker `id` of `channel`.
    pub fn close_marker(channel: Arc<str>, id: u64) -> Event {
        let mut frame = vec![0; WS_ROOM];
        // Writing to a Vec cannot fail.
        let _ = write!(
            frame,
            "{{\"ch\":\"{channel}\",\"id\":{id},\"closed\":true}}"
        );
        Event::encode(channel, id, true, frame, 0)
    }

    /// Writes the WebSocket head into the room before the JSON frame in `buf` (which
    /// is all of it after the room), appends the stream and SSE chunks, and slices
    /// every form out of it.
    fn encode(
        channel: Arc<str>,
        id: u64,
        closed: bool,
        mut buf: Vec<u8>,
        data_len: usize,
    ) -> Event {
        let json = WS_ROOM..buf.len();
        let json_len = json.len();

        let (ws_head, ws_head_len) = crate::websocket::write::head(Opcode::Text, json_len);
        let ws_at = WS_ROOM - ws_head_len;
        buf[ws_at..WS_ROOM].copy_from_slice(&ws_head[..ws_head_len]);

        let stream_at = buf.len();
        push_chunk_header(&mut buf, json_len + 1);
        let stream_body_at = buf.len() - stream_at;
        buf.extend_from_within(json.clone());
        buf.extend_from_slice(b"\n\r\n");
        let stream_end = buf.len();

        let sse_at = buf.len();
        let id_line_len = b"id: \n".len() + decimal_len(id);
        push_chunk_header(&mut buf, id_line_len + b"data: ".len() + json_len + 2);
        let sse_body_at = buf.len() - sse_at;
        buf.extend_from_slice(b"id: ");
        push_decimal(&mut buf, id);
        buf.push(b'\n');
        let sse_data_at = buf.len() - sse_at;
        buf.extend_from_slice(b"data: ");
        buf.extend_from_within(json.clone());
        buf.extend_from_slice(b"\n\n\r\n");

        let all = Bytes::from(buf);
        Event {
            channel,
            id,
            closed,
            json: all.slice(json.clone()),
            data_len,
            stream_chunk: all.slice(stream_at..stream_end),
            sse_chunk: all.slice(sse_at..),
            sse_data_at,
            sse_body_at,
            stream_body_at,
            ws_frame: all.slice(ws_at..json.end),
        }
    }

    /// The WebSocket text frame: one unmasked, unfragmented message holding exactly
    /// the JSON frame (PROTOCOL.md, "WebSocket"), shared by every subscriber.
    pub fn ws_frame(&self) -> Bytes {
        self.ws_frame.clone()
    }

    /// The `stream` transport's line, as a chunk or (HTTP/1.0) bare.
    pub fn stream_line(&self, chunked: bool) -> Bytes {
        if chunked {
            self.stream_chunk.clone()
        } else {
            self.stream_chunk
                .slice(self.stream_body_at..self.stream_chunk.len() - CHUNK_TRAILER)
        }
    }

    /// The whole SSE event with `id: {id}`, for a subscription of one channel.
    pub fn sse_single(&self, chunked: bool) -> Bytes {
        if chunked {
            self.sse_chunk.clone()
        } else {
            self.sse_chunk
                .slice(self.sse_body_at..self.sse_chunk.len() - CHUNK_TRAILER)
        }
    }

    /// `data: {frame}\n\n` (and the chunk trailer when chunked), for a multiplexed
    /// subscription that wrote its own chunk header and `id:` line.
    pub fn sse_data(&self, chunked: bool) -> Bytes {
        let end = if chunked {
            self.sse_chunk.len()
        } else {
            self.sse_chunk.len() - CHUNK_TRAILER
        };
        self.sse_chunk.slice(self.sse_data_at..end)
    }

    /// Length of `data: {frame}\n\n`, without any chunk trailer.
    pub fn sse_data_len(&self) -> usize {
        self.sse_chunk.len() - CHUNK_TRAILER - self.sse_data_at
    }
}

/// Appends the chunk-size line of a chunk carrying `len` bytes.
pub fn push_chunk_header(out: &mut Vec<u8>, len: usize) {
    push_hex(out, len);
    out.extend_from_slice(b"\r\n");
}

/// Appends `value` in decimal.
fn push_decimal(out: &mut Vec<u8>, value: u64) {
    // Writing to a Vec cannot fail.
    let _ = write!(out, "{value}");
}

/// How many decimal digits `value` has.
fn decimal_len(value: u64) -> usize {
    value
        .checked_ilog10()
        .map_or(1, |digits| digits as usize + 1)
}

/// Appends `value` in lower-case hexadecimal without leading zeros.
pub fn push_hex(out: &mut Vec<u8>, value: usize) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut digits = [0u8; 16];
    let mut n = value;
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = HEX[n & 0xf];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(bytes: &Bytes) -> &str {
        std::str::from_utf8(bytes).unwrap()
    }

    #[test]
    fn message_frame_is_the_protocols_json() {
        let event = Event::message("live".into(), 42, "hi \"there\"</script>");
        assert_eq!(
            text(&event.json),
            r#"{"ch":"live","id":42,"data":"hi \"there\"\u003c/script\u003e"}"#
        );
        let parsed: serde_json::Value = serde_json::from_slice(&event.json).unwrap();
        assert_eq!(parsed["data"], "hi \"there\"</script>");
    }

    #[test]
    fn close_marker_frame() {
        let event = Event::close_marker("live".into(), 43);
        assert_eq!(text(&event.json), r#"{"ch":"live","id":43,"closed":true}"#);
        assert!(event.closed);
    }

    #[test]
    fn stream_forms() {
        let event = Event::message("a".into(), 1, "x");
        let frame = r#"{"ch":"a","id":1,"data":"x"}"#;
        assert_eq!(text(&event.stream_line(false)), format!("{frame}\n"));
        assert_eq!(
            text(&event.stream_line(true)),
            format!("{:x}\r\n{frame}\n\r\n", frame.len() + 1)
        );
    }

    #[test]
    fn sse_forms() {
        // Ids of every length: the chunk header counts the `id:` line's digits.
        for id in [7, 10, 99, 100, 123_456, u64::MAX] {
            let event = Event::message("a".into(), id, "x");
            let frame = format!(r#"{{"ch":"a","id":{id},"data":"x"}}"#);
            let body = format!("id: {id}\ndata: {frame}\n\n");
            assert_eq!(text(&event.sse_single(false)), body);
            assert_eq!(
                text(&event.sse_single(true)),
                format!("{:x}\r\n{body}\r\n", body.len())
            );
            assert_eq!(text(&event.sse_data(false)), format!("data: {frame}\n\n"));
            assert_eq!(
                text(&event.sse_data(true)),
                format!("data: {frame}\n\n\r\n")
            );
            assert_eq!(event.sse_data_len(), format!("data: {frame}\n\n").len());
            assert_eq!(text(&event.json), frame);
        }
    }

    #[test]
    fn the_websocket_frame_is_its_head_and_the_json() {
        // Payloads in each of the three length forms.
        for data in ["x".to_string(), "y".repeat(200), "z".repeat(70_000)] {
            let event = Event::message("a".into(), 9, &data);
            let frame = event.ws_frame();
            let mut head = Vec::new();
            crate::websocket::write::push_head(&mut head, Opcode::Text, event.json.len());
            assert_eq!(&frame[..head.len()], &head[..]);
            assert_eq!(&frame[head.len()..], &event.json[..]);
            // The same bytes, not a copy.
            assert_eq!(frame[head.len()..].as_ptr(), event.json.as_ptr());
        }
        let marker = Event::close_marker("a".into(), 10);
        assert_eq!(
            &marker.ws_frame()[2..],
            br#"{"ch":"a","id":10,"closed":true}"#
        );
        assert_eq!(marker.ws_frame()[..2], [0x81, 32]);
    }

    #[test]
    fn every_form_of_a_long_event_is_whole() {
        let data = "é<".repeat(5_000);
        let event = Event::message("long".into(), 3, &data);
        let parsed: serde_json::Value = serde_json::from_slice(&event.json).unwrap();
        assert_eq!(parsed["data"], data.as_str());
        let json = text(&event.json);
        assert_eq!(text(&event.stream_line(false)), format!("{json}\n"));
        assert_eq!(
            text(&event.sse_single(false)),
            format!("id: 3\ndata: {json}\n\n")
        );
        let close = Event::close_marker("long".into(), 4);
        assert_eq!(
            text(&close.sse_single(false)),
            "id: 4\ndata: {\"ch\":\"long\",\"id\":4,\"closed\":true}\n\n"
        );
    }

    #[test]
    fn hex_has_no_leading_zeros() {
        for (value, expected) in [(0, "0"), (9, "9"), (10, "a"), (255, "ff"), (4096, "1000")] {
            let mut out = Vec::new();
            push_hex(&mut out, value);
            assert_eq!(out, expected.as_bytes());
        }
    }
}
