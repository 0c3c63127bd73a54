//! One subscription on its connection: a cursor per channel, and the catch-up that
//! every transport shares. `next_frame` walks the loop's history replica from the
//! cursors and yields, one at a time, the `reset`, `gap` and event frames the
//! subscriber is owed, advancing the cursor as it goes, so a transport sends exactly
//! what PROTOCOL.md says and nothing twice.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::channel::history::Continuity;
use crate::channel::index::ChannelKey;
use crate::channel::{ChannelIndex, Event};
use crate::storage::Stored;

use super::request::{Since, Transport};

/// Registration value for a channel that is not in the index's waiting list.
pub const NOT_WAITING: usize = usize::MAX;

/// One channel of a subscription.
#[derive(Debug, Clone)]
pub struct SubChannel {
    /// The channel in the loop's index.
    pub key: ChannelKey,
    /// Its registration in the index's waiting list (`NOT_WAITING` when none).
    pub registration: usize,
    /// The last id delivered (queued) on this connection.
    pub cursor: u64,
    /// The close marker has been delivered (or the cursor was already past it).
    pub done: bool,
    /// Subscribed without `since` to a channel whose last id is not known yet (shared
    /// storage): the cursor is the channel's last id as storage says it when asked
    /// (`start_fresh`, `fetched`), or the id before the first event this server
    /// heard after the subscription began, whichever is lower, so that nothing
    /// published after it began is lost (an event published a moment before may
    /// come). Meanwhile `cursor` holds that first id less one, `u64::MAX` before it.
    pub fresh: bool,
}

/// A frame owed to the subscriber.
#[derive(Debug, Clone)]
pub enum Frame {
    /// A published event (message or close marker), shared.
    Event(Arc<Event>),
    /// Events `from..=to` of channel `channel` (an index into the subscription's
    /// channels) are no longer retained.
    Gap { channel: usize, from: u64, to: u64 },
    /// The cursor of channel `channel` was ahead; the channel's last id is `last_id`.
    Reset { channel: usize, last_id: u64 },
    /// Nothing happened for a while (streams only).
    Heartbeat,
}

/// What `Subscription::next` found.
#[derive(Debug, Clone)]
pub enum Step {
    /// The next frame owed, its channel's cursor already advanced.
    Frame(Frame),
    /// Events owed are in storage, not in memory: fetch them (`start_fetch`), then ask
    /// again once they are here (`fetched`).
    Fetch(FetchRange),
    /// Nothing more is owed now (or only what a fetch under way will bring).
    Idle,
}

/// Events of one channel to read from storage: after `cursor`, up to `to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchRange {
    /// The channel's position in the subscription.
    pub channel: usize,
    pub cursor: u64,
    pub to: u64,
}

/// A fetch from storage for one channel of a subscription: under way, or its answer.
#[derive(Debug)]
struct Catchup {
    channel: usize,
    serial: u64,
    /// `None` while the fetch is under way.
    items: Option<VecDeque<Stored>>,
}

/// The state of one subscription.
#[derive(Debug)]
pub struct Subscription {
    pub transport: Transport,
    pub channels: Vec<SubChannel>,
    /// `callback=`, validated.
    pub callback: Option<Box<str>>,
    /// Shared storage's last id of a channel (its position, the id) from this
    /// subscription's last fetch: a cursor past it is ahead (reset), one within it
    /// waits for its events.
    storage_last: Option<(usize, u64)>,
    /// Milliseconds (loop time) when it started.
    pub opened_ms: u64,
    /// Milliseconds when a frame was last written (heartbeats count).
    pub last_write_ms: u64,
    /// Bytes of frames written so far (for `--stream-max-bytes`).
    pub bytes_sent: u64,
    /// Milliseconds (loop time) when its token expires and a held subscription ends;
    /// `u64::MAX` without a token.
    pub expires_ms: u64,
    /// Whether it is waiting in the index (held poll or open stream).
    pub waiting: bool,
    /// The one fetch from storage this subscription may have at a time.
    catchup: Option<Box<Catchup>>,
}

