//! Serving subscriptions on a loop: starting one (cursors, `204`, catch-up), answering
//! long-polls and polls, feeding streams, delivering each published event to the
//! connections waiting on its channel, and ending streams.

use std::sync::Arc;

use log::warn;

use super::conn::{Conn, State};
use super::respond::{push_head, write_pieces, write_scratch, Caching, Framing};
use super::{Env, Worker};
use crate::channel::Event;
use crate::http::request::RequestHead;
use crate::http::{Method, Piece, Status};
use crate::stats::{add, bump, drop_one};
use crate::storage::catchup::{FetchRequest, Fetched};
use crate::storage::Stored;
use crate::subscribe::state::{FetchRange, Frame, Step, NOT_WAITING};
use crate::subscribe::{self, SubscribeError, Subscription, Transport};
use crate::transport::{self, longpoll};

/// Bytes of catch-up frames gathered for one write.
const CATCH_UP_WRITE: usize = 64 * 1024;

impl Worker {
    /// `GET /sub/{channels}`: starts a subscription on this connection.
    pub(super) fn subscribe(
        &mut self,
        key: usize,
        head: &RequestHead,
        channels: &str,
        query: &str,
    ) {
        let env = &mut self.env;
        let conn = &mut self.conns[key];
        let last_event_id = head.last_event_id.map(|span| span.of(&conn.input));
        let request = match subscribe::parse(
            channels,
            query,
            last_event_id,
            head.accepts_event_stream,
            env.config.max_channels,
        ) {
            Ok(request) => request,
            Err(error) => {
                let counter = match error {
                    SubscribeError::TooManyChannels => &env.loop_stats().too_many_channels,
                    _ => &env.loop_stats().bad_requests,
                };
                bump(counter);
                self.respond_text(key, Status::BadRequest, error.message().as_bytes());
                return;
            }
        };
        let keys: Vec<usize> = request
            .channels
            .iter()
            .map(|name| env.index.get_or_create(name))
            .collect();
        let callback = request.callback.map(String::into_boxed_str);
        let mut sub = Box::new(Subscription::new(
            request.transport,
            &keys,
            &request.since,
            callback,
            &env.index,
            env.now_ms,
        ));
        let head_only = head.method == Method::Head;

        if sub.all_done() {
            env.scratch.clear();
            push_head(
                env,
                conn,
                Status::NoContent,
                None,
                Framing::Empty,
                Caching::NoStore,
                &[],
            );
            write_scratch(env, conn, &[]);
            self.end_subscription(&mut sub);
            return;
        }
        match sub.transport {
            Transport::Poll => {
                let if_none_match = head.if_none_match.map(|span| span.of(&conn.input).to_vec());
                self.answer_poll(key, sub, if_none_match.as_deref(), head_only);
            }
            Transport::LongPoll if head_only => self.answer_poll(key, sub, None, true),
            Transport::LongPoll => {
                conn.sub = Some(sub);
                if conn
                    .sub
                    .as_ref()
                    .is_some_and(|sub| sub.is_behind(&env.index))
                {
                    self.answer_longpoll(key);
                } else {
                    let until_ms = env.now_ms + env.config.poll_timeout.as_millis() as u64;
                    conn.state = State::Held { until_ms };
                    self.start_waiting(key);
                }
            }
            _ => self.start_stream(key, sub, head_only),
        }
    }

    /// Registers the connection's subscription in the index for its open channels.
    fn start_waiting(&mut self, key: usize) {
        let conn = &mut self.conns[key];
        let Some(sub) = conn.sub.as_mut() else { return };
        for channel in sub.channels.iter_mut().filter(|c| !c.done) {
            channel.registration = self.env.index.subscribe(channel.key, key);
        }
        sub.waiting = true;
        self.inbox.start_waiting();
        bump(&self.env.loop_stats().subscribers);
    }

