//! Streams (`t=stream`, `iframe`, `sse`): the head and prelude, catching up on what
//! history owes (gathered into few writes), one frame per live event, heartbeats, and
//! the clean end (`--stream-max-bytes`, `--stream-max-age`, every channel closed,
//! shutdown) after which the client resumes with its cursor. A WebSocket is fed and
//! ended here too, once `websocket.rs` has upgraded it.

use super::routes::{push_head, Caching, Head};
use super::{fetch, start, websocket, SubscriberApp, SubscriberConn};
use crate::engine::{Connection, Cx, Framing, Phase};
use crate::http::{Piece, Status};
use crate::stats::bump;
use crate::subscription::state::{Frame, Step};
use crate::subscription::Subscription;
use crate::transport;
use crate::websocket::close;

type Conn = Connection<SubscriberConn>;

/// Bytes of catch-up frames gathered for one write.
const CATCH_UP_WRITE: usize = 64 * 1024;

/// Starts a stream: head, prelude, catch-up, then waits for events.
pub fn start(
    app: &mut SubscriberApp,
    cx: &mut Cx,
    key: usize,
    conn: &mut Conn,
    mut sub: Box<Subscription>,
) {
    cx.scratch.clear();
    let content_type = transport::content_type(sub.transport, false);
    let extra: &[(&[u8], &[u8])] = &[(b"X-Accel-Buffering", b"no")];
    let head = Head {
        status: Status::Ok,
        content_type: Some(content_type),
        framing: Framing::Stream,
        caching: Caching::NoStore,
        extra,
    };
    push_head(app, cx, conn, head);
    if conn.http.head_only {
        // HEAD: the head a stream would have, and no stream.
        conn.send(cx.now_ms, &[Piece::Copy(&cx.scratch)]);
        conn.http.complete(cx.now_ms);
        return start::end_subscription(app, &mut sub);
    }
    transport::push_prelude(
        &sub,
        !conn.http.http10,
        app.config.sse_retry.as_millis() as u64,
        &mut cx.scratch,
    );
    conn.send(cx.now_ms, &[Piece::Copy(&cx.scratch)]);
    conn.http.stream();
    conn.app.sub = Some(sub);
    start::start_waiting(app, key, conn);
    feed(app, cx, key, conn);
}

/// Writes frames owed from history (catch-up) while the output stays under half of
/// `--max-pending`. Returns whether it wrote anything. The frames are gathered and
/// written `CATCH_UP_WRITE` bytes at a time: one `writev` per event made catching up
/// cost a loopback send per event.
pub fn feed(app: &mut SubscriberApp, cx: &mut Cx, key: usize, conn: &mut Conn) -> bool {
    let budget = app.config.max_pending / 2;
    let mut batch = std::mem::take(&mut app.batch);
    batch.clear();
    let mut wrote = false;
    loop {
        if !conn.http.streams()
            || conn.http.out.pending() + batch.len() >= budget
            || conn.http.broken
        {
            break;
        }
        let Some(sub) = conn.app.sub.as_mut() else {
            break;
        };
        let frame = match sub.next(&app.index) {
            Step::Frame(frame) => frame,
            Step::Fetch(range) => {
                fetch::request(app, key, conn, range);
                break;
            }
            Step::Idle => break,
        };
        encode_frame(app, cx, conn, &frame, Some(&mut batch));
        wrote = true;
        if batch.len() >= CATCH_UP_WRITE || is_due_to_end(app, conn) {
            write_batch(cx, conn, &mut batch);
        }
        end_if_due(app, cx, conn);
    }
    write_batch(cx, conn, &mut batch);
    app.batch = batch;
    wrote
}

/// Writes (and empties) the gathered frames of `feed`.
fn write_batch(cx: &Cx, conn: &mut Conn, batch: &mut Vec<u8>) {
    if !batch.is_empty() {
        conn.send(cx.now_ms, &[Piece::Copy(batch)]);
        batch.clear();
    }
}

/// Encodes one frame for the connection's stream and writes it through.
pub fn write_frame(app: &SubscriberApp, cx: &mut Cx, conn: &mut Conn, frame: &Frame) {
    encode_frame(app, cx, conn, frame, None);
}

