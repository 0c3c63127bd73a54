//! The keys of a channel in Redis, and where its announcements go. Every key of a
//! channel carries the channel's name in braces, Redis Cluster's hash tag, so that all
//! of them live in one slot and one script may touch them together.
//!
//! On a single Redis every announcement goes to one channel (`PUBLISH`). On a Redis
//! Cluster an announcement goes to its slot's shard channel (`SPUBLISH`), named with a
//! hash tag that falls in that slot, so that it reaches only the servers listening to
//! that shard, and a script may announce from the slot its keys are in.

use std::sync::OnceLock;

/// The prefix of every key and announcement channel Halley uses.
pub const PREFIX: &str = "halley";

/// Redis Cluster's number of slots.
pub const SLOTS: u16 = 16384;

/// The channel's hash: `last` (its newest id) and `closed` (its close marker's id).
pub fn meta(channel: &str) -> String {
    format!("{PREFIX}:{{{channel}}}:meta")
}

/// The channel's stream: one entry per event, its id `0-ID`, its data in field `d`.
pub fn log(channel: &str) -> String {
    format!("{PREFIX}:{{{channel}}}:log")
}

/// Where announcements of every channel go on a single Redis.
pub const ANNOUNCEMENTS: &str = "halley:announcements";

/// The Redis Cluster slot of a key: CRC16 (XMODEM) of its hash tag (what lies between
/// the first `{` and the next `}`, when not empty) or of the whole key, modulo 16384.
pub fn slot(key: &[u8]) -> u16 {
    let tag = key
        .iter()
        .position(|&b| b == b'{')
        .and_then(|open| {
            let rest = &key[open + 1..];
            rest.iter()
                .position(|&b| b == b'}')
                .map(|close| &rest[..close])
        })
        .filter(|tag| !tag.is_empty())
        .unwrap_or(key);
    crc16::State::<crc16::XMODEM>::calculate(tag) % SLOTS
}

/// The slot of every key of `channel` (channel names hold no braces: PROTOCOL.md's
/// name rules).
pub fn channel_slot(channel: &str) -> u16 {
    slot(meta(channel).as_bytes())
}

/// The shard channel that announces the events of the channels in `slot`, on a
/// Redis Cluster: `halley:announcements:{TAG}`, its tag the first decimal number found
/// whose slot is `slot`, so that every server names it alike.
pub fn shard_announcements(slot: u16) -> String {
    format!("{ANNOUNCEMENTS}:{{{}}}", slot_tags()[slot as usize])
}

/// For each slot, the smallest number whose decimal digits hash to it (found once,
/// in about 180,000 CRCs).
fn slot_tags() -> &'static [u32] {
    static TAGS: OnceLock<Vec<u32>> = OnceLock::new();
    TAGS.get_or_init(|| {
        let mut tags = vec![u32::MAX; SLOTS as usize];
        let mut missing = SLOTS as usize;
        let mut n: u32 = 0;
        while missing > 0 {
            let slot = slot(n.to_string().as_bytes()) as usize;
            if tags[slot] == u32::MAX {
                tags[slot] = n;
                missing -= 1;
            }
            n += 1;
        }
        tags
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_channel_s_keys_share_its_hash_tag() {
        assert_eq!(meta("live.1"), "halley:{live.1}:meta");
        assert_eq!(log("live.1"), "halley:{live.1}:log");
        assert_eq!(
            slot(meta("live.1").as_bytes()),
            slot(log("live.1").as_bytes())
        );
    }

    #[test]
    fn slots_are_redis_cluster_s() {
        // Values from Redis's CLUSTER KEYSLOT (and the cluster specification's
        // examples of hash tags).
        assert_eq!(slot(b"foo"), 12182);
        assert_eq!(slot(b"bar"), 5061);
        assert_eq!(slot(b"{user1000}.following"), slot(b"user1000"));
        assert_eq!(slot(b"somekey"), 11058);
        // An empty tag: the whole key.
        assert_ne!(slot(b"foo{}{bar}"), slot(b"bar"));
        assert_eq!(slot(b"foo{{bar}}zap"), slot(b"{bar"));
        assert_eq!(slot(b"foo{bar}{zap}"), slot(b"bar"));
    }

    #[test]
    fn every_slot_has_a_shard_channel_in_it() {
        for slot_number in 0..SLOTS {
            let name = shard_announcements(slot_number);
            assert_eq!(slot(name.as_bytes()), slot_number, "{name}");
        }
    }
}
