//! A published event reaches this loop (through its inbox, `bus.rs`): it is appended
//! to the loop's replica of its channel, then given to every connection waiting on
//! that channel: a held long-poll is answered, a stream or WebSocket gets one frame
//! (the event's shared bytes, copied into no connection's buffer unless its socket is
//! full).

use std::sync::Arc;

use log::warn;

use super::{poll, stream, websocket, SubscriberApp, SubscriberConn};
use crate::channel::Event;
use crate::engine::{Conns, Phase};
use crate::stats::bump;
use crate::subscription::state::Frame;
use crate::websocket::close;

/// A published event: append it to this loop's replica, then give it to every
/// connection waiting on its channel.
pub fn deliver_event(
    app: &mut SubscriberApp,
    conns: &mut Conns<SubscriberConn>,
    event: Arc<Event>,
) {
    let Some(channel) = app.index.append(event.clone()) else {
        if !app.index.is_shared() {
            warn!(
                "{}: event {} of {} out of order; dropped here",
                app.name, event.id, event.channel
            );
        }
        // Shared storage: heard twice, or already learnt from storage.
        return;
    };
    let mut waiting = std::mem::take(&mut app.keys);
    waiting.clear();
    app.index.waiting_on(channel, &mut waiting);
    for &key in &waiting {
        deliver_to(app, conns, key, channel, &event);
    }
    waiting.clear();
    app.keys = waiting;
}

/// Gives `event` (of the loop's channel `channel`) to the connection `key`.
fn deliver_to(
    app: &mut SubscriberApp,
    conns: &mut Conns<SubscriberConn>,
    key: usize,
    channel: usize,
    event: &Arc<Event>,
) {
    let Some((cx, conn)) = conns.split(key) else {
        return;
    };
    let Some(sub) = conn.app.sub.as_mut() else {
        return;
    };
    let Some(position) = sub.position_of(channel) else {
        return;
    };
    sub.heard_while_fresh(position, event.id);
    if sub.fetching() {
        // Storage's answer comes first; serving it goes on to this event.
        return;
    }
    let (fresh, cursor) = (sub.channels[position].fresh, sub.channels[position].cursor);
    if fresh || cursor.saturating_add(1) < event.id {
        // Its cursor waits for storage's answer, or the replica jumped past it
        // (shared storage): the connection asks storage now, as it would anew (a
        // long-poll owed nothing yet stays held).
        match conn.http.phase {
            Phase::Answering => poll::answer_longpoll_if_owed(app, cx, key, conn),
            Phase::Streaming | Phase::WebSocket => {}
            _ => return,
        }
        return conns.drive(app, key);
    }
    if cursor + 1 != event.id {
        return; // still catching up on this channel: `stream::feed` will get there
    }
    match conn.http.phase {
        Phase::Answering => poll::answer_longpoll(app, cx, key, conn),
        Phase::Streaming | Phase::WebSocket => {
            sub.channels[position].cursor = event.id;
            sub.channels[position].done = event.closed;
            stream::write_frame(app, cx, conn, &Frame::Event(event.clone()));
            if conn.http.out.pending() > app.config.max_pending {
                bump(&app.loop_stats().slow_clients_dropped);
                if conn.http.phase != Phase::WebSocket {
                    return conns.close(app, key);
                }
                // Its frames so far, then close 1008, if it reads them before
                // --write-timeout: it resumes with its cursor either way.
                let (code, linger) = (close::POLICY, websocket::Linger::No);
                websocket::end(app, cx, conn, code, "too slow a reader", linger);
                return conns.drive(app, key);
            }
            stream::end_if_due(app, cx, conn);
            if conn.http.streams() && !conn.http.broken {
                // Still streaming: the frame went through `writev` already and
                // nothing else changed but its deadlines (no read needed).
                return conns.schedule(app, key);
            }
        }
        _ => return,
    }
    // Answered or ended: flush, then serve what the client pipelined behind it.
    conns.drive(app, key);
}

/// Shared storage is back after being out of reach (`LoopMessage::Resync`): every
/// channel's replica is in doubt, and every waiting connection asks storage again
/// what follows its cursor, as it would anew (one that is fetching already gets its
/// answer first).
pub fn resync(app: &mut SubscriberApp, conns: &mut Conns<SubscriberConn>) {
    let mut waiting = std::mem::take(&mut app.keys);
    waiting.clear();
    app.index.doubt_all(&mut waiting);
    waiting.sort_unstable();
    waiting.dedup();
    for &key in &waiting {
        let Some((cx, conn)) = conns.split(key) else {
            continue;
        };
        if conn.app.sub.as_ref().is_none_or(|sub| sub.fetching()) {
            continue;
        }
        match conn.http.phase {
            Phase::Answering => poll::answer_longpoll_if_owed(app, cx, key, conn),
            Phase::Streaming | Phase::WebSocket => {}
            _ => continue,
        }
        conns.drive(app, key);
    }
    waiting.clear();
    app.keys = waiting;
}
