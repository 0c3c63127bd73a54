//! The keys of a channel in Redis. Every key of a channel carries the channel's name
//! in braces, Redis Cluster's hash tag, so that all of them live in one slot and one
//! script may touch them together.

/// The prefix of every key and announcement channel Halley uses.
pub const PREFIX: &str = "halley";

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_channel_s_keys_share_its_hash_tag() {
        assert_eq!(meta("live.1"), "halley:{live.1}:meta");
        assert_eq!(log("live.1"), "halley:{live.1}:log");
    }
}
