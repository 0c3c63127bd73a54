//! `t=poll` and `t=longpoll` answers: a poll is answered at once (`304` when its ETag
//! matches); a long-poll with nothing owed is held (`Phase::Answering`, its
//! `held_until_ms` set) until an event, its timeout or shutdown answers it.

use super::routes::{push_head, respond_empty, Caching, Head};
use super::{fetch, start, SubscriberApp, SubscriberConn};
use crate::engine::{Connection, Cx, Framing};
use crate::http::{Piece, Status};
use crate::stats::add;
use crate::subscription::{Subscription, Transport};
use crate::transport::{self, longpoll};

type Conn = Connection<SubscriberConn>;

/// `t=poll` (and HEAD of a long-poll): answers at once; `304` when the client's
/// `If-None-Match` lists the answer's ETag. The subscription is boxed only if it has
/// to wait for storage.
pub fn answer_poll(
    app: &mut SubscriberApp,
    cx: &mut Cx,
    key: usize,
    conn: &mut Conn,
    mut sub: Subscription,
    if_none_match: Option<&[u8]>,
) {
    let body = collect(app, &mut sub);
    if let (true, Some(range), false) = (body.is_empty(), body.fetch, conn.http.head_only) {
        // Owed events are in storage: wait for them like a long-poll would.
        app.body_open = body.into_open();
        conn.app.sub = Some(Box::new(sub));
        return fetch::hold_for_fetch(app, cx, key, conn, range);
    }
    start::end_subscription(app, &mut sub);
    let caching = if sub.transport == Transport::Poll {
        Caching::Revalidate
    } else {
        Caching::NoStore
    };
    let etag = poll_etag(&sub, std::mem::take(&mut app.etag));
    let extra: [(&[u8], &[u8]); 1] = [(b"ETag", &etag)];
    // The ETag (the cursor after the answer) and the URL (`since`) determine the body,
    // so a matching tag means the client's copy is this answer.
    if if_none_match.is_some_and(|value| etag_matches(value, &etag)) {
        respond_empty(app, cx, conn, Status::NotModified, caching, &extra);
    } else {
        write_answer(app, cx, conn, &sub, &body, caching, &extra);
    }
    app.etag = etag;
    app.body_open = body.into_open();
}

/// Holds a long-poll that is owed nothing yet: it waits in the index until an event,
/// its timeout (`--poll-timeout`) or shutdown answers it.
pub fn hold(app: &mut SubscriberApp, cx: &mut Cx, key: usize, conn: &mut Conn) {
    let timeout = cx.now_ms + app.config.poll_timeout.as_millis() as u64;
    // A token that expires first ends the poll first, answered with what it has.
    let expires = conn.app.sub.as_ref().map_or(u64::MAX, |sub| sub.expires_ms);
    conn.app.held_until_ms = timeout.min(expires);
    start::start_waiting(app, key, conn);
}

/// Answers a held long-poll with what it is owed now (maybe nothing, at its timeout
/// or at shutdown); the connection then reads its next request.
pub fn answer_longpoll(app: &mut SubscriberApp, cx: &mut Cx, key: usize, conn: &mut Conn) {
    answer_longpoll_with(app, cx, key, conn, false)
}

/// As `answer_longpoll`, but a long-poll owed nothing yet stays held (storage has
/// answered with nothing to serve: it only told the channel's last id).
pub fn answer_longpoll_if_owed(app: &mut SubscriberApp, cx: &mut Cx, key: usize, conn: &mut Conn) {
    answer_longpoll_with(app, cx, key, conn, true)
}

fn answer_longpoll_with(
    app: &mut SubscriberApp,
    cx: &mut Cx,
    key: usize,
    conn: &mut Conn,
    hold_if_empty: bool,
) {
    let Some(mut sub) = conn.app.sub.take() else {
        return;
    };
    // Collect before leaving the index: leaving may forget a channel with no events.
    let body = collect(app, &mut sub);
    if let (true, Some(range), false) = (body.is_empty(), body.fetch, cx.shutting_down) {
        app.body_open = body.into_open();
        conn.app.sub = Some(sub);
        return fetch::hold_for_fetch(app, cx, key, conn, range);
    }
    if body.is_empty() && hold_if_empty && !cx.shutting_down && sub.transport != Transport::Poll {
        app.body_open = body.into_open();
        conn.app.sub = Some(sub);
        return;
    }
    start::end_subscription(app, &mut sub);
    conn.app.held_until_ms = super::NOT_HELD;
    if cx.shutting_down {
        conn.http.keep_alive = false;
    }
    if sub.transport == Transport::Poll {
        // A poll that waited for storage: answered as a poll, with its ETag.
        let etag = poll_etag(&sub, std::mem::take(&mut app.etag));
        let extra: [(&[u8], &[u8]); 1] = [(b"ETag", &etag)];
        write_answer(app, cx, conn, &sub, &body, Caching::Revalidate, &extra);
        app.etag = etag;
    } else {
        write_answer(app, cx, conn, &sub, &body, Caching::NoStore, &[]);
    }
    app.body_open = body.into_open();
}