    /// Takes a subscription out of the index (and forgets channels left empty).
    pub(super) fn end_subscription(&mut self, sub: &mut Subscription) {
        for channel in &mut sub.channels {
            self.env
                .index
                .unsubscribe(channel.key, channel.registration);
            channel.registration = NOT_WAITING;
        }
        if sub.waiting {
            sub.waiting = false;
            self.inbox.stop_waiting();
            drop_one(&self.env.loop_stats().subscribers);
        }
    }

    /// `t=poll` (and HEAD of a long-poll): answers at once; `304` when the client's
    /// `If-None-Match` lists the answer's ETag.
    fn answer_poll(
        &mut self,
        key: usize,
        mut sub: Box<Subscription>,
        if_none_match: Option<&[u8]>,
        head_only: bool,
    ) {
        let body = longpoll::Body::collect(&mut sub, &self.env.index, self.env.config.max_pending);
        if let (true, Some(range), false) = (body.is_empty(), body.fetch, head_only) {
            // Owed events are in storage: wait for them like a long-poll would.
            self.conns[key].sub = Some(sub);
            self.hold_for_fetch(key, range);
            return;
        }
        self.end_subscription(&mut sub);
        let etag = poll_etag(&sub);
        let env = &mut self.env;
        let conn = &mut self.conns[key];
        let extra: [(&[u8], &[u8]); 1] = [(b"ETag", &etag)];
        let caching = if sub.transport == Transport::Poll {
            Caching::Revalidate
        } else {
            Caching::NoStore
        };
        // The ETag (the cursor after the answer) and the URL (`since`) determine the body,
        // so a matching tag means the client's copy is this answer.
        if if_none_match.is_some_and(|value| etag_matches(value, &etag)) {
            env.scratch.clear();
            push_head(
                env,
                conn,
                Status::NotModified,
                None,
                Framing::Empty,
                caching,
                &extra,
            );
            write_scratch(env, conn, &[]);
            return;
        }
        write_answer(env, conn, &sub, &body, caching, &extra, head_only);
    }

    /// Answers a long-poll with what it is owed now (maybe nothing, at its timeout or
    /// at shutdown) and returns the connection to reading requests.
    pub(super) fn answer_longpoll(&mut self, key: usize) {
        let Some(mut sub) = self.conns[key].sub.take() else {
            return;
        };
        // Collect before leaving the index: leaving may forget a channel with no events.
        let body = longpoll::Body::collect(&mut sub, &self.env.index, self.env.config.max_pending);
        if let (true, Some(range), false) = (body.is_empty(), body.fetch, self.env.shutting_down) {
            self.conns[key].sub = Some(sub);
            self.hold_for_fetch(key, range);
            return;
        }
        self.end_subscription(&mut sub);
        let env = &mut self.env;
        let conn = &mut self.conns[key];
        conn.state = State::ReadingHead {
            idle: true,
            since_ms: env.now_ms,
        };
        if env.shutting_down {
            conn.keep_alive = false;
        }
        if sub.transport == Transport::Poll {
            // A poll that waited for storage: answered as a poll, with its ETag.
            let etag = poll_etag(&sub);
            let extra: [(&[u8], &[u8]); 1] = [(b"ETag", &etag)];
            write_answer(env, conn, &sub, &body, Caching::Revalidate, &extra, false);
        } else {
            write_answer(env, conn, &sub, &body, Caching::NoStore, &[], false);
        }
    }

    /// Holds a poll or long-poll whose owed events are in storage, and asks for them;
    /// it is answered when they come (or at its timeout).
    fn hold_for_fetch(&mut self, key: usize, range: FetchRange) {
        let conn = &mut self.conns[key];
        if !matches!(conn.state, State::Held { .. }) {
            let until_ms = self.env.now_ms + self.env.config.poll_timeout.as_millis() as u64;
            conn.state = State::Held { until_ms };
        }
        if conn.sub.as_ref().is_some_and(|sub| !sub.waiting) {
            self.start_waiting(key);
        }
        self.request_fetch(key, range);
    }

