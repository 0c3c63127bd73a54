//! A hierarchical timer wheel: 11 levels of 64 slots, 1 ms per slot at level 0, each level
//! 64 times coarser than the one below. Entries live in one slab and each slot is an
//! intrusive doubly-linked list through it, so insert and cancel are O(1) and allocate
//! nothing once the slab has grown; a bitmap per level finds the next busy slot without
//! scanning. An entry far away sits in a coarse slot and moves down a level when its
//! slot comes up, so each entry is touched at most once per level.
//!
//! Time is a plain `u64` of milliseconds since the owner's start, passed in: tests
//! never sleep. Every connection keeps at most one entry here (its earliest deadline).

use std::num::NonZeroU32;

use slab::Slab;

/// Bits of time per level: 64 slots.
const SLOT_BITS: u32 = 6;
const SLOTS: usize = 1 << SLOT_BITS;
const SLOT_MASK: u64 = (SLOTS as u64) - 1;
/// Levels: 11 groups of 6 bits cover all of `u64`, so any deadline has a level and
/// none needs clamping (the top levels stay empty in practice; checking them costs a
/// few bit tests).
const LEVELS: usize = 11;
/// End of a list.
const NIL: u32 = u32::MAX;

/// Handle of a scheduled entry, for `cancel`: its place in the slab, plus one, so that
/// an `Option<TimerKey>` takes four bytes (every connection holds one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerKey(NonZeroU32);

impl TimerKey {
    fn new(slot: usize) -> TimerKey {
        // Entries link to each other with `u32`s: the slab never has more.
        let plus_one = u32::try_from(slot + 1).expect("fewer than 2^32 timers");
        TimerKey(NonZeroU32::new(plus_one).expect("one or more"))
    }

    fn slot(self) -> usize {
        self.0.get() as usize - 1
    }
}

#[derive(Debug)]
struct Entry {
    /// Deadline, ms.
    when: u64,
    /// What the owner gets back when it expires (a connection key).
    token: usize,
    prev: u32,
    next: u32,
    level: u8,
    slot: u8,
}

#[derive(Debug)]
struct Level {
    /// Bit i set: slot i has entries.
    occupied: u64,
    /// First entry of each slot's list.
    heads: [u32; SLOTS],
}

/// The wheel. See the module doc.
#[derive(Debug)]
pub struct TimerWheel {
    /// Time up to which every deadline has been expired, ms.
    elapsed: u64,
    levels: [Level; LEVELS],
    entries: Slab<Entry>,
}

impl Default for TimerWheel {
    fn default() -> Self {
        TimerWheel::new()
    }
}

impl TimerWheel {
    /// An empty wheel at time 0.
    pub fn new() -> TimerWheel {
        TimerWheel {
            elapsed: 0,
            levels: std::array::from_fn(|_| Level {
                occupied: 0,
                heads: [NIL; SLOTS],
            }),
            entries: Slab::new(),
        }
    }

    /// Number of scheduled entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is scheduled.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Schedules `token` at `when` (ms). A deadline already past expires at the next
    /// `expire`.
    pub fn insert(&mut self, when: u64, token: usize) -> TimerKey {
        let when = when.max(self.elapsed);
        let key = self.entries.insert(Entry {
            when,
            token,
            prev: NIL,
            next: NIL,
            level: 0,
            slot: 0,
        });
        self.link(key);
        TimerKey::new(key)
    }

    /// Removes a scheduled entry; a key that already expired is ignored.
    pub fn cancel(&mut self, key: TimerKey) {
        let slot = key.slot();
        if self.entries.contains(slot) {
            self.unlink(slot);
            self.entries.remove(slot);
        }
    }

    /// The deadline of the earliest busy slot: no entry expires before it, and the
    /// owner should call `expire` by then.
    pub fn next_deadline(&self) -> Option<u64> {
        self.next_busy_slot().map(|(_, _, deadline)| deadline)
    }

    /// Removes every entry whose deadline is at or before `now` and appends its token
    /// to `expired`.
    pub fn expire(&mut self, now: u64, expired: &mut Vec<usize>) {
        while let Some((level, slot, deadline)) = self.next_busy_slot() {
            if deadline > now {
                break;
            }
            self.elapsed = self.elapsed.max(deadline);
            let mut cursor = self.levels[level].heads[slot];
            self.levels[level].heads[slot] = NIL;
            self.levels[level].occupied &= !(1 << slot);
            while cursor != NIL {
                let key = cursor as usize;
                cursor = self.entries[key].next;
                if self.entries[key].when <= now {
                    expired.push(self.entries.remove(key).token);
                } else {
                    self.link(key);
                }
            }
        }
        self.elapsed = self.elapsed.max(now);
    }

    /// (level, slot, slot start) of the earliest busy slot.
    fn next_busy_slot(&self) -> Option<(usize, usize, u64)> {
        for (level, slots) in self.levels.iter().enumerate() {
            let shift = SLOT_BITS * level as u32;
            let now_slot = ((self.elapsed >> shift) & SLOT_MASK) as u32;
            // Entries of a level all lie in the window that `elapsed` is in, at or after
            // its current slot (see `level_for`), so no wrap-around needs looking at.
            let ahead = slots.occupied >> now_slot;
            if ahead != 0 {
                let slot = now_slot + ahead.trailing_zeros();
                let window = shift + SLOT_BITS;
                let window_start = if window >= 64 {
                    0
                } else {
                    self.elapsed >> window << window
                };
                let deadline = window_start + ((slot as u64) << shift);
                return Some((level, slot as usize, deadline));
            }
        }
        None
    }

