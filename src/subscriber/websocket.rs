//! WebSocket subscriptions (`t=ws`, or a handshake without `t=`): the handshake's
//! checks and its `101`, the client's frames (pings, closes, publish requests, every
//! violation with its close code), and the server's closes. Frames out are the
//! stream's (`stream.rs` feeds and ends a WebSocket as it does a stream; the
//! encoding is `transport/ws.rs`); the codec is `websocket/`.
//!
//! A close the server begins (every channel closed, shutdown) waits for the client's
//! echo for at most `--write-timeout`, then the server closes the socket: the client
//! has read everything before the close frame when it echoes, so nothing is lost to
//! a reset. A close for bad input or a slow reader closes the socket once the close
//! frame is flushed.

use super::routes::respond;
use super::{publish, start, Cors, SubscriberApp, SubscriberConn};
use crate::config::AllowOrigin;
use crate::engine::{Connection, Cx, Phase, Request};
use crate::http::{response, Method, Piece, Status};
use crate::stats::bump;
use crate::subscription::Subscription;
use crate::websocket::handshake::{self, HandshakeError, ACCEPT_LEN, SUBPROTOCOL};
use crate::websocket::read::{Incoming, TextAt, Violation};
use crate::websocket::{close, write};

type Conn = Connection<SubscriberConn>;

/// Room for the publish envelope (`{"pub":..,"data":..,"ref":..}` and the escapes of
/// its data) beyond `--max-message` in a client message.
pub const ENVELOPE_ROOM: usize = 1024;

/// A handshake that passed its checks.
#[derive(Debug, Clone, Copy)]
pub struct Handshake {
    accept: [u8; ACCEPT_LEN],
    subprotocol: bool,
}

/// Checks a WebSocket handshake: `GET`, the key and version (`400` with
/// `Sec-WebSocket-Version: 13`), the origin against a list in `--allow-origin`
/// (`403`). Answers a refusal itself and returns `None`.
pub fn check_handshake(
    app: &SubscriberApp,
    cx: &mut Cx,
    conn: &mut Conn,
    request: &Request<'_>,
) -> Option<Handshake> {
    let head = request.head;
    let checked = match head.method {
        Method::Get => handshake::accept(
            request.span(head.websocket_key),
            request.span(head.websocket_version),
        ),
        _ => Err(HandshakeError::BadKey),
    };
    let refusal: (Status, &[u8]) = match checked {
        Ok(_) if refuses_origin(app, conn, request) => {
            (Status::Forbidden, b"this origin is not in --allow-origin\n")
        }
        Ok(accept) => {
            return Some(Handshake {
                accept,
                subprotocol: handshake::offers_subprotocol(request.span(head.websocket_protocol)),
            })
        }
        Err(HandshakeError::BadKey) if head.method != Method::Get => {
            (Status::BadRequest, b"a WebSocket handshake is a GET\n")
        }
        Err(error) => (Status::BadRequest, error.message().as_bytes()),
    };
    bump(&app.loop_stats().ws_handshakes_refused);
    let version: &[(&[u8], &[u8])] = &[(b"Sec-WebSocket-Version", b"13")];
    let extra = if refusal.0 == Status::BadRequest {
        version
    } else {
        &[]
    };
    respond(
        app,
        cx,
        conn,
        refusal.0,
        b"text/plain; charset=utf-8",
        refusal.1,
        extra,
    );
    None
}

/// Whether `--allow-origin` is a list and the handshake's `Origin` is not in it. A
/// handshake with no `Origin` (not a browser's: no page can be tricked into it) is
/// not refused.
fn refuses_origin(app: &SubscriberApp, conn: &Conn, request: &Request<'_>) -> bool {
    matches!(app.config.allow_origin, AllowOrigin::List(_))
        && request.head.origin.is_some()
        && conn.app.cors == Cors::Denied
}

