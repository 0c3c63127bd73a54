//! `--retain`: how much of each channel's log is kept. Whole segments are deleted,
//! oldest first, never the one being written, so a channel keeps at least what was
//! asked and at most one segment more. Subscribers whose cursor falls in what was
//! deleted get a `gap` frame.
//!
//! Forms (the flag may be given several times; a segment goes when any limit says so):
//! a bare number keeps at least that many events (`100000`); a size keeps at most
//! about that many bytes (`512MiB`, `64KiB`, `4096B`); a duration keeps segments
//! written to within it (`24h`, `30m`).

use std::time::Duration;

use crate::units::{parse_duration, parse_size};

/// One `--retain` limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Events(u64),
    Bytes(u64),
    Age(Duration),
}

impl Limit {
    /// Parses one `--retain` value.
    pub fn parse(text: &str) -> Result<Limit, String> {
        let text = text.trim();
        if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
            return text
                .parse()
                .map(Limit::Events)
                .map_err(|_| format!("{text:?}: too many events"));
        }
        if let Ok(size) = parse_size(text) {
            return Ok(Limit::Bytes(size));
        }
        parse_duration(text).map(Limit::Age).map_err(|_| {
            format!(
                "{text:?}: expected a number of events (10000), a size (512MiB) or an age (24h)"
            )
        })
    }
}

/// Every `--retain` limit; none means everything is kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Retention {
    pub limits: Vec<Limit>,
}

/// What retention needs to know of a channel's oldest segment.
#[derive(Debug, Clone, Copy)]
pub struct Oldest {
    /// Events in every segment after it.
    pub events_after: u64,
    /// Bytes of every segment, it included.
    pub bytes_total: u64,
    /// Wall-clock ms of its last write.
    pub last_write_ms: u64,
}

impl Retention {
    /// Whether the oldest segment (not the one being written) may go at `now_ms`.
    pub fn drops(&self, oldest: Oldest, now_ms: u64) -> bool {
        self.limits.iter().any(|limit| match *limit {
            Limit::Events(keep) => oldest.events_after >= keep,
            Limit::Bytes(most) => oldest.bytes_total > most,
            Limit::Age(age) => oldest.last_write_ms + (age.as_millis() as u64) < now_ms,
        })
    }

    /// Whether any limit depends on time (so retention must run with no publish).
    pub fn has_age(&self) -> bool {
        self.limits.iter().any(|l| matches!(l, Limit::Age(_)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        assert_eq!(Limit::parse("1000"), Ok(Limit::Events(1000)));
        assert_eq!(Limit::parse("64KiB"), Ok(Limit::Bytes(65536)));
        assert_eq!(Limit::parse("4096B"), Ok(Limit::Bytes(4096)));
        assert_eq!(
            Limit::parse("24h"),
            Ok(Limit::Age(Duration::from_secs(86_400)))
        );
        assert!(Limit::parse("lots").is_err());
        assert!(Limit::parse("").is_err());
    }

    #[test]
    fn any_limit_drops() {
        let retention = Retention {
            limits: vec![Limit::Events(10), Limit::Age(Duration::from_secs(1))],
        };
        let oldest = Oldest {
            events_after: 9,
            bytes_total: 100,
            last_write_ms: 10_000,
        };
        assert!(!retention.drops(oldest, 10_500));
        assert!(retention.drops(oldest, 11_001));
        assert!(retention.drops(
            Oldest {
                events_after: 10,
                ..oldest
            },
            10_000
        ));
        assert!(!Retention::default().drops(oldest, u64::MAX));
    }
}