/// The body owed to `sub` now, its opening written into the loop's reused buffer
/// (given back with `app.body_open = body.into_open()`).
fn collect(app: &mut SubscriberApp, sub: &mut Subscription) -> longpoll::Body {
    let open = std::mem::take(&mut app.body_open);
    longpoll::Body::collect(sub, &app.index, app.config.max_pending, open)
}

/// Writes a long-poll or poll answer, head and body, and completes it: in one
/// `writev` for the usual answers of no frame or one, copying nothing unless the
/// socket leaves some of it waiting.
fn write_answer(
    app: &SubscriberApp,
    cx: &mut Cx,
    conn: &mut Conn,
    sub: &Subscription,
    body: &longpoll::Body,
    caching: Caching,
    extra: &[(&[u8], &[u8])],
) {
    cx.scratch.clear();
    let content_type = transport::content_type(sub.transport, sub.callback.is_some());
    let head = Head {
        status: Status::Ok,
        content_type: Some(content_type),
        framing: Framing::Length(body.len()),
        caching,
        extra,
    };
    push_head(app, cx, conn, head);
    let head_only = conn.http.head_only;
    match (head_only, body.frames.as_slice()) {
        (true, _) => {
            conn.send(cx.now_ms, &[Piece::Copy(&cx.scratch)]);
        }
        (false, []) if conn.http.out.is_empty() => {
            let pieces = [
                Piece::Copy(&cx.scratch),
                Piece::Copy(&body.open),
                Piece::Copy(body.close),
            ];
            conn.send(cx.now_ms, &pieces);
        }
        (false, [frame]) if conn.http.out.is_empty() => {
            let pieces = [
                Piece::Copy(&cx.scratch),
                Piece::Copy(&body.open),
                Piece::Share(frame),
                Piece::Copy(body.close),
            ];
            conn.send(cx.now_ms, &pieces);
        }
        (false, _) => {
            conn.http.out.push(&[Piece::Copy(&cx.scratch)]);
            body.pieces(|piece| conn.http.out.push(&[piece]));
            conn.send(cx.now_ms, &[]);
        }
    }
    if !head_only {
        add(&app.loop_stats().events_delivered, body.frames.len() as u64);
    }
    conn.http.complete(cx.now_ms);
}

/// A poll's ETag: its cursor after the answer, in double quotes, written into `etag`
/// (cleared first: a buffer the caller reuses).
fn poll_etag(sub: &Subscription, mut etag: Vec<u8>) -> Vec<u8> {
    etag.clear();
    etag.push(b'"');
    sub.push_cursor(&mut etag);
    etag.push(b'"');
    etag
}

/// Whether an `If-None-Match` value lists `etag` (weak comparison; `*` matches).
/// The value is a comma list of quoted tags, and our tags contain commas, so it is
/// read quote by quote.
pub fn etag_matches(value: &[u8], etag: &[u8]) -> bool {
    let value = value.trim_ascii();
    if value == b"*" {
        return true;
    }
    let mut rest = value;
    while !rest.is_empty() {
        rest = rest.trim_ascii_start();
        rest = rest.strip_prefix(b"W/").unwrap_or(rest);
        let Some(body) = rest.strip_prefix(b"\"") else {
            return false;
        };
        let Some(end) = body.iter().position(|&b| b == b'"') else {
            return false;
        };
        if &rest[..end + 2] == etag {
            return true;
        }
        rest = body[end + 1..].trim_ascii_start();
        rest = rest.strip_prefix(b",").unwrap_or(rest);
    }
    false
}

#[cfg(test)]
mod tests {
    use super::etag_matches;

    #[test]
    fn if_none_match_lists() {
        let table: &[(&[u8], bool)] = &[
            (b"\"4,0\"", true),
            (b"W/\"4,0\"", true),
            (b"\"1\", \"4,0\"", true),
            (b"*", true),
            (b"\"4\"", false),
            (b"4,0", false),
            (b"\"4,0", false),
            (b"", false),
        ];
        for (value, expected) in table {
            assert_eq!(
                etag_matches(value, b"\"4,0\""),
                *expected,
                "{:?}",
                String::from_utf8_lossy(value)
            );
        }
    }
}
