//! A request arrives on the admin port: publish, close, channel info, stats,
//! metrics, health and the console page.

use super::acks::{self, Answer};
use super::{reply, shared, AdminApp, AdminConn, PublishError, TEXT};
use crate::channel::is_valid_name;
use crate::engine::{Connection, Cx, Request};
use crate::http::{target, Method, Status};
use crate::stats::bump;
use crate::storage::redis_store::publisher::Work;

/// How long `GET /channels/{name}` waits for the loops to count their subscribers.
pub(super) const COUNT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

pub(super) const JSON: &[u8] = b"application/json";

type Conn = Connection<AdminConn>;

/// Answers one whole request.
pub fn route(app: &mut AdminApp, cx: &mut Cx, key: usize, conn: &mut Conn, request: &Request<'_>) {
    let Ok((path, _query)) = target::split(request.target()) else {
        bump(&app.stats.admin.conns.bad_requests);
        return reply(cx, conn, Status::BadRequest, TEXT, b"bad request target\n");
    };
    let (action, rest) = match path[1..].split_once('/') {
        Some((action, rest)) => (action, Some(rest)),
        None => (&path[1..], None),
    };
    let body = request.body;
    match (request.head.method, action, rest) {
        (Method::Post, "pub", Some(name)) => {
            with_channel_name(app, cx, conn, name, |app, cx, conn, name| {
                publish(app, cx, key, conn, name, body)
            })
        }
        (Method::Post, "close", Some(name)) => {
            with_channel_name(app, cx, conn, name, |app, cx, conn, name| {
                close_channel(app, cx, key, conn, name)
            })
        }
        (Method::Get | Method::Head, "channels", Some(name)) => {
            with_channel_name(app, cx, conn, name, |app, cx, conn, name| {
                channel_info(app, cx, key, conn, name)
            })
        }
        (Method::Get | Method::Head, "stats", None) => {
            count_channels(app);
            let json = app.stats.to_json();
            reply(cx, conn, Status::Ok, JSON, json.as_bytes())
        }
        (Method::Get | Method::Head, "metrics", None) => {
            count_channels(app);
            let text = app.stats.to_prometheus();
            let content_type = b"text/plain; version=0.0.4; charset=utf-8";
            reply(cx, conn, Status::Ok, content_type, text.as_bytes())
        }
        (Method::Get | Method::Head, "healthz", None) => reply(cx, conn, Status::Ok, TEXT, b"ok\n"),
        (Method::Get | Method::Head, "", None) => {
            let page = crate::assets::CONSOLE.body;
            reply(cx, conn, Status::Ok, b"text/html; charset=utf-8", page)
        }
        (_, "pub" | "close", Some(_))
        | (_, "channels", Some(_))
        | (_, "stats" | "metrics" | "healthz" | "", None) => {
            bump(&app.stats.admin.conns.methods_not_allowed);
            reply(
                cx,
                conn,
                Status::MethodNotAllowed,
                TEXT,
                b"method not allowed here\n",
            )
        }
        _ => {
            bump(&app.stats.admin.conns.not_found);
            reply(cx, conn, Status::NotFound, TEXT, b"not found\n")
        }
    }
}

/// Brings the `channels` gauge up to date before it is reported.
fn count_channels(app: &AdminApp) {
    let known = app.ids.len() as u64;
    app.stats
        .admin
        .channels
        .store(known, std::sync::atomic::Ordering::Relaxed);
}

/// Decodes and checks the channel name of a path segment, and answers with `answer`
/// if it is good, 400 if not. (A name with nothing to decode borrows the segment.)
fn with_channel_name(
    app: &mut AdminApp,
    cx: &mut Cx,
    conn: &mut Conn,
    segment: &str,
    answer: impl FnOnce(&mut AdminApp, &mut Cx, &mut Conn, &str),
) {
    match target::decode(segment, false) {
        Ok(name) if is_valid_name(&name) => answer(app, cx, conn, &name),
        _ => {
            bump(&app.stats.admin.conns.bad_requests);
            reply(
                cx,
                conn,
                Status::BadRequest,
                TEXT,
                b"a channel name is 1 to 128 bytes of A-Z a-z 0-9 _ . : @ -\n",
            );
        }
    }
}

/// `POST /pub/{name}`: gives the body the channel's next id and stores it (the body's
/// size was checked against `--max-message` before it was read).
fn publish(app: &mut AdminApp, cx: &mut Cx, key: usize, conn: &mut Conn, name: &str, body: &[u8]) {
    if acks::refuse_if_storage_broken(app, cx, conn) {
        return;
    }
    let Ok(data) = std::str::from_utf8(body) else {
        bump(&app.stats.admin.conns.bad_requests);
        return reply(
            cx,
            conn,
            Status::BadRequest,
            TEXT,
            b"the body must be UTF-8\n",
        );
    };
    if app.shared.is_some() {
        return shared::ask(app, cx, key, conn, name, Work::Publish(body.to_vec()));
    }
    match app.ids.publish(name, data) {
        Ok(event) => {
            let answer = Answer::Id {
                status: Status::Created,
                channel: event.channel.clone(),
                id: event.id,
            };
            acks::store_and_answer(app, cx, key, conn, event, body, answer)
        }
        Err(PublishError::Closed) => {
            bump(&app.stats.admin.publishes_to_closed);
            let answer = Answer::Text {
                status: Status::Conflict,
                body: b"the channel is closed\n",
            };
            acks::answer_after_stored(app, cx, key, conn, answer)
        }
    }
}

/// `POST /close/{name}`: stores the channel's close marker (once).
fn close_channel(app: &mut AdminApp, cx: &mut Cx, key: usize, conn: &mut Conn, name: &str) {
    if acks::refuse_if_storage_broken(app, cx, conn) {
        return;
    }
    if app.shared.is_some() {
        return shared::ask(app, cx, key, conn, name, Work::Close);
    }
    let closing = app.ids.close(name);
    let answer = Answer::Id {
        status: Status::Ok,
        channel: closing.channel,
        id: closing.id,
    };
    match closing.marker {
        Some(marker) => acks::store_and_answer(app, cx, key, conn, marker, b"", answer),
        None => acks::answer_after_stored(app, cx, key, conn, answer),
    }
}

/// `GET /channels/{name}`: what is known of it, and who waits on it now over every
/// loop.
fn channel_info(app: &mut AdminApp, cx: &mut Cx, key: usize, conn: &mut Conn, name: &str) {
    if app.shared.is_some() {
        return shared::ask(app, cx, key, conn, name, Work::Bounds);
    }
    let Some(info) = app.ids.info(name) else {
        return reply(cx, conn, Status::NotFound, TEXT, b"no such channel\n");
    };
    let subscribers = app.bus.count_subscribers(name, COUNT_TIMEOUT);
    let answer = format!(
        "{{\"channel\":\"{name}\",\"first_id\":{},\"last_id\":{},\"closed\":{},\"subscribers\":{subscribers}}}\n",
        info.first_id, info.last_id, info.closed
    );
    reply(cx, conn, Status::Ok, JSON, answer.as_bytes())
}