    /// Asks the catch-up thread for the events of `range`; without one (nothing is
    /// stored beyond memory), the range is a gap.
    fn request_fetch(&mut self, key: usize, range: FetchRange) {
        let env = &mut self.env;
        let Some(sub) = self.conns[key].sub.as_mut() else {
            return;
        };
        env.fetch_serial += 1;
        let serial = env.fetch_serial;
        sub.start_fetch(range, serial);
        let channel = env.index.get(sub.channels[range.channel].key).name.clone();
        let request = FetchRequest {
            from_loop: env.number,
            conn: key,
            serial,
            channel,
            cursor: range.cursor,
            to: range.to,
            max_bytes: env.config.max_pending / 2,
        };
        let sent = env
            .catchup
            .as_ref()
            .is_some_and(|c| c.send(request).is_ok());
        if !sent {
            let gap = Stored::Gap {
                from: range.cursor + 1,
                to: range.to,
            };
            sub.fetched(serial, vec![gap]);
        }
    }

    /// Events from storage for a connection catching up: serve them.
    pub(super) fn on_fetched(&mut self, fetched: Fetched) {
        let key = fetched.conn;
        let Some(sub) = self.conns.get_mut(key).and_then(|c| c.sub.as_mut()) else {
            return;
        };
        if !sub.fetched(fetched.serial, fetched.items) {
            return; // for a request this connection no longer waits for
        }
        if matches!(self.conns[key].state, State::Held { .. }) {
            self.answer_longpoll(key);
        }
        self.drive(key);
    }

    /// Starts a stream: head, prelude, catch-up, then waits for events.
    fn start_stream(&mut self, key: usize, sub: Box<Subscription>, head_only: bool) {
        let env = &mut self.env;
        let conn = &mut self.conns[key];
        env.scratch.clear();
        let content_type = transport::content_type(sub.transport, false);
        let extra: &[(&[u8], &[u8])] = &[(b"X-Accel-Buffering", b"no")];
        push_head(
            env,
            conn,
            Status::Ok,
            Some(content_type),
            Framing::Stream,
            Caching::NoStore,
            extra,
        );
        if head_only {
            // HEAD: the head a stream would have, and no stream.
            let mut sub = sub;
            write_scratch(env, conn, &[]);
            self.end_subscription(&mut sub);
            return;
        }
        transport::push_prelude(
            &sub,
            !conn.http10,
            env.config.sse_retry.as_millis() as u64,
            &mut env.scratch,
        );
        write_pieces(env, conn, &[Piece::Copy(&env.scratch)]);
        conn.state = State::Streaming;
        conn.sub = Some(sub);
        self.start_waiting(key);
        self.feed_stream(key);
    }

    /// Writes frames owed from history (catch-up) while the output stays under half of
    /// `--max-pending`. Returns whether it wrote anything. The frames are gathered and
    /// written `CATCH_UP_WRITE` bytes at a time: one `writev` per event made catching up
    /// cost a loopback send per event.
    pub(super) fn feed_stream(&mut self, key: usize) -> bool {
        let budget = self.env.config.max_pending / 2;
        let mut batch = std::mem::take(&mut self.env.batch);
        batch.clear();
        let mut wrote = false;
        loop {
            let conn = &mut self.conns[key];
            if conn.state != State::Streaming
                || conn.out.pending() + batch.len() >= budget
                || conn.broken
            {
                break;
            }
            let Some(sub) = conn.sub.as_mut() else {
                break;
            };
            let frame = match sub.next(&self.env.index) {
                Step::Frame(frame) => frame,
                Step::Fetch(range) => {
                    self.request_fetch(key, range);
                    break;
                }
                Step::Idle => break,
            };
            self.stream_frame(key, &frame, Some(&mut batch));
            wrote = true;
            if batch.len() >= CATCH_UP_WRITE || self.stream_is_due_to_end(key) {
                self.write_batch(key, &mut batch);
            }
            self.end_stream_if_due(key);
        }
        self.write_batch(key, &mut batch);
        self.env.batch = batch;
        wrote
    }