impl Subscription {
    /// Whether its token has expired at `now_ms` (never, without one).
    pub fn token_expired(&self, now_ms: u64) -> bool {
        now_ms >= self.expires_ms
    }

    /// Resolves the cursors of `channels` (already in the index) as PROTOCOL.md says:
    /// without `since`, each starts at its channel's last id; `0` means "everything
    /// retained" and never produces a gap; a cursor at or past a close marker marks the
    /// channel done.
    pub fn new(
        transport: Transport,
        keys: &[ChannelKey],
        since: &Since,
        callback: Option<Box<str>>,
        index: &ChannelIndex,
        now_ms: u64,
    ) -> Subscription {
        let channels = keys
            .iter()
            .enumerate()
            .map(|(i, &key)| {
                let history = &index.get(key).history;
                let fresh = matches!(since, Since::New) && !history.is_known();
                let mut cursor = match since {
                    Since::New if fresh => u64::MAX,
                    Since::New => history.last_id(),
                    Since::Ids(ids) if ids[i] == 0 => history.retained_first() - 1,
                    Since::Ids(ids) => ids[i],
                };
                let done = history.closed_id().is_some_and(|closed| cursor >= closed);
                if done {
                    cursor = history.last_id();
                }
                SubChannel {
                    key,
                    registration: NOT_WAITING,
                    cursor,
                    done,
                    fresh,
                }
            })
            .collect();
        Subscription {
            transport,
            channels,
            callback,
            opened_ms: now_ms,
            last_write_ms: now_ms,
            bytes_sent: 0,
            expires_ms: u64::MAX,
            waiting: false,
            catchup: None,
            storage_last: None,
        }
    }

    /// Whether every channel is closed and delivered: the subscription is over.
    pub fn all_done(&self) -> bool {
        self.channels.iter().all(|c| c.done)
    }

    /// Whether more than one channel is multiplexed (SSE ids are then cursor lists).
    pub fn is_multiplexed(&self) -> bool {
        self.channels.len() > 1
    }

    /// The next frame owed, advancing that channel's cursor: from a fetch's answer,
    /// else from the loop's history, else a request to fetch from storage.
    pub fn next(&mut self, index: &ChannelIndex) -> Step {
        // Channels whose cursor is not known yet come first: no frame goes out before
        // (its cursor, in an SSE id or a long-poll's answer, would name none).
        for i in 0..self.channels.len() {
            if self.channels[i].fresh {
                if let Some(step) = self.start_fresh(i, index) {
                    return step;
                }
                if self.channels[i].fresh {
                    return Step::Idle;
                }
            }
        }
        if let Some(catchup) = &self.catchup {
            if catchup.items.is_some() && self.channels[catchup.channel].done {
                // Its channel ended by another path (a live close marker): nothing to serve.
                self.catchup = None;
            }
        }
        for i in 0..self.channels.len() {
            if self.channels[i].done {
                continue;
            }
            if let Some(catchup) = self.catchup.as_mut().filter(|c| c.channel == i) {
                let Some(items) = catchup.items.as_mut() else {
                    continue; // waiting for storage
                };
                let channel = &mut self.channels[i];
                while let Some(item) = items.pop_front() {
                    match item {
                        Stored::Gap { from, to } if to > channel.cursor => {
                            let from = from.max(channel.cursor + 1);
                            channel.cursor = to;
                            return Step::Frame(Frame::Gap {
                                channel: i,
                                from,
                                to,
                            });
                        }
                        Stored::Event(event) if event.id == channel.cursor + 1 => {
                            channel.cursor = event.id;
                            channel.done = event.closed;
                            return Step::Frame(Frame::Event(event));
                        }
                        _ => {} // already past it
                    }
                }
                self.catchup = None;
            }
            let channel = &mut self.channels[i];
            let history = &index.get(channel.key).history;
            // What storage said of this channel in answer to the fetch just served
            // counts for this look only.
            let told = self.storage_last.take_if(|(c, _)| *c == i);
            match history.continuity(channel.cursor) {
                Continuity::Ahead { last_id } => {
                    channel.cursor = last_id;
                    return Step::Frame(Frame::Reset {
                        channel: i,
                        last_id,
                    });
                }
                Continuity::Gap { from, to } => {
                    channel.cursor = to;
                    return Step::Frame(Frame::Gap {
                        channel: i,
                        from,
                        to,
                    });
                }
                Continuity::Stored { to } => {
                    if self.catchup.is_none() {
                        return Step::Fetch(FetchRange {
                            channel: i,
                            cursor: channel.cursor,
                            to,
                        });
                    }
                }
                Continuity::Wait => {}
                Continuity::Unknown => {
                    if let Some((_, last_id)) = told {
                        if channel.cursor > last_id {
                            // Storage has not got that far either: the cursor is ahead.
                            channel.cursor = last_id;
                            return Step::Frame(Frame::Reset {
                                channel: i,
                                last_id,
                            });
                        }
                        continue; // storage has it: its events are on their way here
                    }
                    // Shared storage knows more: whatever follows the cursor, and the
                    // channel's last id (learnt by the index with the answer).
                    if self.catchup.is_none() {
                        return Step::Fetch(FetchRange {
                            channel: i,
                            cursor: channel.cursor,
                            to: u64::MAX,
                        });
                    }
                }
                Continuity::Whole => {
                    if let Some(event) = history.after(channel.cursor).next() {
                        channel.cursor = event.id;
                        channel.done = event.closed;
                        return Step::Frame(Frame::Event(event.clone()));
                    }
                }
            }
        }
        Step::Idle
    }

