//! The bounded history of one channel: the last `--history` events, oldest first, with
//! the ids needed to tell a resuming subscriber what it missed.
//!
//! Ids have no holes, so an event is found by arithmetic (`id - first_id`), never by
//! search, and "what comes after cursor c" is a slice of the ring.
//!
//! With durable storage behind it, the history is a window on the newest events: it also
//! knows the oldest id storage still holds (`stored_first`), so a cursor older than the
//! window is told to fetch from storage rather than given a gap.

use std::collections::VecDeque;
use std::sync::Arc;

use super::Event;

/// Where a subscriber's cursor stands against what a channel retains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Continuity {
    /// The cursor is beyond the channel's last id (the server lost its memory): send
    /// `reset` with this last id and continue from there.
    Ahead { last_id: u64 },
    /// Events `from..=to` after the cursor are no longer retained: send `gap`.
    Gap { from: u64, to: u64 },
    /// The events after the cursor up to `to` are not in memory but storage holds them:
    /// fetch them.
    Stored { to: u64 },
    /// Every event after the cursor is retained (or there is none).
    Whole,
    /// Storage shared with other servers may hold more than this replica knows (a
    /// channel not heard of since this server started, or a cursor past its last id
    /// that another server gave out): ask storage what follows the cursor, and learn
    /// the channel's last id from its answer (`Subscription::next` resets a cursor
    /// that storage says is ahead).
    Unknown,
    /// As `Unknown`, but storage did not answer the last time: nothing to serve or ask
    /// until an event of the channel comes (then storage is asked again).
    Wait,
}

/// The retained events of one channel and its ids.
#[derive(Debug)]
pub struct History {
    /// Retained events, oldest first; ids are consecutive.
    events: VecDeque<Arc<Event>>,
    /// Most events retained.
    capacity: usize,
    /// Id of the newest event ever (0 when none).
    last_id: u64,
    /// Id of the close marker, once the channel is closed.
    closed_id: Option<u64>,
    /// Oldest id that storage holds beyond this window; `None` when nothing does.
    stored_first: Option<u64>,
    /// The storage is shared with other servers (Redis): events may be announced here
    /// late, twice or with ids skipped, and storage is the authority on the last id.
    shared: bool,
    /// Shared storage only: something is known of the channel (storage was asked, or
    /// an event came). Before, every cursor is `Unknown`.
    known: bool,
    /// Shared storage only: the last question to storage got no answer (it is
    /// unreachable); cleared by the next event or answer.
    unanswered: bool,
}

impl History {
    /// An empty history that keeps at most `capacity` events (at least one).
    pub fn new(capacity: usize) -> History {
        History {
            events: VecDeque::new(),
            capacity: capacity.max(1),
            last_id: 0,
            closed_id: None,
            stored_first: None,
            shared: false,
            known: false,
            unanswered: false,
        }
    }

    /// Shared storage was out of reach and is back: it may hold more than this
    /// replica heard, so every cursor is `Unknown` until storage is asked again.
    pub fn doubt(&mut self) {
        if self.shared {
            self.known = false;
            self.unanswered = false;
        }
    }

    /// Shared storage did not answer a question about this channel: until an event
    /// of it comes, `Unknown` is `Wait` (no question asked again and again).
    pub fn unanswered(&mut self) {
        self.unanswered = self.shared;
    }

    /// An empty history in front of storage shared with other servers, which holds
    /// every id from 1 that it retains: nothing is known of the channel until storage
    /// is asked or an event comes.
    pub fn shared(capacity: usize) -> History {
        History {
            shared: true,
            ..History::backed(capacity, 1)
        }
    }

    /// What shared storage says of the channel: its last id and close marker. A last
    /// id beyond this replica's moves it there, the window emptied (what it skips is
    /// in storage); one behind changes nothing (events are on their way).
    pub fn learn(&mut self, last_id: u64, closed_id: Option<u64>) {
        if !self.shared {
            return;
        }
        if last_id > self.last_id {
            self.events.clear();
            self.last_id = last_id;
            self.closed_id = closed_id.filter(|&c| c <= last_id);
        }
        self.known = true;
        self.unanswered = false;
    }

    /// An empty history in front of a storage that holds every id from `stored_first`.
    pub fn backed(capacity: usize, stored_first: u64) -> History {
        History {
            stored_first: Some(stored_first),
            ..History::new(capacity)
        }
    }