    /// Writes (and empties) the gathered frames of `feed_stream`.
    fn write_batch(&mut self, key: usize, batch: &mut Vec<u8>) {
        if !batch.is_empty() {
            write_pieces(&self.env, &mut self.conns[key], &[Piece::Copy(batch)]);
            batch.clear();
        }
    }

    /// Encodes one frame for the connection's stream and writes it through.
    fn write_stream_frame(&mut self, key: usize, frame: &Frame) {
        self.stream_frame(key, frame, None);
    }

    /// Encodes one frame for the connection's stream, and writes it through or, given
    /// a batch, appends it there.
    fn stream_frame(&mut self, key: usize, frame: &Frame, batch: Option<&mut Vec<u8>>) {
        let env = &mut self.env;
        let conn = &mut self.conns[key];
        let Some(mut sub) = conn.sub.take() else {
            return;
        };
        env.scratch.clear();
        let (shared, tail) =
            transport::encode_stream_frame(&sub, frame, !conn.http10, &env.index, &mut env.scratch);
        match batch {
            Some(batch) => {
                batch.extend_from_slice(&env.scratch);
                batch.extend_from_slice(shared.as_deref().unwrap_or_default());
                batch.extend_from_slice(tail);
            }
            None => {
                let mut pieces = [
                    Piece::Copy(&env.scratch),
                    Piece::Copy(b""),
                    Piece::Copy(tail),
                ];
                if let Some(shared) = &shared {
                    pieces[1] = Piece::Share(shared);
                }
                write_pieces(env, conn, &pieces);
            }
        }
        let len = env.scratch.len() + shared.as_ref().map_or(0, |s| s.len()) + tail.len();
        sub.bytes_sent += len as u64;
        sub.last_write_ms = env.now_ms;
        if let Frame::Event(_) = frame {
            bump(&env.loop_stats().events_delivered);
        }
        conn.sub = Some(sub);
    }

    /// Ends the stream after this frame if it has said all it will (every channel
    /// closed) or reached `--stream-max-bytes`.
    fn end_stream_if_due(&mut self, key: usize) {
        if self.stream_is_due_to_end(key) {
            self.end_stream(key);
        }
    }

    /// Whether the stream has said all it will or reached `--stream-max-bytes`.
    fn stream_is_due_to_end(&self, key: usize) -> bool {
        let conn = &self.conns[key];
        let due = conn.sub.as_ref().is_some_and(|sub| {
            sub.all_done() || sub.bytes_sent >= self.env.config.stream_max_bytes
        });
        due && conn.state == State::Streaming
    }

    /// Ends a stream cleanly: the last chunk (or, for HTTP/1.0, the close) tells the
    /// client to resume with its cursor.
    pub(super) fn end_stream(&mut self, key: usize) {
        let Some(mut sub) = self.conns[key].sub.take() else {
            return;
        };
        self.end_subscription(&mut sub);
        let env = &mut self.env;
        let conn = &mut self.conns[key];
        if conn.http10 {
            conn.state = State::Closing;
            return;
        }
        write_pieces(env, conn, &[Piece::Copy(transport::LAST_CHUNK)]);
        conn.state = if conn.keep_alive && !env.shutting_down {
            State::ReadingHead {
                idle: true,
                since_ms: env.now_ms,
            }
        } else {
            State::Closing
        };
    }

