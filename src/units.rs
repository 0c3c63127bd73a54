//! Units on the command line: durations that carry a unit (`500ms`, `1s`, `5m`, `2h`)
//! and sizes in bytes with an optional `KiB`/`MiB`/`GiB` suffix (PROTOCOL.md, "Details").
//!
//! Both parsers are strict: a bare number of seconds or a `KB` suffix is rejected with a
//! message that says what is accepted, so a typo on the command line never becomes a
//! silently wrong limit.

use std::fmt;
use std::time::Duration;

/// Why a duration or size on the command line was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitError(String);

impl fmt::Display for UnitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UnitError {}

/// Parses `500ms`, `1s`, `5m`, `2h`. The unit is required.
pub fn parse_duration(text: &str) -> Result<Duration, UnitError> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| UnitError(format!("{text:?}: a duration needs a unit: ms, s, m or h")))?;
    let (digits, unit) = text.split_at(split);
    let value: u64 = digits.parse().map_err(|_| {
        UnitError(format!(
            "{text:?}: expected a number followed by ms, s, m or h"
        ))
    })?;
    let millis_per_unit = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => {
            return Err(UnitError(format!(
                "{text:?}: unknown unit {unit:?}; use ms, s, m or h"
            )))
        }
    };
    value
        .checked_mul(millis_per_unit)
        .map(Duration::from_millis)
        .ok_or_else(|| UnitError(format!("{text:?}: too long")))
}

/// Parses a size in bytes: `65536`, `64KiB`, `1MiB`, `2GiB`.
pub fn parse_size(text: &str) -> Result<u64, UnitError> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let value: u64 = digits.parse().map_err(|_| {
        UnitError(format!(
            "{text:?}: expected a number of bytes, optionally with KiB, MiB or GiB"
        ))
    })?;
    let multiplier = match unit {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => {
            return Err(UnitError(format!(
                "{text:?}: unknown size suffix {unit:?}; use KiB, MiB or GiB (powers of 1024)"
            )))
        }
    };
    value
        .checked_mul(multiplier)
        .ok_or_else(|| UnitError(format!("{text:?}: too large")))
}

/// Writes a duration back in the unit it divides into evenly, for `--help` and logs.
pub fn format_duration(duration: Duration) -> String {
    let ms = duration.as_millis();
    match ms {
        0 => "0ms".to_string(),
        _ if ms.is_multiple_of(3_600_000) => format!("{}h", ms / 3_600_000),
        _ if ms.is_multiple_of(60_000) => format!("{}m", ms / 60_000),
        _ if ms.is_multiple_of(1_000) => format!("{}s", ms / 1_000),
        _ => format!("{ms}ms"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_need_and_honour_a_unit() {
        let table: &[(&str, Option<u64>)] = &[
            ("500ms", Some(500)),
            ("1s", Some(1_000)),
            ("5m", Some(300_000)),
            ("2h", Some(7_200_000)),
            ("0ms", Some(0)),
            ("30", None),
            ("1.5s", None),
            ("s", None),
            ("-1s", None),
            ("1d", None),
            ("", None),
            ("99999999999999999999h", None),
        ];
        for (text, expected) in table {
            let got = parse_duration(text).ok().map(|d| d.as_millis() as u64);
            assert_eq!(got, *expected, "{text}");
        }
    }

    #[test]
    fn sizes_accept_binary_suffixes_only() {
        let table: &[(&str, Option<u64>)] = &[
            ("65536", Some(65_536)),
            ("64KiB", Some(65_536)),
            ("1MiB", Some(1_048_576)),
            ("2GiB", Some(2 << 30)),
            ("10B", Some(10)),
            ("64KB", None),
            ("64k", None),
            ("KiB", None),
            ("", None),
            ("-1", None),
        ];
        for (text, expected) in table {
            assert_eq!(parse_size(text).ok(), *expected, "{text}");
        }
    }

    #[test]
    fn formatting_round_trips() {
        for text in ["500ms", "1s", "5m", "2h", "1500ms", "90s"] {
            assert_eq!(format_duration(parse_duration(text).unwrap()), text);
        }
    }
}
