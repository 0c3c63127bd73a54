//! The default storage: each channel's last `--history` events in memory, lost at exit.
//! The same bounded `History` that every loop keeps as its replica.

use std::collections::HashMap;
use std::sync::Arc;

use super::{Bounds, Entry, Recovered, Storage, StorageError, StorageReader, Stored, SyncPlan};
use crate::channel::History;

/// Channels' histories in memory.
#[derive(Debug)]
pub struct MemoryStorage {
    channels: HashMap<Arc<str>, History>,
    /// Events kept per channel.
    capacity: usize,
}

impl MemoryStorage {
    /// Keeps `capacity` events per channel.
    pub fn new(capacity: usize) -> MemoryStorage {
        MemoryStorage {
            channels: HashMap::new(),
            capacity,
        }
    }
}

impl Storage for MemoryStorage {
    fn recover(&mut self, _keep: usize) -> Result<Vec<Recovered>, StorageError> {
        Ok(Vec::new())
    }

    fn append(&mut self, entry: &Entry) -> Result<(), StorageError> {
        let capacity = self.capacity;
        let history = self
            .channels
            .entry(entry.event.channel.clone())
            .or_insert_with(|| History::new(capacity));
        history.push(entry.event.clone());
        Ok(())
    }

    fn take_sync_plan(&mut self) -> Result<SyncPlan, StorageError> {
        Ok(SyncPlan::Nothing)
    }

    fn bounds(&self, channel: &str) -> Option<Bounds> {
        let history = self.channels.get(channel)?;
        Some(Bounds {
            first_id: history.first_id(),
            last_id: history.last_id(),
            closed_id: history.closed_id(),
        })
    }

    fn enforce_retention(&mut self, _now_ms: u64) -> Vec<(Arc<str>, u64)> {
        Vec::new()
    }
}

impl StorageReader for MemoryStorage {
    fn read_after(&mut self, channel: &str, cursor: u64, to: u64, max_bytes: usize) -> Vec<Stored> {
        let Some(history) = self.channels.get(channel) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        if cursor + 1 < history.first_id() && cursor < to {
            out.push(Stored::Gap {
                from: cursor + 1,
                to: (history.first_id() - 1).min(to),
            });
        }
        let mut bytes = 0;
        for event in history.after(cursor).take_while(|e| e.id <= to) {
            if bytes >= max_bytes {
                break;
            }
            bytes += event.data_len;
            out.push(Stored::Event(event.clone()));
        }
        out
    }
}