    /// A stream's timer: end it at `--stream-max-age`, or send a heartbeat.
    pub(super) fn on_stream_timer(&mut self, key: usize) {
        let now = self.env.now_ms;
        let config = &self.env.config;
        let Some(sub) = self.conns[key].sub.as_ref() else {
            return;
        };
        if now >= sub.opened_ms + config.stream_max_age.as_millis() as u64 {
            self.end_stream(key);
        } else if now >= sub.last_write_ms + config.heartbeat.as_millis() as u64 {
            self.write_stream_frame(key, &Frame::Heartbeat);
        }
    }

    /// A published event: append it to this loop's replica, then give it to every
    /// connection waiting on its channel.
    pub(super) fn deliver_event(&mut self, event: Arc<Event>) {
        let Some(channel) = self.env.index.append(event.clone()) else {
            warn!(
                "worker {}: event {} of {} out of order; dropped here",
                self.env.number, event.id, event.channel
            );
            return;
        };
        let mut waiting = std::mem::take(&mut self.env.keys);
        waiting.clear();
        self.env.index.waiting_on(channel, &mut waiting);
        for &key in &waiting {
            self.deliver_to(key, channel, &event);
        }
        waiting.clear();
        self.env.keys = waiting;
    }

    fn deliver_to(&mut self, key: usize, channel: usize, event: &Arc<Event>) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let Some(sub) = conn.sub.as_mut() else { return };
        let Some(position) = sub.position_of(channel) else {
            return;
        };
        if sub.channels[position].cursor + 1 != event.id {
            return; // still catching up on this channel: `feed_stream` will get there
        }
        match conn.state {
            State::Held { .. } => self.answer_longpoll(key),
            State::Streaming => {
                sub.channels[position].cursor = event.id;
                sub.channels[position].done = event.closed;
                self.write_stream_frame(key, &Frame::Event(event.clone()));
                let conn = &self.conns[key];
                if conn.out.pending() > self.env.config.max_pending {
                    bump(&self.env.loop_stats().slow_clients_dropped);
                    self.close(key);
                    return;
                }
                self.end_stream_if_due(key);
                let conn = &self.conns[key];
                if conn.state == State::Streaming && !conn.broken {
                    // Still streaming: the frame went through `writev` already and
                    // nothing else changed but its deadlines (no read needed).
                    self.schedule(key);
                    return;
                }
            }
            _ => return,
        }
        // Answered or ended: flush, then serve what the client pipelined behind it.
        self.drive(key);
    }
}

/// Writes a long-poll or poll answer, head and body: in one `writev` for the usual
/// answer of one frame, copying nothing unless the socket leaves some of it waiting.
fn write_answer(
    env: &mut Env,
    conn: &mut Conn,
    sub: &Subscription,
    body: &longpoll::Body,
    caching: Caching,
    extra: &[(&[u8], &[u8])],
    head_only: bool,
) {
    env.scratch.clear();
    let content_type = transport::content_type(sub.transport, sub.callback.is_some());
    push_head(
        env,
        conn,
        Status::Ok,
        Some(content_type),
        Framing::Length(body.len()),
        caching,
        extra,
    );
    match (head_only, body.frames.as_slice()) {
        (true, _) => {
            write_pieces(env, conn, &[Piece::Copy(&env.scratch)]);
        }
        (false, [frame]) if conn.out.is_empty() => {
            let pieces = [
                Piece::Copy(&env.scratch),
                Piece::Copy(&body.open),
                Piece::Share(frame),
                Piece::Copy(body.close),
            ];
            write_pieces(env, conn, &pieces);
        }
        (false, _) => {
            conn.out.push(&[Piece::Copy(&env.scratch)]);
            body.pieces(|piece| conn.out.push(&[piece]));
            write_pieces(env, conn, &[]);
        }
    }
    if !head_only {
        add(&env.loop_stats().events_delivered, body.frames.len() as u64);
    }
    if !conn.keep_alive {
        conn.state = State::Closing;
    }
}

/// A poll's ETag: its cursor after the answer, in double quotes.
fn poll_etag(sub: &Subscription) -> Vec<u8> {
    let mut etag = Vec::with_capacity(24);
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
