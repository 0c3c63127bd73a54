//! The catch-up thread: reads from storage what a subscriber's cursor is owed but its
//! loop no longer holds in memory, and hands it to `reply`, which sends it back through
//! that loop's inbox (the bus, which sits above storage), so no loop ever waits on the
//! disk. Between requests it reads ahead what the last one
//! left owed, so a subscriber catching up finds its next events decoded.

use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{Sender, TryRecvError};

use super::{StorageReader, Stored};
use crate::stats::{add, bump, Stats};

/// A loop's request: the events of `channel` after `cursor` up to `to`.
#[derive(Debug)]
pub struct FetchRequest {
    /// The loop that asks (its number).
    pub from_loop: usize,
    /// The connection, and the serial of its request, to match the answer to it.
    pub conn: usize,
    pub serial: u64,
    pub channel: Arc<str>,
    pub cursor: u64,
    pub to: u64,
    /// About how many bytes of events to read.
    pub max_bytes: usize,
}

/// The answer, as the loop receives it.
#[derive(Debug)]
pub struct Fetched {
    pub conn: usize,
    pub serial: u64,
    pub channel: Arc<str>,
    /// Shared storage's last id and close marker of the channel, read after the items
    /// (`StorageReader::bounds`); `None` from storage of this server's own.
    pub bounds: Option<(u64, Option<u64>)>,
    /// Starts at the request's `cursor + 1`, with an event or a gap.
    pub items: Vec<Stored>,
}

/// Starts the catch-up thread; it stops when every loop has dropped its sender. Each
/// answer goes to `reply` with the number of the loop that asked.
pub fn spawn(
    mut reader: Box<dyn StorageReader>,
    reply: impl Fn(usize, Fetched) + Send + 'static,
    stats: Arc<Stats>,
) -> std::io::Result<(Sender<FetchRequest>, JoinHandle<()>)> {
    let (requests, inbox) = crossbeam_channel::unbounded::<FetchRequest>();
    let thread = std::thread::Builder::new()
        .name("halley-catchup".into())
        .spawn(move || {
            loop {
                let request = match inbox.try_recv() {
                    Ok(request) => request,
                    Err(TryRecvError::Disconnected) => break,
                    Err(TryRecvError::Empty) => {
                        // Idle: decode what the last reader will want next, so that
                        // it is read while its loop writes what it has.
                        if reader.read_ahead() {
                            continue;
                        }
                        match inbox.recv() {
                            Ok(request) => request,
                            Err(_) => break,
                        }
                    }
                };
                let items = reader.read_after(
                    &request.channel,
                    request.cursor,
                    request.to,
                    request.max_bytes,
                );
                bump(&stats.admin.catchup_reads);
                let events = items
                    .iter()
                    .filter(|i| matches!(i, Stored::Event(_)))
                    .count();
                add(&stats.admin.catchup_events, events as u64);
                let bounds = reader.bounds(&request.channel);
                let fetched = Fetched {
                    conn: request.conn,
                    serial: request.serial,
                    channel: request.channel,
                    bounds,
                    items,
                };
                reply(request.from_loop, fetched);
            }
        })?;
    Ok((requests, thread))
}
