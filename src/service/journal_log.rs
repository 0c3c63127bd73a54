//! Log lines: with a timestamp and level on a terminal or in a file; under systemd,
//! when stderr is the journal (`JOURNAL_STREAM`, systemd.exec(5)), with no timestamp
//! of their own (the journal stamps each line) and a `<N>` syslog priority in front
//! (sd-daemon(3)), so `journalctl -p warning` finds warnings and errors.

use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;

use log::Level;

/// Whether stderr is the journal: `JOURNAL_STREAM` names the device and inode
/// (`DEV:INODE`) of the stream systemd connected, and stderr is that stream (not a
/// terminal or file it was redirected to since).
pub fn stderr_is_journal() -> bool {
    let Some(value) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = value.to_str().and_then(|v| v.split_once(':')) else {
        return false;
    };
    let (Ok(dev), Ok(ino)) = (dev.parse::<u64>(), ino.parse::<u64>()) else {
        return false;
    };
    let Ok(fd) = std::io::stderr().as_fd().try_clone_to_owned() else {
        return false;
    };
    std::fs::File::from(fd)
        .metadata()
        .is_ok_and(|meta| meta.dev() == dev && meta.ino() == ino)
}

/// The syslog priority of a level: err (3), warning (4), info (6), debug (7).
pub fn priority(level: Level) -> u8 {
    match level {
        Level::Error => 3,
        Level::Warn => 4,
        Level::Info => 6,
        Level::Debug | Level::Trace => 7,
    }
}

/// Starts logging at `filters` (`info`, `halley=debug`; `RUST_LOG`, when set, wins),
/// in the journal's form when stderr is the journal.
pub fn init(filters: &str) {
    let mut builder = env_logger::Builder::new();
    builder.parse_filters(filters).parse_env("RUST_LOG");
    if stderr_is_journal() {
        builder
            .format(|out, record| writeln!(out, "<{}>{}", priority(record.level()), record.args()));
    } else {
        builder.format_timestamp_millis();
    }
    builder.init();
}

/// Writes an error before logging has started (a configuration refused).
pub fn early_error(message: &str) {
    if stderr_is_journal() {
        eprintln!("<{}>{message}", priority(Level::Error));
    } else {
        eprintln!("{message}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priorities_are_syslogs() {
        assert_eq!(priority(Level::Error), 3);
        assert_eq!(priority(Level::Warn), 4);
        assert_eq!(priority(Level::Info), 6);
        assert_eq!(priority(Level::Debug), 7);
        assert_eq!(priority(Level::Trace), 7);
    }
}