    /// The level whose slot width separates `when` from `elapsed`: the highest group of
    /// 6 bits in which they differ.
    fn level_for(elapsed: u64, when: u64) -> usize {
        let masked = (elapsed ^ when) | SLOT_MASK;
        let significant = 63 - masked.leading_zeros();
        (significant / SLOT_BITS) as usize
    }

    fn link(&mut self, key: usize) {
        let when = self.entries[key].when;
        let level = Self::level_for(self.elapsed, when);
        let slot = ((when >> (SLOT_BITS * level as u32)) & SLOT_MASK) as usize;
        let head = self.levels[level].heads[slot];
        {
            let entry = &mut self.entries[key];
            entry.level = level as u8;
            entry.slot = slot as u8;
            entry.prev = NIL;
            entry.next = head;
        }
        if head != NIL {
            self.entries[head as usize].prev = key as u32;
        }
        self.levels[level].heads[slot] = key as u32;
        self.levels[level].occupied |= 1 << slot;
    }

    fn unlink(&mut self, key: usize) {
        let (prev, next, level, slot) = {
            let e = &self.entries[key];
            (e.prev, e.next, e.level as usize, e.slot as usize)
        };
        if prev == NIL {
            self.levels[level].heads[slot] = next;
            if next == NIL {
                self.levels[level].occupied &= !(1 << slot);
            }
        } else {
            self.entries[prev as usize].next = next;
        }
        if next != NIL {
            self.entries[next as usize].prev = prev;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expire_at(wheel: &mut TimerWheel, now: u64) -> Vec<usize> {
        let mut out = Vec::new();
        wheel.expire(now, &mut out);
        out.sort_unstable();
        out
    }

    #[test]
    fn expires_each_entry_at_its_deadline_not_before() {
        let mut wheel = TimerWheel::new();
        let deadlines = [
            0u64, 1, 5, 63, 64, 65, 1000, 4095, 4096, 30_000, 300_000, 86_400_000,
        ];
        for (token, &when) in deadlines.iter().enumerate() {
            wheel.insert(when, token);
        }
        for (token, &when) in deadlines.iter().enumerate() {
            if when > 0 {
                assert!(
                    !expire_at(&mut wheel, when - 1).contains(&token),
                    "early: {when}"
                );
            }
            assert_eq!(expire_at(&mut wheel, when), vec![token], "at {when}");
        }
        assert!(wheel.is_empty());
    }

    #[test]
    fn cancel_removes_from_the_middle_of_a_slot() {
        let mut wheel = TimerWheel::new();
        let a = wheel.insert(100, 1);
        let b = wheel.insert(100, 2);
        let c = wheel.insert(100, 3);
        wheel.cancel(b);
        assert_eq!(expire_at(&mut wheel, 100), vec![1, 3]);
        wheel.cancel(a); // already expired: ignored
        wheel.cancel(c);
        assert!(wheel.is_empty());
        assert_eq!(wheel.next_deadline(), None);
    }

    #[test]
    fn next_deadline_never_passes_the_earliest_entry() {
        let mut wheel = TimerWheel::new();
        wheel.expire(12_345, &mut Vec::new());
        wheel.insert(12_345 + 25_000, 1);
        wheel.insert(12_345 + 1_000, 2);
        let next = wheel.next_deadline().unwrap();
        assert!(next <= 12_345 + 1_000);
        // Expiring step by step to each reported deadline reaches token 2 on time.
        let mut now = 12_345;
        let mut got = Vec::new();
        while got.is_empty() {
            now = wheel.next_deadline().unwrap();
            wheel.expire(now, &mut got);
        }
        assert_eq!((got, now), (vec![2], 12_345 + 1_000));
    }

    #[test]
    fn past_deadlines_expire_at_once_and_far_ones_wait() {
        let mut wheel = TimerWheel::new();
        wheel.expire(5_000, &mut Vec::new());
        wheel.insert(10, 1);
        assert_eq!(expire_at(&mut wheel, 5_000), vec![1]);
        wheel.insert(u64::MAX, 2);
        assert!(wheel.next_deadline().is_some());
        assert!(expire_at(&mut wheel, 1 << 62).is_empty());
        assert_eq!(expire_at(&mut wheel, u64::MAX), vec![2]);
    }

    #[test]
    fn matches_a_naive_model_under_random_operations() {
        // A small deterministic generator keeps the test reproducible without a crate.
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut wheel = TimerWheel::new();
        let mut model: Vec<(u64, usize, TimerKey)> = Vec::new();
        let mut now = 0u64;
        for step in 0..20_000usize {
            match next() % 4 {
                0 | 1 => {
                    let when = now + next() % [50, 5_000, 400_000][step % 3];
                    let key = wheel.insert(when, step);
                    model.push((when, step, key));
                }
                2 if !model.is_empty() => {
                    let (_, _, key) = model.swap_remove((next() as usize) % model.len());
                    wheel.cancel(key);
                }
                _ => {
                    now += next() % 3_000;
                    let got = expire_at(&mut wheel, now);
                    let mut want: Vec<usize> =
                        model.iter().filter(|e| e.0 <= now).map(|e| e.1).collect();
                    want.sort_unstable();
                    model.retain(|e| e.0 > now);
                    assert_eq!(got, want, "step {step} now {now}");
                }
            }
            assert_eq!(wheel.len(), model.len());
        }
    }
}
