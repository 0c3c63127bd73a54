//! Publishing from browsers (PROTOCOL.md, "Publishing from browsers"): `POST
//! /pub/{channel}` on the subscriber port, and `{"pub":..}` messages on a WebSocket.
//! The loop checks what it can alone (the channel against `--client-publish`, the
//! size, the connection's rate) and hands the rest to the admin thread, the one place
//! that gives ids and stores (`admin_inbox.rs`). It never waits for it: the answer
//! comes back through the loop's inbox (`on_answer`), and a connection's answers go
//! out in the order of its requests, those the loop refused itself included.

use std::borrow::Cow;
use std::collections::VecDeque;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::routes::respond;
use super::{authorize, SubscriberApp, SubscriberConn};
use crate::admin_inbox::{AdminMessage, ClientPublish, PublishAnswer, ReplyTo};
use crate::channel::is_valid_name;
use crate::engine::{Connection, Conns, Cx, Phase, Request};
use crate::http::{target, Piece, Status};
use crate::json;
use crate::stats::bump;
use crate::websocket::write;

type Conn = Connection<SubscriberConn>;

/// Publishes of one connection at the admin thread at once; past this its WebSocket
/// reads no further message until answers come back (a client that publishes faster
/// than the server stores waits, as one that sends faster than it reads does).
pub const MAX_WAITING: usize = 64;

/// Why a browser publish is refused, as a WebSocket `error` and an HTTP answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Forbidden,
    Closed,
    TooLarge,
    BadRequest,
    RateLimited,
    Unavailable,
}

impl Refusal {
    /// The `error` of a WebSocket answer.
    fn code(self) -> &'static str {
        match self {
            Refusal::Forbidden => "forbidden",
            Refusal::Closed => "closed",
            Refusal::TooLarge => "too_large",
            Refusal::BadRequest => "bad_request",
            Refusal::RateLimited => "rate_limited",
            Refusal::Unavailable => "unavailable",
        }
    }

    /// The HTTP status and text.
    fn http(self) -> (Status, &'static [u8]) {
        match self {
            Refusal::Forbidden => (
                Status::Forbidden,
                b"browsers may not publish to this channel (--client-publish)\n",
            ),
            Refusal::Closed => (Status::Conflict, b"the channel is closed\n"),
            Refusal::TooLarge => (Status::ContentTooLarge, b"body over --max-message\n"),
            Refusal::BadRequest => (
                Status::BadRequest,
                b"a channel name is 1 to 128 bytes of A-Z a-z 0-9 _ . : @ -, and the body UTF-8\n",
            ),
            Refusal::RateLimited => (
                Status::TooManyRequests,
                b"over --client-publish-rate on this connection\n",
            ),
            Refusal::Unavailable => (
                Status::ServiceUnavailable,
                b"the event could not be stored; nothing was stored\n",
            ),
        }
    }
}

/// One publish of a connection, in the order they came.
#[derive(Debug)]
struct Slot {
    /// The request's `ref`, as it came (`null` if it had none): WebSocket only.
    reference: Box<[u8]>,
    /// The answer, once known (`None` while the admin thread has it).
    answer: Option<Result<(Box<str>, u64), Refusal>>,
}

/// A connection's publishes waiting for their answers, and its rate.
#[derive(Debug, Default)]
pub struct Queue {
    /// Tells this connection's answers from those of a later one under its key; 0
    /// until its first hand-over.
    serial: u64,
    slots: VecDeque<Slot>,
    /// Publishes the rate still allows now (a token bucket of one second's worth).
    allowance: f64,
    /// When `allowance` was last topped up (ms); 0 before the first publish.
    topped_up_ms: u64,
}

