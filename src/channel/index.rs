//! One event loop's channels: each channel's history replica and the connections of this
//! loop that wait on it. Owned by one loop and touched by no other thread, so delivery
//! takes no lock.
//!
//! Every loop receives every published event (through `bus.rs`) and appends it to its own
//! replica; the events themselves are shared `Arc`s, so a replica costs a pointer per
//! retained event. A channel that has neither events nor subscribers is forgotten.

use std::collections::HashMap;
use std::sync::Arc;

use slab::Slab;

use super::{Event, History};

/// Handle of a channel inside one `ChannelIndex`; stable while it has subscribers.
pub type ChannelKey = usize;

/// A channel as one loop knows it.
#[derive(Debug)]
pub struct ChannelEntry {
    /// Its name, shared with its events.
    pub name: Arc<str>,
    /// This loop's replica of its history.
    pub history: History,
    /// Keys of this loop's connections waiting on it (the values are connection keys).
    waiting: Slab<usize>,
}

/// The channels of one loop.
#[derive(Debug)]
pub struct ChannelIndex {
    /// Name to key.
    by_name: HashMap<Arc<str>, ChannelKey>,
    /// The channels.
    channels: Slab<ChannelEntry>,
    /// `--history`: events kept per channel.
    history_capacity: usize,
    /// Whether a durable storage holds every channel's events behind the histories.
    durable: bool,
    /// The storage is shared with other servers (Redis): new channels start unknown
    /// (`History::shared`).
    shared: bool,
}

impl ChannelIndex {
    /// An empty index whose channels keep `history_capacity` events each, with nothing
    /// behind them.
    pub fn new(history_capacity: usize) -> ChannelIndex {
        ChannelIndex {
            by_name: HashMap::new(),
            channels: Slab::new(),
            history_capacity,
            durable: false,
            shared: false,
        }
    }

    /// An empty index in front of storage shared with other servers: each channel is
    /// learnt from storage or from the events that come (`History::shared`).
    pub fn shared(history_capacity: usize) -> ChannelIndex {
        ChannelIndex {
            durable: true,
            shared: true,
            ..ChannelIndex::new(history_capacity)
        }
    }

    /// Whether the storage behind is shared with other servers.
    pub fn is_shared(&self) -> bool {
        self.shared
    }

    /// Shared storage is back after being out of reach: every channel's replica is in
    /// doubt (`History::doubt`). Writes the connections waiting on any channel to `out`.
    pub fn doubt_all(&mut self, out: &mut Vec<usize>) {
        for (_, channel) in self.channels.iter_mut() {
            channel.history.doubt();
            out.extend(channel.waiting.iter().map(|(_, &conn)| conn));
        }
    }

    /// Shared storage did not answer a question about `name` (`History::unanswered`).
    pub fn unanswered(&mut self, name: &str) {
        if let Some(key) = self.lookup(name) {
            self.channels[key].history.unanswered();
        }
    }

    /// What shared storage says of `name`: its last id and close marker
    /// (`History::learn`).
    pub fn learn(&mut self, name: &str, last_id: u64, closed_id: Option<u64>) {
        if let Some(key) = self.lookup(name) {
            self.channels[key].history.learn(last_id, closed_id);
        }
    }

    /// An index whose histories are windows on a durable storage: `channels` are the
    /// channels it recovered, each with the window its storage made of it.
    pub fn backed(
        history_capacity: usize,
        channels: impl IntoIterator<Item = (Arc<str>, History)>,
    ) -> ChannelIndex {
        let mut index = ChannelIndex {
            durable: true,
            ..ChannelIndex::new(history_capacity)
        };
        for (name, history) in channels {
            index.insert_with(name, history);
        }
        index
    }

    /// Storage now holds `name` from `first_id` on.
    pub fn set_stored_first(&mut self, name: &str, first_id: u64) {
        if let Some(key) = self.lookup(name) {
            self.channels[key].history.set_stored_first(first_id);
        }
    }

    /// The key of the channel called `name`, if this loop knows it.
    pub fn lookup(&self, name: &str) -> Option<ChannelKey> {
        self.by_name.get(name).copied()
    }