    /// A channel subscribed to without `since` whose last id was not known: storage is
    /// asked for it (a fetch of nothing: `cursor` and `to` at the end of ids), and its
    /// answer sets the cursor (`fetched`). Storage that did not answer is asked again
    /// once an event of the channel comes. Returns the step to take, if any.
    fn start_fresh(&mut self, i: usize, index: &ChannelIndex) -> Option<Step> {
        if let Some(catchup) = self.catchup.as_ref() {
            // Storage has not answered: nothing to do yet.
            let items = catchup.items.as_ref()?;
            // Answered: the question of this channel, or of another fresh one (an
            // answer with nothing to serve, only the channel's last id), is done.
            if catchup.channel != i && !items.is_empty() {
                return None;
            }
            self.catchup = None;
        }
        let history = &index.get(self.channels[i].key).history;
        if self.catchup.is_some() || history.waits_for_storage() {
            return None;
        }
        Some(Step::Fetch(FetchRange {
            channel: i,
            cursor: u64::MAX,
            to: u64::MAX,
        }))
    }

    /// Notes that `range` is being fetched under `serial`.
    pub fn start_fetch(&mut self, range: FetchRange, serial: u64) {
        self.catchup = Some(Box::new(Catchup {
            channel: range.channel,
            serial,
            items: None,
        }));
    }

    /// Takes the answer to fetch `serial`, with shared storage's last id and close
    /// marker if it gave them; returns false if it is not the one awaited. A channel
    /// subscribed to without `since` before it was known starts at that last id.
    pub fn fetched(
        &mut self,
        serial: u64,
        items: Vec<Stored>,
        bounds: Option<(u64, Option<u64>)>,
    ) -> bool {
        match self.catchup.as_mut() {
            Some(catchup) if catchup.serial == serial && catchup.items.is_none() => {
                catchup.items = Some(items.into());
                self.storage_last = bounds.map(|(last_id, _)| (catchup.channel, last_id));
                let channel = &mut self.channels[catchup.channel];
                if let (true, Some((last_id, closed_id))) = (channel.fresh, bounds) {
                    channel.cursor = channel.cursor.min(last_id);
                    channel.done = closed_id.is_some_and(|closed| channel.cursor >= closed);
                    channel.fresh = false;
                }
                true
            }
            _ => false,
        }
    }

