//! The catch-up thread's reader over Redis: a cursor older than a loop's memory is
//! served from the channel's stream (`XRANGE` from the cursor), as the on-disk log's
//! reader serves it, so the loops do not learn which storage answered.

use std::sync::Arc;
use std::time::Duration;

use log::warn;

use super::barrier::Barriers;
use super::{RedisError, RedisStore, StoredEvent};
use crate::channel::Event;
use crate::storage::{StorageReader, Stored};

/// Entries read per `XRANGE`.
const BATCH: usize = 200;

/// A reader on its own connection, made again after a failure.
pub struct RedisReader {
    url: String,
    timeout: Duration,
    store: Option<RedisStore>,
    /// The listeners an answer waits for (`barrier.rs`); none in a reader alone.
    barriers: Option<Arc<Barriers>>,
}

impl RedisReader {
    /// A reader alone: its answers go out as soon as Redis gives them.
    pub fn new(url: &str, timeout: Duration) -> RedisReader {
        RedisReader {
            url: url.to_string(),
            timeout,
            store: None,
            barriers: None,
        }
    }

    /// A server's reader: a channel's bounds go out only once the listener of the
    /// channel has handed on every announcement Redis sent before them.
    pub fn behind(url: &str, timeout: Duration, barriers: Arc<Barriers>) -> RedisReader {
        RedisReader {
            barriers: Some(barriers),
            ..RedisReader::new(url, timeout)
        }
    }

    /// One attempt at the read, on the connection (made if there is none).
    fn try_read(
        &mut self,
        channel: &str,
        cursor: u64,
        to: u64,
        max_bytes: usize,
    ) -> Result<Vec<Stored>, RedisError> {
        if self.store.is_none() {
            self.store = Some(RedisStore::connect(&self.url, self.timeout, 1)?);
        }
        let store = self.store.as_mut().expect("made above");
        let mut out = Vec::new();
        if cursor >= to {
            // Nothing asked for (a loop that wants only the bounds).
            return Ok(out);
        }
        let mut next = cursor + 1;
        let mut bytes = 0;
        while next <= to && bytes < max_bytes {
            let entries = store.read_after(channel, next - 1, BATCH)?;
            let full = entries.len() == BATCH;
            if entries.is_empty() {
                // Nothing after `next - 1`: a gap only if the stream now starts past
                // it (trimmed away). Events published since the read are no gap:
                // they come with their announcements.
                let bounds = store.bounds(channel)?;
                let trimmed_to = (bounds.first_id.saturating_sub(1))
                    .min(bounds.last_id)
                    .min(to);
                if trimmed_to >= next {
                    out.push(Stored::Gap {
                        from: next,
                        to: trimmed_to,
                    });
                }
                break;
            }
            for StoredEvent { id, data } in entries {
                if id > to || bytes >= max_bytes {
                    return Ok(out);
                }
                if id > next {
                    out.push(Stored::Gap {
                        from: next,
                        to: id - 1,
                    });
                }
                bytes += data.as_ref().map_or(0, Vec::len);
                out.push(event(channel, id, data));
                next = id + 1;
            }
            if !full {
                break;
            }
        }
        Ok(out)
    }
}

/// The event a stream entry holds. Data that is not UTF-8 (written into Redis by
/// something other than Halley) cannot be a frame: it is a gap of one.
fn event(channel: &str, id: u64, data: Option<Vec<u8>>) -> Stored {
    let channel: Arc<str> = Arc::from(channel);
    match data {
        None => Stored::Event(Arc::new(Event::close_marker(channel, id))),
        Some(data) => match String::from_utf8(data) {
            Ok(text) => Stored::Event(Arc::new(Event::message(channel, id, &text))),
            Err(_) => Stored::Gap { from: id, to: id },
        },
    }
}

impl StorageReader for RedisReader {
    fn read_after(&mut self, channel: &str, cursor: u64, to: u64, max_bytes: usize) -> Vec<Stored> {
        // A connection that broke since the last read is made again once.
        for _ in 0..2 {
            match self.try_read(channel, cursor, to, max_bytes) {
                Ok(items) => return items,
                Err(e) => {
                    warn!("catch-up from Redis: {e}");
                    self.store = None;
                }
            }
        }
        // Nothing rather than a gap: what Redis holds is not lost because it did not
        // answer now.
        Vec::new()
    }

    fn bounds(&mut self, channel: &str) -> Option<(u64, Option<u64>)> {
        let bounds = self.store.as_mut()?.bounds(channel);
        match bounds {
            Ok(bounds) => {
                let passed = self
                    .barriers
                    .as_ref()
                    .is_none_or(|barriers| barriers.pass(channel, self.timeout));
                // Not passed (the listener is not connected, or slow): the loop
                // takes it as unanswered, and asks again at the channel's next event.
                passed.then_some((bounds.last_id, bounds.closed_id))
            }
            Err(e) => {
                warn!("catch-up from Redis: {e}");
                self.store = None;
                None
            }
        }
    }
}
