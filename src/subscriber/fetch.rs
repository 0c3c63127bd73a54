//! Events older than the loop's memory: a subscription owed them asks the catch-up
//! thread (`storage/catchup.rs`) and is answered through the inbox, so the loop never
//! waits on the disk. A poll waiting for them is held like a long-poll.

use super::{poll, start, SubscriberApp, SubscriberConn};
use crate::engine::{Connection, Conns, Cx, Phase};
use crate::storage::catchup::{FetchRequest, Fetched};
use crate::storage::Stored;
use crate::subscription::state::FetchRange;

type Conn = Connection<SubscriberConn>;

/// Holds a poll or long-poll whose owed events are in storage, and asks for them; it
/// is answered when they come (or at its timeout).
pub fn hold_for_fetch(
    app: &mut SubscriberApp,
    cx: &mut Cx,
    key: usize,
    conn: &mut Conn,
    range: FetchRange,
) {
    if conn.app.held_until().is_none() {
        conn.app.held_until_ms = cx.now_ms + app.config.poll_timeout.as_millis() as u64;
    }
    if conn.app.sub.as_ref().is_some_and(|sub| !sub.waiting) {
        start::start_waiting(app, key, conn);
    }
    request(app, key, conn, range);
}

/// Asks the catch-up thread for the events of `range`; without one (nothing is
/// stored beyond memory), the range is a gap.
pub fn request(app: &mut SubscriberApp, key: usize, conn: &mut Conn, range: FetchRange) {
    let Some(sub) = conn.app.sub.as_mut() else {
        return;
    };
    app.fetch_serial += 1;
    let serial = app.fetch_serial;
    sub.start_fetch(range, serial);
    let channel = app.index.get(sub.channels[range.channel].key).name.clone();
    let request = FetchRequest {
        from_loop: app.number,
        conn: key,
        serial,
        channel,
        cursor: range.cursor,
        to: range.to,
        max_bytes: app.config.max_pending / 2,
    };
    let sent = app
        .catchup
        .as_ref()
        .is_some_and(|c| c.send(request).is_ok());
    if !sent {
        let gap = Stored::Gap {
            from: range.cursor + 1,
            to: range.to,
        };
        sub.fetched(serial, vec![gap], None);
    }
}

/// Events from storage for a connection catching up: serve them.
pub fn on_fetched(app: &mut SubscriberApp, conns: &mut Conns<SubscriberConn>, fetched: Fetched) {
    match fetched.bounds {
        // Shared storage's word on the channel, before its events are served.
        Some((last_id, closed_id)) => app.index.learn(&fetched.channel, last_id, closed_id),
        // It did not answer: not asked again until the channel's next event.
        None if app.index.is_shared() => app.index.unanswered(&fetched.channel),
        None => {}
    }
    let key = fetched.conn;
    let Some((cx, conn)) = conns.split(key) else {
        return;
    };
    let Some(sub) = conn.app.sub.as_mut() else {
        return;
    };
    if !sub.fetched(fetched.serial, fetched.items, fetched.bounds) {
        return; // for a request this connection no longer waits for
    }
    if conn.http.phase == Phase::Answering {
        poll::answer_longpoll_if_owed(app, cx, key, conn);
    }
    conns.drive(app, key);
}