    /// A channel subscribed to without `since` before it was known heard event `id`:
    /// the first such event bounds its cursor (see `SubChannel::fresh`).
    pub fn heard_while_fresh(&mut self, i: usize, id: u64) {
        let channel = &mut self.channels[i];
        if channel.fresh {
            channel.cursor = channel.cursor.min(id - 1);
        }
    }

    /// Whether a fetch from storage is under way (asked, not answered yet).
    pub fn fetching(&self) -> bool {
        self.catchup.as_ref().is_some_and(|c| c.items.is_none())
    }

    /// Whether any channel has something after its cursor, or may have (shared
    /// storage not asked yet): a cheap check, no frame built.
    pub fn is_behind(&self, index: &ChannelIndex) -> bool {
        self.channels.iter().any(|c| {
            let history = &index.get(c.key).history;
            !c.done && (c.fresh || !history.is_known() || history.last_id() != c.cursor)
        })
    }

    /// The position of channel `key` in this subscription.
    pub fn position_of(&self, key: ChannelKey) -> Option<usize> {
        self.channels.iter().position(|c| c.key == key)
    }

    /// Appends the cursor, the comma list of each channel's last delivered id.
    pub fn push_cursor(&self, out: &mut Vec<u8>) {
        for (i, channel) in self.channels.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            crate::http::response::push_decimal(out, channel.cursor);
        }
    }
}