    /// A history recovered from storage: `events` are its newest (consecutive ids),
    /// `last_id` and `closed_id` what storage holds, from `stored_first` on.
    pub fn recovered(
        capacity: usize,
        events: &[Arc<Event>],
        last_id: u64,
        closed_id: Option<u64>,
        stored_first: u64,
    ) -> History {
        let mut history = History::backed(capacity, stored_first);
        if events.last().is_some_and(|e| e.id == last_id) {
            let keep = events.len().saturating_sub(history.capacity);
            history.events.extend(events[keep..].iter().cloned());
        }
        history.last_id = last_id;
        history.closed_id = closed_id;
        history
    }

    /// Storage now holds ids from `first` on (retention deleted older ones).
    pub fn set_stored_first(&mut self, first: u64) {
        if self.stored_first.is_some() {
            self.stored_first = Some(first);
        }
    }

    /// Whether the channel's last id is known: always, but in front of shared storage
    /// before storage was asked or an event came.
    pub fn is_known(&self) -> bool {
        !self.shared || self.known
    }

    /// Whether shared storage did not answer the last question (`unanswered`).
    pub fn waits_for_storage(&self) -> bool {
        self.unanswered
    }

    /// Oldest id held anywhere: in this window or in storage behind it.
    pub fn retained_first(&self) -> u64 {
        let window = self.first_id();
        self.stored_first
            .map_or(window, |stored| stored.min(window))
    }

    /// Appends the next event; its id must be `last_id() + 1`. Drops the oldest beyond
    /// the capacity. Returns false (and keeps nothing) for an out-of-order id. In front
    /// of shared storage, an id further on is taken too: the window is emptied and
    /// what was skipped is left to storage.
    pub fn push(&mut self, event: Arc<Event>) -> bool {
        if self.shared && event.id > self.last_id + 1 && self.closed_id.is_none() {
            self.events.clear();
            self.last_id = event.id - 1;
        }
        if event.id != self.last_id + 1 || self.closed_id.is_some() {
            return false;
        }
        self.known = true;
        self.unanswered = false;
        if self.events.len() == self.capacity {
            self.events.pop_front();
        }
        self.last_id = event.id;
        if event.closed {
            self.closed_id = Some(event.id);
        }
        self.events.push_back(event);
        true
    }

    /// Id of the newest event, 0 when there has been none.
    pub fn last_id(&self) -> u64 {
        self.last_id
    }

    /// Id of the oldest retained event; `last_id() + 1` when none is retained.
    pub fn first_id(&self) -> u64 {
        self.events.front().map_or(self.last_id + 1, |e| e.id)
    }

    /// Id of the close marker, if the channel is closed.
    pub fn closed_id(&self) -> Option<u64> {
        self.closed_id
    }

    /// Number of events retained.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether nothing is retained.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Where `cursor` (the last id a subscriber has) stands.
    pub fn continuity(&self, cursor: u64) -> Continuity {
        // A cursor past the last id may be one another server gave out for events
        // still on their way here: only storage can say (the subscription asks it,
        // and resets the cursor if storage has not got that far either).
        if self.shared && (!self.known || cursor > self.last_id) {
            return if self.unanswered {
                Continuity::Wait
            } else {
                Continuity::Unknown
            };
        }
        if cursor > self.last_id {
            Continuity::Ahead {
                last_id: self.last_id,
            }
        } else if cursor + 1 >= self.first_id() {
            Continuity::Whole
        } else if cursor + 1 < self.retained_first() {
            Continuity::Gap {
                from: cursor + 1,
                to: self.retained_first() - 1,
            }
        } else {
            Continuity::Stored {
                to: self.first_id() - 1,
            }
        }
    }

    /// The retained events after `cursor`, oldest first.
    pub fn after(&self, cursor: u64) -> impl Iterator<Item = &Arc<Event>> {
        let skip = (cursor + 1).saturating_sub(self.first_id()) as usize;
        self.events.iter().skip(skip)
    }