/// Answers `101`, and the connection is a WebSocket subscriber from now on: it waits
/// for events and catches up on what history owes.
pub fn start(
    app: &mut SubscriberApp,
    cx: &mut Cx,
    key: usize,
    conn: &mut Conn,
    sub: Box<Subscription>,
    handshake: Handshake,
) {
    let out = &mut cx.scratch;
    out.clear();
    response::start(out, Status::SwitchingProtocols, cx.date.get());
    response::header(out, b"Upgrade", b"websocket");
    response::header(out, b"Connection", b"Upgrade");
    response::header(out, b"Sec-WebSocket-Accept", &handshake.accept);
    if handshake.subprotocol {
        response::header(out, b"Sec-WebSocket-Protocol", SUBPROTOCOL);
    }
    response::end(out);
    bump(&app.loop_stats().ws_handshakes);
    conn.send(cx.now_ms, &[Piece::Copy(&cx.scratch)]);
    conn.http.upgrade();
    conn.app.sub = Some(sub);
    start::start_waiting(app, key, conn);
    super::stream::feed(app, cx, key, conn);
}

/// The client's frames: reads every whole one in the input and acts on it, while the
/// connection is open and its output has room. Returns whether it did anything.
pub fn on_input(app: &mut SubscriberApp, cx: &mut Cx, key: usize, conn: &mut Conn) -> bool {
    let max_message = app.config.max_message + ENVELOPE_ROOM;
    let room = app.config.max_pending / 2;
    let mut input = std::mem::take(&mut conn.http.input);
    let mut at = 0;
    while conn.http.phase == Phase::WebSocket && conn.http.out.pending() < room {
        let inbound = conn.app.inbound.get_or_insert_with(Box::default);
        if inbound.publishing.len() >= publish::MAX_WAITING {
            break; // read on when the admin thread has answered
        }
        let (incoming, used) = match inbound.reader.read(&mut input[at..], max_message) {
            Ok(Some(read)) => read,
            Ok(None) => break,
            Err(violation) => {
                at = input.len();
                refuse(app, cx, conn, violation);
                break;
            }
        };
        let frame = at..at + used;
        at += used;
        if conn.app.sub.is_none() && !matches!(incoming, Incoming::Close(_)) {
            // The server's close is sent: no frame but a close may follow it (RFC
            // 6455 section 5.5.1), so only the client's close is looked at.
            continue;
        }
        match incoming {
            Incoming::Text(TextAt::Input(range)) => {
                let text = &input[frame.start + range.start..frame.start + range.end];
                publish::from_websocket(app, cx, key, conn, text);
            }
            Incoming::Text(TextAt::Assembled) => {
                let inbound = conn.app.inbound.as_mut().expect("made above");
                let text = inbound.reader.take_assembled();
                publish::from_websocket(app, cx, key, conn, &text);
                if let Some(inbound) = conn.app.inbound.as_mut() {
                    inbound.reader.give_back(text);
                }
            }
            Incoming::Ping(range) => {
                let payload = &input[frame.start + range.start..frame.start + range.end];
                // Counted before it is sent: a client that sees it sees the count.
                bump(&app.loop_stats().ws_pings);
                cx.scratch.clear();
                write::push_pong(&mut cx.scratch, payload);
                conn.send(cx.now_ms, &[Piece::Copy(&cx.scratch)]);
            }
            Incoming::Fragment | Incoming::Pong => {}
            Incoming::Close(code) => on_close_frame(app, cx, conn, code),
        }
    }
    input.drain(..at);
    conn.http.input = input;
    at > 0
}

/// The client's close: the echo of the server's (the connection ends), or its own,
/// which is echoed with its code before the connection ends.
fn on_close_frame(app: &mut SubscriberApp, cx: &mut Cx, conn: &mut Conn, code: Option<u16>) {
    if let Some(mut sub) = conn.app.sub.take() {
        bump(&app.loop_stats().ws_client_closes);
        start::end_subscription(app, &mut sub);
        cx.scratch.clear();
        match code {
            Some(code) => write::push_close(&mut cx.scratch, code, ""),
            None => write::push_head(&mut cx.scratch, crate::websocket::Opcode::Close, 0),
        }
        conn.send(cx.now_ms, &[Piece::Copy(&cx.scratch)]);
    }
    conn.http.phase = Phase::Closing;
}

