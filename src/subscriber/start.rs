//! A subscription starts: `GET /sub/{channels}` read into cursors, `204` when it is
//! already over, and the answer it gets (a poll now, a held long-poll, a stream, a
//! WebSocket after its handshake is checked); and
//! its place in the loop's channel index while it waits.

use super::routes::{respond_empty, respond_text, Caching};
use super::{authorize, poll, publish, stream, websocket, SubscriberApp, SubscriberConn};
use crate::engine::{Connection, Cx, Request};
use crate::http::Status;
use crate::stats::{bump, drop_one};
use crate::subscription::state::NOT_WAITING;
use crate::subscription::{self, HeadHints, SubscribeError, Subscription, Transport};

type Conn = Connection<SubscriberConn>;

/// `GET /sub/{channels}?{query}`: starts a subscription on this connection.
pub fn subscribe(
    app: &mut SubscriberApp,
    cx: &mut Cx,
    key: usize,
    conn: &mut Conn,
    request: &Request<'_>,
    channels: &str,
    query: &str,
) {
    let head = request.head;
    let hints = HeadHints {
        last_event_id: request.span(head.last_event_id),
        accepts_event_stream: head.accepts_event_stream,
        asks_websocket: head.asks_websocket,
    };
    let asked = match subscription::parse(channels, query, hints, app.config.max_channels) {
        Ok(asked) => asked,
        Err(error) => {
            let stats = app.loop_stats();
            let counter = match error {
                SubscribeError::TooManyChannels => &stats.too_many_channels,
                _ => &stats.conns.bad_requests,
            };
            bump(counter);
            return respond_text(
                app,
                cx,
                conn,
                Status::BadRequest,
                error.message().as_bytes(),
            );
        }
    };
    let token = authorize::token_of(request, asked.token.as_deref());
    let Ok(access) = authorize::subscription(app, cx, conn, token, &asked.channels) else {
        return; // refused
    };
    let handshake = match asked.transport {
        Transport::Ws => match websocket::check_handshake(app, cx, conn, request) {
            Some(handshake) => Some(handshake),
            None => return, // refused
        },
        _ => None,
    };
    let mut keys = std::mem::take(&mut app.keys);
    keys.clear();
    keys.extend(
        asked
            .channels
            .iter()
            .map(|name| app.index.get_or_create(name)),
    );
    let callback = asked
        .callback
        .map(|name| name.into_owned().into_boxed_str());
    // Boxed only if it stays with the connection: a poll is answered and dropped.
    let mut sub = Subscription::new(
        asked.transport,
        &keys,
        &asked.since,
        callback,
        &app.index,
        cx.now_ms,
    );
    app.keys = keys;
    sub.expires_ms = access.expires_ms;
    if sub.all_done() {
        respond_empty(app, cx, conn, Status::NoContent, Caching::NoStore, &[]);
        return end_subscription(app, &mut sub);
    }
    match sub.transport {
        Transport::Poll => {
            let if_none_match = request.span(head.if_none_match);
            poll::answer_poll(app, cx, key, conn, sub, if_none_match);
        }
        Transport::LongPoll if conn.http.head_only => {
            poll::answer_poll(app, cx, key, conn, sub, None)
        }
        Transport::LongPoll => {
            let behind = sub.is_behind(&app.index);
            conn.app.sub = Some(Box::new(sub));
            if behind {
                poll::answer_longpoll(app, cx, key, conn);
            } else {
                poll::hold(app, cx, key, conn);
            }
        }
        Transport::Ws => {
            let handshake = handshake.expect("checked for every WebSocket");
            if let Some(grant) = access.grant.filter(|grant| !grant.publish.is_empty()) {
                publish::publishing_state(conn).token_publish = grant.publish;
            }
            websocket::start(app, cx, key, conn, Box::new(sub), handshake);
        }
        _ => stream::start(app, cx, key, conn, Box::new(sub)),
    }
}

/// Registers the connection's subscription in the index for its open channels: it is
/// delivered to from now on.
pub fn start_waiting(app: &mut SubscriberApp, key: usize, conn: &mut Conn) {
    let Some(sub) = conn.app.sub.as_mut() else {
        return;
    };
    for channel in sub.channels.iter_mut().filter(|c| !c.done) {
        channel.registration = app.index.subscribe(channel.key, key);
    }
    sub.waiting = true;
    app.inbox.start_waiting();
    bump(&app.loop_stats().subscribers);
}

/// Takes a subscription out of the index (and forgets channels left empty).
pub fn end_subscription(app: &mut SubscriberApp, sub: &mut Subscription) {
    for channel in &mut sub.channels {
        app.index.unsubscribe(channel.key, channel.registration);
        channel.registration = NOT_WAITING;
    }
    if sub.waiting {
        sub.waiting = false;
        app.inbox.stop_waiting();
        drop_one(&app.loop_stats().subscribers);
    }
}