    /// The retained event with `id`, if any.
    pub fn get(&self, id: u64) -> Option<&Arc<Event>> {
        let index = id.checked_sub(self.first_id())?;
        self.events.get(usize::try_from(index).ok()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history_with(capacity: usize, count: u64) -> History {
        let mut history = History::new(capacity);
        for id in 1..=count {
            assert!(history.push(Arc::new(Event::message("c".into(), id, "x"))));
        }
        history
    }

    fn ids(history: &History, cursor: u64) -> Vec<u64> {
        history.after(cursor).map(|e| e.id).collect()
    }

    #[test]
    fn empty_channel() {
        let history = History::new(10);
        assert_eq!((history.first_id(), history.last_id()), (1, 0));
        assert_eq!(history.continuity(0), Continuity::Whole);
        assert_eq!(history.continuity(3), Continuity::Ahead { last_id: 0 });
        assert!(ids(&history, 0).is_empty());
    }

    #[test]
    fn keeps_the_last_capacity_events() {
        let history = history_with(3, 5);
        assert_eq!(
            (history.first_id(), history.last_id(), history.len()),
            (3, 5, 3)
        );
        assert_eq!(ids(&history, 0), [3, 4, 5]);
        assert_eq!(ids(&history, 3), [4, 5]);
        assert_eq!(ids(&history, 5), Vec::<u64>::new());
        assert_eq!(history.get(4).map(|e| e.id), Some(4));
        assert!(history.get(2).is_none() && history.get(6).is_none());
    }

    #[test]
    fn continuity_table() {
        let history = history_with(3, 5); // retains 3..=5
        let table = [
            (0, Continuity::Gap { from: 1, to: 2 }),
            (1, Continuity::Gap { from: 2, to: 2 }),
            (2, Continuity::Whole),
            (4, Continuity::Whole),
            (5, Continuity::Whole),
            (6, Continuity::Ahead { last_id: 5 }),
        ];
        for (cursor, expected) in table {
            assert_eq!(history.continuity(cursor), expected, "cursor {cursor}");
        }
    }

    #[test]
    fn refuses_out_of_order_ids_and_events_after_close() {
        let mut history = history_with(10, 2);
        assert!(!history.push(Arc::new(Event::message("c".into(), 4, "x"))));
        assert!(!history.push(Arc::new(Event::message("c".into(), 2, "x"))));
        assert!(history.push(Arc::new(Event::close_marker("c".into(), 3))));
        assert_eq!(history.closed_id(), Some(3));
        assert!(!history.push(Arc::new(Event::message("c".into(), 4, "x"))));
        assert_eq!(history.last_id(), 3);
    }

    fn event(id: u64) -> Arc<Event> {
        Arc::new(Event::message("c".into(), id, "x"))
    }

    #[test]
    fn a_shared_history_asks_storage_until_it_knows_the_channel() {
        let mut history = History::shared(4);
        assert_eq!(history.continuity(0), Continuity::Unknown);
        assert_eq!(history.continuity(9), Continuity::Unknown);
        // Storage says the channel is at 7: the window is empty, storage holds 1..=7.
        history.learn(7, None);
        assert_eq!(history.continuity(7), Continuity::Whole);
        assert_eq!(history.continuity(2), Continuity::Stored { to: 7 });
        // A cursor past 7 may be another server's, for events on their way: only
        // storage can tell, each time.
        assert_eq!(history.continuity(9), Continuity::Unknown);
        assert!(history.push(event(8)));
        assert_eq!(history.continuity(7), Continuity::Whole);
        assert_eq!(history.continuity(9), Continuity::Unknown);
        // Storage did not answer: wait for the next event instead of asking again.
        history.unanswered();
        assert_eq!(history.continuity(9), Continuity::Wait);
        assert!(history.push(event(9)));
        assert_eq!(history.continuity(10), Continuity::Unknown);
    }

    #[test]
    fn a_shared_history_takes_a_jump_and_ignores_what_it_has() {
        let mut history = History::shared(4);
        // The first event heard is 5: 1..=4 are storage's.
        assert!(history.push(event(5)));
        assert_eq!(history.continuity(0), Continuity::Stored { to: 4 });
        assert_eq!(ids(&history, 4), vec![5]);
        assert!(!history.push(event(5)), "heard twice: kept once");
        assert!(!history.push(event(3)), "behind: storage has it");
        // Announcements lost: 6..=8 skipped, the window starts again at 9.
        assert!(history.push(event(9)));
        assert_eq!(ids(&history, 0), vec![9]);
        assert_eq!(history.continuity(5), Continuity::Stored { to: 8 });
        // Storage behind what was heard changes nothing.
        history.learn(6, None);
        assert_eq!((history.last_id(), ids(&history, 8)), (9, vec![9]));
        // Storage ahead (events on their way): the window moves there.
        history.learn(12, Some(12));
        assert_eq!((history.last_id(), history.closed_id()), (12, Some(12)));
        assert_eq!(history.continuity(9), Continuity::Stored { to: 12 });
    }

    #[test]
    fn a_history_of_its_own_storage_takes_no_jump_and_learns_nothing() {
        let mut history = History::backed(4, 1);
        assert_eq!(history.continuity(0), Continuity::Whole);
        assert!(!history.push(event(5)));
        history.learn(7, None);
        assert_eq!(history.last_id(), 0);
        assert_eq!(history.continuity(3), Continuity::Ahead { last_id: 0 });
    }
}