impl Queue {
    /// Publishes handed to the admin thread and not yet answered, or answered and
    /// waiting behind one that is.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether a publish is allowed now by a rate of `rate` a second (0: no limit).
    fn allow(&mut self, now_ms: u64, rate: u32) -> bool {
        if rate == 0 {
            return true;
        }
        let rate = f64::from(rate);
        if self.topped_up_ms == 0 {
            self.allowance = rate;
        } else {
            let elapsed = now_ms.saturating_sub(self.topped_up_ms) as f64 / 1000.0;
            self.allowance = (self.allowance + elapsed * rate).min(rate);
        }
        self.topped_up_ms = now_ms.max(1);
        if self.allowance >= 1.0 {
            self.allowance -= 1.0;
            true
        } else {
            false
        }
    }
}

/// A WebSocket publish request.
#[derive(Debug, Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "pub", borrow)]
    channel: Cow<'a, str>,
    #[serde(borrow)]
    data: Cow<'a, str>,
    #[serde(rename = "ref", borrow, default)]
    reference: Option<&'a RawValue>,
}

/// Only the `ref` of a request that is otherwise bad, to echo it.
#[derive(Debug, Deserialize)]
struct ReferenceOnly<'a> {
    #[serde(rename = "ref", borrow, default)]
    reference: Option<&'a RawValue>,
}

/// A `ref` as PROTOCOL.md allows it: a JSON number or string.
fn is_valid_reference(raw: &RawValue) -> bool {
    matches!(
        raw.get().as_bytes().first(),
        Some(b'"' | b'-' | b'0'..=b'9')
    )
}

/// A text message on a WebSocket: a publish request, answered in order.
pub fn from_websocket(
    app: &mut SubscriberApp,
    cx: &mut Cx,
    key: usize,
    conn: &mut Conn,
    text: &[u8],
) {
    let (reference, answer) = match serde_json::from_slice::<Envelope>(text) {
        Ok(Envelope {
            reference: Some(raw),
            ..
        }) if !is_valid_reference(raw) => (&b"null"[..], Some(Err(Refusal::BadRequest))),
        Ok(envelope) => {
            let reference = envelope
                .reference
                .map_or(&b"null"[..], |raw| raw.get().as_bytes());
            let handed = check(app, cx, conn, &envelope.channel, &envelope.data)
                .and_then(|(channel, data)| hand_over(app, key, conn, channel, data));
            (reference, handed.err().map(Err))
        }
        Err(_) => {
            let reference = serde_json::from_slice::<ReferenceOnly>(text)
                .ok()
                .and_then(|only| only.reference)
                .filter(|raw| is_valid_reference(raw))
                .map_or(&b"null"[..], |raw| raw.get().as_bytes());
            (reference, Some(Err(Refusal::BadRequest)))
        }
    };
    if let Some(Err(refusal)) = answer {
        count_refusal(app, refusal);
    }
    publishing(conn).slots.push_back(Slot {
        reference: reference.into(),
        answer,
    });
    send_ready(cx, conn);
}

/// `POST /pub/{channel}` on the subscriber port (publishing is on: `routes.rs` answers
/// `405` when it is off): refused at once, or held until the admin thread answers.
pub fn from_post(
    app: &mut SubscriberApp,
    cx: &mut Cx,
    key: usize,
    conn: &mut Conn,
    (segment, query): (&str, &str),
    request: &Request<'_>,
) {
    let name = match target::decode(segment, false) {
        Ok(name) => name,
        Err(_) => return refuse_post(app, cx, conn, Refusal::BadRequest),
    };
    let Ok(data) = std::str::from_utf8(request.body) else {
        return refuse_post(app, cx, conn, Refusal::BadRequest);
    };
    let query_token = target::pairs(query)
        .find(|(k, _)| *k == "token")
        .map(|(_, v)| v);
    let token = authorize::token_of(request, query_token);
    let Ok(patterns) = authorize::publish(app, cx, conn, token, &name) else {
        return; // answered 401
    };
    publishing_state(conn).token_publish = patterns.unwrap_or_default();
    let handed = check(app, cx, conn, &name, data)
        .and_then(|(channel, data)| hand_over(app, key, conn, channel, data));
    match handed {
        Ok(()) => publishing(conn).slots.push_back(Slot {
            reference: Box::default(),
            answer: None,
        }),
        Err(refusal) => refuse_post(app, cx, conn, refusal),
    }
}

