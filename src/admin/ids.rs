//! The authority over channel ids: the admin thread gives every event its id here,
//! knows which channels are closed, and answers what `GET /channels/{name}` reports.
//! It keeps no event: `acks.rs` hands each to the storage (`storage/`), and the
//! loops' history replicas (`channel/index.rs`) receive every event in id order from
//! this one thread once it is stored.

use std::collections::HashMap;
use std::sync::Arc;

use crate::channel::Event;

/// What is known of one channel.
#[derive(Debug, Clone)]
struct ChannelMeta {
    name: Arc<str>,
    last_id: u64,
    closed_id: Option<u64>,
    /// Oldest id held by durable storage (`None` without one).
    stored_first: Option<u64>,
}

/// A channel as `GET /channels/{name}` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelInfo {
    /// Oldest retained id (`last_id + 1` when nothing is retained).
    pub first_id: u64,
    /// Newest id, the close marker included.
    pub last_id: u64,
    pub closed: bool,
}

/// What closing a channel did.
#[derive(Debug)]
pub struct Closing {
    /// The channel's name, as kept here.
    pub channel: Arc<str>,
    /// The close marker's id.
    pub id: u64,
    /// The marker itself, if this call closed the channel (closing again creates none).
    pub marker: Option<Arc<Event>>,
}

/// Why a publish was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublishError {
    /// The channel is closed: 409.
    Closed,
}

/// Every channel that has had an event: its last id and whether it is closed.
#[derive(Debug)]
pub struct ChannelIds {
    channels: HashMap<Arc<str>, ChannelMeta>,
    /// `--history`, to report `first_id`.
    history: usize,
    /// Whether a durable storage holds events beyond `--history`.
    durable: bool,
}

impl ChannelIds {
    pub fn new(history: usize) -> ChannelIds {
        ChannelIds {
            channels: HashMap::new(),
            history,
            durable: false,
        }
    }

    /// The ids of the channels a durable storage recovered.
    pub fn recovered(history: usize, channels: &[crate::storage::Recovered]) -> ChannelIds {
        let mut ids = ChannelIds {
            durable: true,
            ..ChannelIds::new(history)
        };
        for channel in channels {
            ids.channels.insert(
                channel.name.clone(),
                ChannelMeta {
                    name: channel.name.clone(),
                    last_id: channel.bounds.last_id,
                    closed_id: channel.bounds.closed_id,
                    stored_first: Some(channel.bounds.first_id),
                },
            );
        }
        ids
    }

    /// Durable storage now holds `name` from `first_id` on.
    pub fn set_stored_first(&mut self, name: &str, first_id: u64) {
        if let Some(meta) = self.channels.get_mut(name) {
            meta.stored_first = Some(first_id);
        }
    }

    fn entry(&mut self, name: &str) -> &mut ChannelMeta {
        if !self.channels.contains_key(name) {
            let name: Arc<str> = Arc::from(name);
            self.channels.insert(
                name.clone(),
                ChannelMeta {
                    name,
                    last_id: 0,
                    closed_id: None,
                    stored_first: self.durable.then_some(1),
                },
            );
        }
        self.channels.get_mut(name).expect("inserted above")
    }

    /// Gives `data` the next id of `name` and encodes it.
    pub fn publish(&mut self, name: &str, data: &str) -> Result<Arc<Event>, PublishError> {
        if self
            .channels
            .get(name)
            .is_some_and(|c| c.closed_id.is_some())
        {
            return Err(PublishError::Closed);
        }
        let meta = self.entry(name);
        meta.last_id += 1;
        Ok(Arc::new(Event::message(
            meta.name.clone(),
            meta.last_id,
            data,
        )))
    }

    /// Closes `name` (closing again answers the same id and creates nothing).
    pub fn close(&mut self, name: &str) -> Closing {
        let meta = self.entry(name);
        let channel = meta.name.clone();
        if let Some(id) = meta.closed_id {
            return Closing {
                channel,
                id,
                marker: None,
            };
        }
        meta.last_id += 1;
        meta.closed_id = Some(meta.last_id);
        let marker = Event::close_marker(channel.clone(), meta.last_id);
        Closing {
            channel,
            id: meta.last_id,
            marker: Some(Arc::new(marker)),
        }
    }

    /// What is known of `name`, if it ever had an event.
    pub fn info(&self, name: &str) -> Option<ChannelInfo> {
        let meta = self.channels.get(name)?;
        let retained = meta.last_id.min(self.history as u64);
        let in_memory = meta.last_id - retained + 1;
        Some(ChannelInfo {
            first_id: meta.stored_first.map_or(in_memory, |f| f.min(in_memory)),
            last_id: meta.last_id,
            closed: meta.closed_id.is_some(),
        })
    }

    /// Number of channels known.
    pub fn len(&self) -> usize {
        self.channels.len()
    }

    /// Whether no channel is known.
    pub fn is_empty(&self) -> bool {
        self.channels.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_grow_by_one_and_close_is_final() {
        let mut ids = ChannelIds::new(2);
        assert_eq!(ids.publish("a", "x").unwrap().id, 1);
        assert_eq!(ids.publish("a", "y").unwrap().id, 2);
        assert_eq!(ids.publish("b", "z").unwrap().id, 1);
        assert_eq!(ids.publish("a", "w").unwrap().id, 3);
        let closing = ids.close("a");
        assert_eq!((closing.id, closing.marker.unwrap().closed), (4, true));
        let again = ids.close("a");
        assert_eq!((&*again.channel, again.id), ("a", 4));
        assert!(again.marker.is_none());
        assert_eq!(ids.publish("a", "late").err(), Some(PublishError::Closed));
        assert_eq!(
            ids.info("a"),
            Some(ChannelInfo {
                first_id: 3,
                last_id: 4,
                closed: true
            })
        );
    }

    #[test]
    fn closing_an_unknown_channel_creates_it_closed() {
        let mut ids = ChannelIds::new(10);
        assert_eq!(ids.info("new"), None);
        assert_eq!(ids.close("new").id, 1);
        assert_eq!(
            ids.info("new"),
            Some(ChannelInfo {
                first_id: 1,
                last_id: 1,
                closed: true
            })
        );
    }
}