/// Encodes one frame for the connection's stream, and writes it through or, given a
/// batch, appends it there.
fn encode_frame(
    app: &SubscriberApp,
    cx: &mut Cx,
    conn: &mut Conn,
    frame: &Frame,
    batch: Option<&mut Vec<u8>>,
) {
    let Some(sub) = conn.app.sub.as_mut() else {
        return;
    };
    // Counted before the frame goes: a client that has it sees the count.
    match frame {
        Frame::Event(_) => bump(&app.loop_stats().events_delivered),
        Frame::Heartbeat => bump(&app.loop_stats().heartbeats),
        _ => {}
    }
    cx.scratch.clear();
    let (shared, tail) =
        transport::encode_stream_frame(sub, frame, !conn.http.http10, &app.index, &mut cx.scratch);
    let len = cx.scratch.len() + shared.as_ref().map_or(0, |s| s.len()) + tail.len();
    sub.bytes_sent += len as u64;
    sub.last_write_ms = cx.now_ms;
    match batch {
        Some(batch) => {
            batch.extend_from_slice(&cx.scratch);
            batch.extend_from_slice(shared.as_deref().unwrap_or_default());
            batch.extend_from_slice(tail);
        }
        None => {
            let mut pieces = [
                Piece::Copy(&cx.scratch),
                Piece::Copy(b""),
                Piece::Copy(tail),
            ];
            if let Some(shared) = &shared {
                pieces[1] = Piece::Share(shared);
            }
            conn.http.send(&mut conn.io, cx.now_ms, &pieces);
        }
    }
}

/// Ends the stream after this frame if it has said all it will (every channel
/// closed) or reached `--stream-max-bytes`.
pub fn end_if_due(app: &mut SubscriberApp, cx: &mut Cx, conn: &mut Conn) {
    if is_due_to_end(app, conn) {
        end(app, cx, conn);
    }
}

/// Whether the stream has said all it will or reached `--stream-max-bytes` (which
/// does not apply to a WebSocket: it keeps no growing response in the browser).
fn is_due_to_end(app: &SubscriberApp, conn: &Conn) -> bool {
    let websocket = conn.http.phase == Phase::WebSocket;
    let due = conn.app.sub.as_ref().is_some_and(|sub| {
        sub.all_done() || (!websocket && sub.bytes_sent >= app.config.stream_max_bytes)
    });
    due && conn.http.streams()
}

/// Ends a stream cleanly: the last chunk (or, for HTTP/1.0, the close; for a
/// WebSocket, close `1000`) tells the client to resume with its cursor.
pub fn end(app: &mut SubscriberApp, cx: &mut Cx, conn: &mut Conn) {
    if conn.http.phase == Phase::WebSocket {
        let linger = websocket::Linger::ForEcho;
        return websocket::end(app, cx, conn, close::NORMAL, "", linger);
    }
    let Some(mut sub) = conn.app.sub.take() else {
        return;
    };
    start::end_subscription(app, &mut sub);
    if conn.http.http10 {
        conn.http.phase = Phase::Closing;
        return;
    }
    conn.send(cx.now_ms, &[Piece::Copy(transport::LAST_CHUNK)]);
    conn.http.complete(cx.now_ms);
}

/// When the stream next needs its timer: a heartbeat after `--heartbeat` of silence,
/// or its end at `--stream-max-age` or when its token expires.
pub fn deadline(app: &SubscriberApp, sub: &Subscription) -> u64 {
    let config = &app.config;
    let ms = |d: std::time::Duration| d.as_millis() as u64;
    let end = (sub.opened_ms + ms(config.stream_max_age)).min(sub.expires_ms);
    (sub.last_write_ms + ms(config.heartbeat)).min(end)
}

/// A stream's timer: end it at `--stream-max-age` or when its token expires (after a
/// whole frame, as every end is), or send a heartbeat.
pub fn on_timer(app: &mut SubscriberApp, cx: &mut Cx, _key: usize, conn: &mut Conn) {
    let config = &app.config;
    let Some(sub) = conn.app.sub.as_ref() else {
        return;
    };
    if sub.token_expired(cx.now_ms) {
        bump(&app.loop_stats().auth_subscriptions_expired);
        end(app, cx, conn);
    } else if cx.now_ms >= sub.opened_ms + config.stream_max_age.as_millis() as u64 {
        end(app, cx, conn);
    } else if cx.now_ms >= sub.last_write_ms + config.heartbeat.as_millis() as u64 {
        write_frame(app, cx, conn, &Frame::Heartbeat);
    }
}