/// Answers a `POST` with a refusal (and counts it).
fn refuse_post(app: &SubscriberApp, cx: &mut Cx, conn: &mut Conn, refusal: Refusal) {
    count_refusal(app, refusal);
    answer_post(app, cx, conn, Err(refusal));
}

/// Writes a `POST`'s answer: `201` as the admin port gives it, or the refusal.
fn answer_post(
    app: &SubscriberApp,
    cx: &mut Cx,
    conn: &mut Conn,
    answer: Result<(Box<str>, u64), Refusal>,
) {
    const TEXT: &[u8] = b"text/plain; charset=utf-8";
    match answer {
        Ok((channel, id)) => {
            let body = format!("{{\"channel\":\"{channel}\",\"id\":{id}}}\n");
            respond(
                app,
                cx,
                conn,
                Status::Created,
                b"application/json",
                body.as_bytes(),
                &[],
            );
        }
        Err(Refusal::RateLimited) => {
            let (status, text) = Refusal::RateLimited.http();
            respond(app, cx, conn, status, TEXT, text, &[(b"Retry-After", b"1")]);
        }
        Err(refusal) => {
            let (status, text) = refusal.http();
            respond(app, cx, conn, status, TEXT, text, &[]);
        }
    }
}

/// What the loop checks alone: a channel name, allowed by `--client-publish`, data
/// within `--max-message`, the connection's rate.
fn check<'a>(
    app: &SubscriberApp,
    cx: &Cx,
    conn: &mut Conn,
    channel: &'a str,
    data: &'a str,
) -> Result<(&'a str, &'a str), Refusal> {
    if !is_valid_name(channel) {
        return Err(Refusal::BadRequest);
    }
    let by_token = conn
        .app
        .inbound
        .as_ref()
        .is_some_and(|inbound| inbound.token_publish.matches(channel));
    if !app.config.client_publish.matches(channel) && !by_token {
        return Err(Refusal::Forbidden);
    }
    if data.len() > app.config.max_message {
        return Err(Refusal::TooLarge);
    }
    if !publishing(conn).allow(cx.now_ms, app.config.client_publish_rate) {
        return Err(Refusal::RateLimited);
    }
    Ok((channel, data))
}

/// Hands a checked publish to the admin thread (woken at the end of the loop's turn).
fn hand_over(
    app: &mut SubscriberApp,
    key: usize,
    conn: &mut Conn,
    channel: &str,
    data: &str,
) -> Result<(), Refusal> {
    let Some(admin) = &app.admin else {
        return Err(Refusal::Unavailable);
    };
    let queue = publishing(conn);
    if queue.serial == 0 {
        app.serial += 1;
        queue.serial = app.serial;
    }
    let message = AdminMessage::Publish(ClientPublish {
        reply_to: ReplyTo {
            loop_number: app.number,
            key,
            serial: queue.serial,
        },
        channel: channel.into(),
        data: data.into(),
    });
    if !admin.queue(message) {
        return Err(Refusal::Unavailable);
    }
    app.admin_unwoken = true;
    bump(&app.loop_stats().client_publishes);
    Ok(())
}

/// The connection's publishing state, made at its first publish.
fn publishing(conn: &mut Conn) -> &mut Queue {
    &mut publishing_state(conn).publishing
}

/// What the connection keeps of what it sends, made when first needed.
pub fn publishing_state(conn: &mut Conn) -> &mut super::Inbound {
    conn.app.inbound.get_or_insert_with(Box::default)
}

/// Counts a refusal the loop made itself.
fn count_refusal(app: &SubscriberApp, refusal: Refusal) {
    let stats = app.loop_stats();
    let counter = match refusal {
        Refusal::Forbidden => &stats.client_publishes_forbidden,
        Refusal::RateLimited => &stats.client_publishes_rate_limited,
        Refusal::TooLarge => &stats.client_publishes_too_large,
        Refusal::BadRequest => &stats.client_publishes_malformed,
        // Answered by the admin thread, which counts them.
        Refusal::Closed | Refusal::Unavailable => return,
    };
    bump(counter);
}