    /// The key of the channel called `name`, created empty if unknown.
    pub fn get_or_create(&mut self, name: &str) -> ChannelKey {
        if let Some(key) = self.lookup(name) {
            return key;
        }
        self.insert(Arc::from(name))
    }

    fn insert(&mut self, name: Arc<str>) -> ChannelKey {
        let history = if self.shared {
            History::shared(self.history_capacity)
        } else if self.durable {
            History::backed(self.history_capacity, 1)
        } else {
            History::new(self.history_capacity)
        };
        self.insert_with(name, history)
    }

    fn insert_with(&mut self, name: Arc<str>, history: History) -> ChannelKey {
        let key = self.channels.insert(ChannelEntry {
            name: name.clone(),
            history,
            waiting: Slab::new(),
        });
        self.by_name.insert(name, key);
        key
    }

    /// The channel behind `key`. Panics on a key this index never gave out.
    pub fn get(&self, key: ChannelKey) -> &ChannelEntry {
        &self.channels[key]
    }

    /// Appends a published event to its channel's replica. Returns the channel's key,
    /// or `None` if the event does not follow the replica (which would be a bug in the
    /// publisher; the event is then dropped here and the caller logs it).
    pub fn append(&mut self, event: Arc<Event>) -> Option<ChannelKey> {
        let key = match self.by_name.get(&*event.channel) {
            Some(&key) => key,
            None => self.insert(event.channel.clone()),
        };
        self.channels[key].history.push(event).then_some(key)
    }

    /// Registers connection `conn` as waiting on `key`; returns the registration to pass
    /// to `unsubscribe`.
    pub fn subscribe(&mut self, key: ChannelKey, conn: usize) -> usize {
        self.channels[key].waiting.insert(conn)
    }

    /// Removes a registration; forgets the channel if nothing is left of it.
    pub fn unsubscribe(&mut self, key: ChannelKey, registration: usize) {
        let Some(entry) = self.channels.get_mut(key) else {
            return;
        };
        entry.waiting.try_remove(registration);
        if entry.waiting.is_empty() && entry.history.last_id() == 0 {
            let entry = self.channels.remove(key);
            self.by_name.remove(&entry.name);
        }
    }

    /// Appends the connections waiting on `key` to `out` (a reused scratch vector).
    pub fn waiting_on(&self, key: ChannelKey, out: &mut Vec<usize>) {
        out.extend(self.channels[key].waiting.iter().map(|(_, &conn)| conn));
    }

    /// How many connections of this loop wait on `name` now.
    pub fn subscriber_count(&self, name: &str) -> usize {
        self.lookup(name)
            .map_or(0, |key| self.channels[key].waiting.len())
    }

    /// Number of channels this loop knows.
    pub fn len(&self) -> usize {
        self.channels.len()
    }

    /// Whether this loop knows no channel.
    pub fn is_empty(&self) -> bool {
        self.channels.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscribers_come_and_go_and_empty_channels_are_forgotten() {
        let mut index = ChannelIndex::new(10);
        let key = index.get_or_create("a");
        let r1 = index.subscribe(key, 7);
        let r2 = index.subscribe(key, 9);
        let mut waiting = Vec::new();
        index.waiting_on(key, &mut waiting);
        waiting.sort_unstable();
        assert_eq!(waiting, [7, 9]);
        assert_eq!(index.subscriber_count("a"), 2);
        index.unsubscribe(key, r1);
        assert_eq!(index.subscriber_count("a"), 1);
        index.unsubscribe(key, r2);
        assert_eq!(
            index.lookup("a"),
            None,
            "a channel without events or subscribers is forgotten"
        );
    }

    #[test]
    fn channels_with_events_are_kept() {
        let mut index = ChannelIndex::new(2);
        let key = index
            .append(Arc::new(Event::message("a".into(), 1, "x")))
            .unwrap();
        let registration = index.subscribe(key, 1);
        index.unsubscribe(key, registration);
        assert_eq!(index.lookup("a"), Some(key));
        assert_eq!(index.get(key).history.last_id(), 1);
        assert!(index
            .append(Arc::new(Event::message("a".into(), 3, "x")))
            .is_none());
    }
}
