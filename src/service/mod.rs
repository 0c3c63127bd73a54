//! Running as a service under systemd: readiness and the watchdog (`notify.rs`), and
//! log lines the journal understands (`journal_log.rs`). Outside systemd (no
//! `NOTIFY_SOCKET`, no `JOURNAL_STREAM`) both do what a terminal expects.

pub mod journal_log;
pub mod notify;
