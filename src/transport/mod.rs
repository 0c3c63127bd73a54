//! How frames go on the wire, one file per transport (a WebSocket's frames too). Everything here writes bytes
//! into buffers and returns shared `Bytes`; nothing touches a socket.
//!
//! A stream frame comes back as three pieces: a per-connection head (written into the
//! loop's scratch buffer: chunk size, SSE `id:` line of a multiplexed subscription,
//! `<script>CALLBACK(`), the shared frame bytes, and a constant tail. The connection
//! hands the three to one `writev`.

pub mod iframe;
pub mod longpoll;
pub mod sse;
pub mod stream;
pub mod ws;

use bytes::Bytes;

use crate::channel::ChannelIndex;
use crate::subscription::state::{Frame, Subscription};
use crate::subscription::Transport;

/// The terminating chunk of a chunked body.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// Encodes `frame` for the stream transport of `sub`: appends the per-connection head
/// to `head` and returns the shared bytes and the constant tail.
pub fn encode_stream_frame(
    sub: &Subscription,
    frame: &Frame,
    chunked: bool,
    index: &ChannelIndex,
    head: &mut Vec<u8>,
) -> (Option<Bytes>, &'static [u8]) {
    match sub.transport {
        Transport::Sse => sse::frame(sub, frame, chunked, index, head),
        Transport::Iframe => iframe::frame(sub, frame, chunked, index, head),
        Transport::Ws => ws::frame(sub, frame, index, head),
        _ => stream::frame(sub, frame, chunked, index, head),
    }
}

/// Appends what a stream sends right after its response head. Every stream says
/// something at once, so a client can tell within a moment that bytes reach it (a
/// proxy that buffers responses shows up as silence): SSE its `retry:` line, `stream`
/// and `iframe` a heartbeat frame (after the padding, for `iframe`).
pub fn push_prelude(sub: &Subscription, chunked: bool, retry_ms: u64, out: &mut Vec<u8>) {
    match sub.transport {
        Transport::Sse => sse::push_prelude(retry_ms, chunked, out),
        Transport::Iframe => {
            iframe::push_prelude(chunked, out);
            let callback = sub.callback.as_deref().unwrap_or("");
            let call = format!("<script>{callback}({{\"hb\":1}});</script>\n");
            push_chunk(out, call.as_bytes(), chunked);
        }
        _ => push_chunk(out, b"{\"hb\":1}\n", chunked),
    }
}

/// Appends `body` as one chunk, or bare when not chunked.
pub fn push_chunk(out: &mut Vec<u8>, body: &[u8], chunked: bool) {
    if chunked {
        crate::channel::event::push_chunk_header(out, body.len());
    }
    out.extend_from_slice(body);
    if chunked {
        out.extend_from_slice(b"\r\n");
    }
}

/// The `Content-Type` of each transport's answer.
pub fn content_type(transport: Transport, jsonp: bool) -> &'static [u8] {
    match transport {
        Transport::Sse => b"text/event-stream; charset=utf-8",
        Transport::Iframe => b"text/html; charset=utf-8",
        Transport::Stream => b"application/x-ndjson; charset=utf-8",
        _ if jsonp => b"application/javascript; charset=utf-8",
        _ => b"application/json; charset=utf-8",
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    use std::sync::Arc;

    use crate::channel::{ChannelIndex, Event};
    use crate::subscription::request::Since;
    use crate::subscription::{Subscription, Transport};

    /// An index with `count` messages `m1`, `m2`, ... in each named channel, and a
    /// subscription to those channels from `since`.
    pub fn setup(
        transport: Transport,
        names: &[&str],
        count: u64,
        since: u64,
        callback: Option<&str>,
    ) -> (ChannelIndex, Subscription) {
        let mut index = ChannelIndex::new(100);
        for name in names {
            for id in 1..=count {
                index.append(Arc::new(Event::message(
                    (*name).into(),
                    id,
                    &format!("m{id}"),
                )));
            }
        }
        let keys: Vec<_> = names.iter().map(|n| index.get_or_create(n)).collect();
        let sub = Subscription::new(
            transport,
            &keys,
            &Since::Ids(vec![since; names.len()]),
            callback.map(Into::into),
            &index,
            0,
        );
        (index, sub)
    }

    /// Every frame owed, encoded and concatenated as the wire would carry them.
    pub fn wire(index: &ChannelIndex, sub: &mut Subscription, chunked: bool) -> String {
        String::from_utf8(wire_bytes(index, sub, chunked)).unwrap()
    }

    /// `wire` as bytes (a WebSocket frame's head is not text).
    pub fn wire_bytes(index: &ChannelIndex, sub: &mut Subscription, chunked: bool) -> Vec<u8> {
        let mut out = Vec::new();
        while let crate::subscription::state::Step::Frame(frame) = sub.next(index) {
            let mut head = Vec::new();
            let (shared, tail) = super::encode_stream_frame(sub, &frame, chunked, index, &mut head);
            out.extend_from_slice(&head);
            out.extend_from_slice(shared.as_deref().unwrap_or(b""));
            out.extend_from_slice(tail);
        }
        out
    }
}
