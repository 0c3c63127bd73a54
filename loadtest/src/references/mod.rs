//! The references that measure the limits, programs of their own beside Halley in
//! the benchmarks: `minimal_responder` (the least a server can spend per
//! new-connection request) and `writev_floor` (the least it can spend per delivered
//! frame). Both are mio loops shaped as Halley's are.

pub mod minimal_responder;
pub mod writev_floor;

use std::io::ErrorKind;

use mio::{Events, Poll};

/// Waits for events, again when a signal interrupts the wait (strace attaching, for
/// one, which `syscalls.sh` does).
fn wait(poll: &mut Poll, events: &mut Events) -> std::io::Result<()> {
    loop {
        match poll.poll(events, None) {
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}
