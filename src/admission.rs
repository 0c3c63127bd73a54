//! How many subscriber connections may be open: the count over every loop and the
//! limit, shared by the loops and the admin thread (two relaxed atomics, no lock).
//!
//! The limit starts at `--max-conns`, which `Server::start` keeps below the
//! descriptor limit so that the admin port always has descriptors left. If the
//! process runs out of descriptors anyway (descriptors it inherited, or the system
//! limit), whoever notices first lowers the limit to the connections open then, less
//! a little headroom: the loops stop keeping new connections (they still accept one
//! at a time to refuse it, holding its descriptor only for that instant), so the
//! descriptors the admin thread frees and takes back cannot be kept by a loop.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Descriptors left free under the lowered limit, for the admin port and refusals.
const EXHAUSTION_HEADROOM: usize = 8;

/// The count and the limit of subscriber connections.
#[derive(Debug)]
pub struct Admission {
    open: AtomicUsize,
    limit: AtomicUsize,
}

impl Admission {
    /// Allows up to `limit` connections at once.
    pub fn new(limit: usize) -> Admission {
        Admission {
            open: AtomicUsize::new(0),
            limit: AtomicUsize::new(limit),
        }
    }

    /// Counts a new connection in, if the limit allows it.
    pub fn try_admit(&self) -> bool {
        let open = self.open.fetch_add(1, Ordering::Relaxed);
        if open >= self.limit.load(Ordering::Relaxed) {
            self.open.fetch_sub(1, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// Counts a connection out.
    pub fn leave(&self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// The limit in force.
    pub fn limit(&self) -> usize {
        self.limit.load(Ordering::Relaxed)
    }

    /// The process ran out of descriptors: no more connections than are open now, less
    /// the headroom. Returns the new limit if this lowered it.
    pub fn lower_on_exhaustion(&self) -> Option<usize> {
        let lowered = self.open().saturating_sub(EXHAUSTION_HEADROOM).max(1);
        let before = self.limit.fetch_min(lowered, Ordering::Relaxed);
        (lowered < before).then_some(lowered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_up_to_the_limit_and_lowers_on_exhaustion() {
        let admission = Admission::new(20);
        for _ in 0..20 {
            assert!(admission.try_admit());
        }
        assert!(!admission.try_admit());
        assert_eq!(admission.open(), 20);
        assert_eq!(admission.lower_on_exhaustion(), Some(12));
        assert_eq!(admission.lower_on_exhaustion(), None, "only lowers");
        for _ in 0..9 {
            admission.leave();
        }
        assert!(admission.try_admit(), "11 open, limit 12");
        assert!(!admission.try_admit());
    }
}