/// Bad input from the client: a close with the violation's code, and the end.
fn refuse(app: &mut SubscriberApp, cx: &mut Cx, conn: &mut Conn, violation: Violation) {
    let stats = app.loop_stats();
    let counter = match violation {
        Violation::Protocol(_) => &stats.ws_protocol_errors,
        Violation::TooBig => &stats.ws_messages_too_big,
        Violation::NotUtf8 => &stats.ws_not_utf8,
    };
    bump(counter);
    log::debug!("{}: WebSocket closed: {}", app.name, violation.reason());
    end(
        app,
        cx,
        conn,
        violation.code(),
        violation.reason(),
        Linger::No,
    );
}

/// Whether a close the server sends waits for the client's echo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Linger {
    /// Wait (up to `--write-timeout`) for the echo, reading on.
    ForEcho,
    /// Close the socket once the close frame is flushed.
    No,
}

/// Ends a WebSocket subscription with a close frame of `code`. A connection that has
/// sent its close already sends none again.
pub fn end(
    app: &mut SubscriberApp,
    cx: &mut Cx,
    conn: &mut Conn,
    code: u16,
    reason: &str,
    linger: Linger,
) {
    let Some(mut sub) = conn.app.sub.take() else {
        // Its close is sent already.
        if linger == Linger::No {
            conn.http.phase = Phase::Closing;
        }
        return;
    };
    start::end_subscription(app, &mut sub);
    let stats = app.loop_stats();
    match code {
        close::NORMAL => bump(&stats.ws_closed_normal),
        close::GOING_AWAY => bump(&stats.ws_going_away),
        _ => {}
    }
    cx.scratch.clear();
    write::push_close(&mut cx.scratch, code, reason);
    conn.send(cx.now_ms, &[Piece::Copy(&cx.scratch)]);
    match linger {
        Linger::ForEcho => {
            conn.app.held_until_ms = cx.now_ms + app.config.write_timeout.as_millis() as u64
        }
        Linger::No => conn.http.phase = Phase::Closing,
    }
}

/// When the connection next needs its timer: a heartbeat after `--heartbeat` of
/// silence, or its token's expiry, while it is open; the end of the wait for the
/// client's close echo after.
pub fn deadline(app: &SubscriberApp, conn: &Conn) -> Option<u64> {
    match &conn.app.sub {
        Some(sub) => {
            let heartbeat = sub.last_write_ms + app.config.heartbeat.as_millis() as u64;
            Some(heartbeat.min(sub.expires_ms))
        }
        None => conn.app.held_until(),
    }
}

/// The timer: the token expired (close `4001`), a heartbeat, or the client never
/// echoed the close (the socket closes).
pub fn on_timer(app: &mut SubscriberApp, cx: &mut Cx, conn: &mut Conn) {
    if conn
        .app
        .sub
        .as_ref()
        .is_some_and(|sub| sub.token_expired(cx.now_ms))
    {
        bump(&app.loop_stats().auth_subscriptions_expired);
        let (code, linger) = (close::TOKEN_EXPIRED, Linger::ForEcho);
        return end(app, cx, conn, code, "token expired", linger);
    }
    let heartbeat_at = deadline(app, conn);
    match &conn.app.sub {
        Some(_) if heartbeat_at.is_some_and(|at| cx.now_ms >= at) => {
            super::stream::write_frame(app, cx, conn, &crate::subscription::state::Frame::Heartbeat)
        }
        Some(_) => {}
        None if conn.app.held_until().is_some_and(|at| cx.now_ms >= at) => {
            conn.http.phase = Phase::Closing
        }
        None => {}
    }
}