/// Appends the JSON of a frame that is not an event (gap, reset, heartbeat).
pub fn push_control_json(
    frame: &Frame,
    sub: &Subscription,
    index: &ChannelIndex,
    out: &mut Vec<u8>,
) {
    use crate::http::response::push_decimal;
    let name = |channel: usize| &*index.get(sub.channels[channel].key).name;
    match frame {
        Frame::Gap { channel, from, to } => {
            out.extend_from_slice(b"{\"ch\":\"");
            out.extend_from_slice(name(*channel).as_bytes());
            out.extend_from_slice(b"\",\"gap\":[");
            push_decimal(out, *from);
            out.push(b',');
            push_decimal(out, *to);
            out.extend_from_slice(b"]}");
        }
        Frame::Reset { channel, last_id } => {
            out.extend_from_slice(b"{\"ch\":\"");
            out.extend_from_slice(name(*channel).as_bytes());
            out.extend_from_slice(b"\",\"reset\":");
            push_decimal(out, *last_id);
            out.push(b'}');
        }
        Frame::Heartbeat => out.extend_from_slice(b"{\"hb\":1}"),
        Frame::Event(event) => out.extend_from_slice(&event.json),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index_with(history: usize, events: &[(&str, u64)], closed: &[(&str, u64)]) -> ChannelIndex {
        let mut index = ChannelIndex::new(history);
        for &(name, count) in events {
            for id in 1..=count {
                index.append(Arc::new(Event::message(name.into(), id, "x")));
            }
        }
        for &(name, id) in closed {
            index.append(Arc::new(Event::close_marker(name.into(), id)));
        }
        index
    }

    fn drain(sub: &mut Subscription, index: &ChannelIndex) -> Vec<String> {
        let mut out = Vec::new();
        while let Step::Frame(frame) = sub.next(index) {
            let mut json = Vec::new();
            push_control_json(&frame, sub, index, &mut json);
            out.push(String::from_utf8(json).unwrap());
        }
        out
    }

    fn subscribe(index: &mut ChannelIndex, names: &[&str], since: Since) -> Subscription {
        let keys: Vec<_> = names.iter().map(|n| index.get_or_create(n)).collect();
        Subscription::new(Transport::Stream, &keys, &since, None, index, 0)
    }

    #[test]
    fn without_since_only_new_events() {
        let mut index = index_with(10, &[("a", 3)], &[]);
        let mut sub = subscribe(&mut index, &["a"], Since::New);
        assert!(drain(&mut sub, &index).is_empty());
        let mut cursor = Vec::new();
        sub.push_cursor(&mut cursor);
        assert_eq!(cursor, b"3");
    }

    #[test]
    fn since_zero_is_everything_retained_without_a_gap() {
        let mut index = index_with(2, &[("a", 5)], &[]);
        let mut sub = subscribe(&mut index, &["a"], Since::Ids(vec![0]));
        assert_eq!(
            drain(&mut sub, &index),
            [
                r#"{"ch":"a","id":4,"data":"x"}"#,
                r#"{"ch":"a","id":5,"data":"x"}"#
            ]
        );
    }

    #[test]
    fn an_old_cursor_gets_a_gap_then_the_rest() {
        let mut index = index_with(2, &[("a", 5)], &[]);
        let mut sub = subscribe(&mut index, &["a"], Since::Ids(vec![1]));
        let frames = drain(&mut sub, &index);
        assert_eq!(frames[0], r#"{"ch":"a","gap":[2,3]}"#);
        assert_eq!(frames.len(), 3);
    }

    #[test]
    fn a_cursor_ahead_gets_a_reset() {
        let mut index = index_with(10, &[("a", 2)], &[]);
        let mut sub = subscribe(&mut index, &["a", "b"], Since::Ids(vec![9, 4]));
        assert_eq!(
            drain(&mut sub, &index),
            [r#"{"ch":"a","reset":2}"#, r#"{"ch":"b","reset":0}"#]
        );
        let mut cursor = Vec::new();
        sub.push_cursor(&mut cursor);
        assert_eq!(cursor, b"2,0");
    }

    #[test]
    fn closed_channels_are_done_at_or_past_the_marker() {
        let mut index = index_with(10, &[("a", 2), ("b", 1)], &[("a", 3)]);
        let at = subscribe(&mut index, &["a"], Since::Ids(vec![3]));
        assert!(at.all_done());
        let past = subscribe(&mut index, &["a"], Since::Ids(vec![7]));
        assert!(past.all_done());
        let mut before = subscribe(&mut index, &["a", "b"], Since::Ids(vec![2, 1]));
        assert!(!before.all_done());
        assert_eq!(
            drain(&mut before, &index),
            [r#"{"ch":"a","id":3,"closed":true}"#]
        );
        assert!(before.channels[0].done && !before.all_done());
    }

    #[test]
    fn older_than_memory_is_fetched_then_served_in_order() {
        // Storage holds 4..=10 (retention took 1..=3); memory keeps 9 and 10.
        let events: Vec<_> = (9..=10)
            .map(|id| Arc::new(Event::message("a".into(), id, "m")))
            .collect();
        let recovered = crate::storage::Recovered {
            name: "a".into(),
            bounds: crate::storage::Bounds {
                first_id: 4,
                last_id: 10,
                closed_id: None,
            },
            tail: events,
        };
        let history = recovered.history(2);
        let mut index = ChannelIndex::backed(2, [(recovered.name, history)]);
        let mut sub = subscribe(&mut index, &["a"], Since::Ids(vec![1]));
        let Step::Frame(gap) = sub.next(&index) else {
            panic!("a gap first")
        };
        let mut json = Vec::new();
        push_control_json(&gap, &sub, &index, &mut json);
        assert_eq!(json, br#"{"ch":"a","gap":[2,3]}"#);
        let Step::Fetch(range) = sub.next(&index) else {
            panic!("then a fetch")
        };
        assert_eq!((range.cursor, range.to), (3, 8));
        sub.start_fetch(range, 7);
        assert!(
            matches!(sub.next(&index), Step::Idle),
            "nothing while it is under way"
        );
        assert!(
            !sub.fetched(6, Vec::new(), None),
            "an answer to another fetch is ignored"
        );
        let fetched = (4..=6)
            .map(|id| Stored::Event(Arc::new(Event::message("a".into(), id, "d"))))
            .collect();
        assert!(sub.fetched(7, fetched, None));
        let mut ids = Vec::new();
        loop {
            match sub.next(&index) {
                Step::Frame(Frame::Event(event)) => ids.push(event.id),
                Step::Fetch(range) => {
                    // The rest of the range: 7..=8, then memory.
                    assert_eq!((range.cursor, range.to), (6, 8));
                    sub.start_fetch(range, 8);
                    let rest = (7..=8)
                        .map(|id| Stored::Event(Arc::new(Event::message("a".into(), id, "d"))))
                        .collect();
                    assert!(sub.fetched(8, rest, None));
                }
                Step::Idle => break,
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(ids, [4, 5, 6, 7, 8, 9, 10]);
    }

    #[test]
    fn a_channel_of_shared_storage_not_known_yet_starts_where_storage_says() {
        let mut index = ChannelIndex::shared(10);
        index.append(Arc::new(Event::message("a".into(), 3, "x")));
        let mut sub = subscribe(&mut index, &["a", "b"], Since::New);
        // "b" is not known: storage is asked before any frame, "a"'s included.
        let Step::Fetch(range) = sub.next(&index) else {
            panic!("storage is asked first");
        };
        assert_eq!(
            (range.channel, range.cursor, range.to),
            (1, u64::MAX, u64::MAX)
        );
        sub.start_fetch(range, 1);
        index.append(Arc::new(Event::message("a".into(), 4, "x")));
        // An event of "b" heard meanwhile: it is new, whatever storage says after.
        let b = index.lookup("b").unwrap();
        index.append(Arc::new(Event::message("b".into(), 6, "y")));
        sub.heard_while_fresh(1, 6);
        assert!(
            matches!(sub.next(&index), Step::Idle),
            "waiting for storage"
        );
        assert!(sub.fetched(1, Vec::new(), Some((6, None))));
        index.learn("b", 6, None);
        let mut cursor = Vec::new();
        sub.push_cursor(&mut cursor);
        assert_eq!(
            cursor, b"3,5",
            "b starts before the event heard after subscribing"
        );
        assert_eq!(
            drain(&mut sub, &index),
            [
                r#"{"ch":"a","id":4,"data":"x"}"#,
                r#"{"ch":"b","id":6,"data":"y"}"#
            ]
        );
        assert_eq!(index.get(b).history.last_id(), 6);
    }

    #[test]
    fn several_channels_of_shared_storage_not_known_yet_are_asked_one_after_another() {
        let mut index = ChannelIndex::shared(10);
        let mut sub = subscribe(&mut index, &["a", "b", "c"], Since::New);
        for (serial, last_id) in [(1, 4), (2, 0), (3, 7)] {
            let Step::Fetch(range) = sub.next(&index) else {
                panic!("storage is asked of each channel in turn");
            };
            assert_eq!(range.channel as u64, serial - 1);
            sub.start_fetch(range, serial);
            assert!(sub.fetched(serial, Vec::new(), Some((last_id, None))));
            let name = ["a", "b", "c"][range.channel];
            index.learn(name, last_id, None);
        }
        assert!(matches!(sub.next(&index), Step::Idle), "nothing owed");
        let mut cursor = Vec::new();
        sub.push_cursor(&mut cursor);
        assert_eq!(cursor, b"4,0,7");
        index.append(Arc::new(Event::message("b".into(), 1, "y")));
        assert_eq!(drain(&mut sub, &index), [r#"{"ch":"b","id":1,"data":"y"}"#]);
    }

    #[test]
    fn a_cursor_past_shared_storage_is_reset_only_once_storage_says_so() {
        let mut index = ChannelIndex::shared(10);
        index.append(Arc::new(Event::message("a".into(), 1, "x")));
        let mut sub = subscribe(&mut index, &["a"], Since::Ids(vec![5]));
        let Step::Fetch(range) = sub.next(&index) else {
            panic!("storage is asked");
        };
        assert_eq!((range.cursor, range.to), (5, u64::MAX));
        sub.start_fetch(range, 1);
        // Storage is at 3: the cursor of 5 is ahead of it too.
        assert!(sub.fetched(1, Vec::new(), Some((3, None))));
        index.learn("a", 3, None);
        assert_eq!(drain(&mut sub, &index), [r#"{"ch":"a","reset":3}"#]);
    }
}