/// Writes, in order, the WebSocket answers that are known and have none unknown
/// before them.
fn send_ready(cx: &mut Cx, conn: &mut Conn) {
    let Some(inbound) = conn.app.inbound.as_mut() else {
        return;
    };
    let queue = &mut inbound.publishing;
    let out = &mut cx.scratch;
    out.clear();
    while queue
        .slots
        .front()
        .is_some_and(|slot| slot.answer.is_some())
    {
        let slot = queue.slots.pop_front().expect("checked");
        let mut json = Vec::with_capacity(64 + slot.reference.len());
        json.extend_from_slice(b"{\"ack\":");
        json.extend_from_slice(&slot.reference);
        match slot.answer.expect("checked") {
            Ok((channel, id)) => {
                json.extend_from_slice(b",\"ch\":");
                json::push_string(&mut json, &channel);
                json.extend_from_slice(b",\"id\":");
                crate::http::response::push_decimal(&mut json, id);
            }
            Err(refusal) => {
                json.extend_from_slice(b",\"error\":\"");
                json.extend_from_slice(refusal.code().as_bytes());
                json.push(b'"');
            }
        }
        json.push(b'}');
        write::push_text(out, &json);
    }
    // Nothing follows the server's close (the subscription is gone with it).
    if !out.is_empty() && conn.http.phase == Phase::WebSocket && conn.app.sub.is_some() {
        conn.send(cx.now_ms, &[Piece::Copy(&cx.scratch)]);
    }
}

/// The admin thread answered a publish of connection `to.key`: answer its `POST`, or
/// write its WebSocket answers that are now in order.
pub fn on_answer(
    app: &mut SubscriberApp,
    conns: &mut Conns<SubscriberConn>,
    to: ReplyTo,
    answer: PublishAnswer,
) {
    let Some((cx, conn)) = conns.split(to.key) else {
        return; // it left: the event is stored all the same
    };
    let Some(inbound) = conn.app.inbound.as_mut() else {
        return;
    };
    let queue = &mut inbound.publishing;
    if queue.serial != to.serial {
        return; // a later connection under the same key
    }
    let Some(at) = queue.slots.iter().position(|slot| slot.answer.is_none()) else {
        return;
    };
    let answer = match answer {
        PublishAnswer::Stored { channel, id } => Ok((Box::<str>::from(&*channel), id)),
        PublishAnswer::Closed => Err(Refusal::Closed),
        PublishAnswer::Unavailable => Err(Refusal::Unavailable),
    };
    match conn.http.phase {
        Phase::Answering => {
            queue.slots.remove(at);
            answer_post(app, cx, conn, answer);
        }
        Phase::WebSocket => {
            queue.slots[at].answer = Some(answer);
            send_ready(cx, conn);
        }
        _ => return,
    }
    // Flush, and read on: pipelined requests, or messages held back by `MAX_WAITING`.
    conns.drive(app, to.key);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_allows_a_second_s_worth_then_refills() {
        let mut queue = Queue::default();
        let now = 5_000;
        assert!((0..3).all(|_| queue.allow(now, 3)));
        assert!(!queue.allow(now, 3));
        assert!(!queue.allow(now + 300, 3), "a third of a token is not one");
        assert!(queue.allow(now + 340, 3));
        assert!((0..1000).all(|_| queue.allow(now, 0)), "0 is no limit");
    }

    #[test]
    fn references_are_numbers_or_strings() {
        let raw = |text: &str| RawValue::from_string(text.to_string()).unwrap();
        for good in ["7", "-1.5e3", "\"a\"", "0"] {
            assert!(is_valid_reference(&raw(good)), "{good}");
        }
        for bad in ["null", "true", "{}", "[1]"] {
            assert!(!is_valid_reference(&raw(bad)), "{bad}");
        }
    }
}
