//! Writes the Debian package's files that are made from the flags' clap definitions,
//! so that they cannot drift from the binary: the man page (`halley.1`) and the
//! commented `/etc/halley/halley.toml`, into the directory given
//! (`scripts/package` passes `target/package`).
//!
//! `cargo run --example package_files -- target/package`

use std::io::Write;

use clap::CommandFactory;
use clap_mangen::roff::{bold, italic, roman, Inline, Roff};
use clap_mangen::Man;

use halley::cli::Args;
use halley::settings::print;

/// The man page's DESCRIPTION.
const DESCRIPTION: &str = "Halley pushes events to browsers, live: a live blog, a chat, a \
scoreboard, notifications. Browsers subscribe to channels on the subscriber port over \
long-polling, interval polling, XHR streaming, a forever frame (iframe), server-sent events \
or WebSocket; publishers post to the admin port (POST /pub/CHANNEL), which is served apart so \
a publisher always gets in, and browsers may publish where --client-publish or a token \
allows. Every event has a per-channel id: a client that drops resumes from its cursor and \
gets nothing twice and nothing lost. Events are kept in memory, in an append-only log \
(--data-dir), or in Redis shared by several servers (--redis). GET /stats and GET /metrics on \
the admin port count every limit and refusal.";

/// Where the package keeps events: the unit's `StateDirectory=`.
const PACKAGED_DATA_DIR: &str = "/var/lib/halley";

fn main() -> std::io::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .expect("usage: package_files DIRECTORY");
    std::fs::create_dir_all(&dir)?;
    let command = Args::command();
    let mut page = std::fs::File::create(format!("{dir}/halley.1"))?;
    write_man_page(&command, &mut page)?;
    let data_dir = print::Active {
        key: "data-dir",
        value: PACKAGED_DATA_DIR,
        why: "Set by the package: the service keeps every event in /var/lib/halley (its \
              StateDirectory=) and recovers them at start. Comment it out to keep events \
              in memory only.",
    };
    let settings = print::commented_file(&command, &[data_dir]);
    std::fs::write(format!("{dir}/halley.toml"), settings)?;
    Ok(())
}

fn write_man_page(command: &clap::Command, out: &mut dyn Write) -> std::io::Result<()> {
    let man = Man::new(command.clone().long_about(DESCRIPTION))
        .title("HALLEY")
        .section("1")
        .manual("Halley")
        .source(format!("halley {}", env!("CARGO_PKG_VERSION")));
    man.render_title(out)?;
    man.render_name_section(out)?;
    man.render_synopsis_section(out)?;
    man.render_description_section(out)?;
    man.render_options_section(out)?;
    let mut roff = Roff::new();
    section(
        &mut roff,
        "CONFIGURATION FILE",
        &[
            vec![
                roman("Every option above but "),
                bold("--config"),
                roman(" and "),
                bold("--print-config"),
                roman(" is also a key of the TOML file that "),
                bold("--config"),
                roman(" names: the key is the option's name without its dashes ("),
                bold("poll-timeout = \"30s\""),
                roman("), its value a string or an integer ("),
                bold("retain"),
                roman(" takes a list). An option given on the command line wins over the file."),
            ],
            vec![roman(
                "A key that is not a setting, a value of the wrong type or one the option would \
                 refuse, and TOML that does not parse stop the start (exit status 2) with the \
                 file, line and key named.",
            )],
            vec![
                bold("halley --config /etc/halley/halley.toml --print-config"),
                roman(" prints every setting in force, each with where it came from: the command line, a line of the file, or the default."),
            ],
        ],
    );
    section(
        &mut roff,
        "FILES",
        &[
            vec![
                bold("/etc/halley/halley.toml"),
                roman(": the service's settings; every key is there with its help, its default commented out. Readable by root and the group halley only, as it may hold a Redis password."),
            ],
            vec![
                bold("/var/lib/halley"),
                roman(": the service's "),
                bold("data-dir"),
                roman(" (the events kept across restarts); removed only when the package is purged."),
            ],
            vec![
                bold("/usr/share/halley"),
                roman(": the browser client ("),
                italic("client-js/halley.js"),
                roman(") and the pages, as the server also serves them."),
            ],
            vec![
                bold("/etc/sysctl.d/60-halley.conf"),
                roman(": kernel settings for many connections, all commented out."),
            ],
        ],
    );
    section(
        &mut roff,
        "SIGNALS",
        &[vec![
            bold("SIGTERM"),
            roman(", "),
            bold("SIGINT"),
            roman(": end streams and held polls cleanly and exit. "),
            bold("SIGHUP"),
            roman(": reload the TLS certificate pairs (other settings take a restart)."),
        ]],
    );
    section(
        &mut roff,
        "ENVIRONMENT",
        &[
            vec![bold("RUST_LOG"), roman(": log filters; wins over "), bold("--log-level"), roman(".")],
            vec![
                bold("SSL_CERT_FILE"),
                roman(": the certificates trusted for "),
                bold("rediss://"),
                roman(" instead of the system's."),
            ],
            vec![
                bold("NOTIFY_SOCKET"),
                roman(", "),
                bold("WATCHDOG_USEC"),
                roman(": set by systemd for "),
                bold("Type=notify"),
                roman(": READY=1 is sent once both ports accept and every event loop answers, WATCHDOG=1 while they go on answering."),
            ],
            vec![
                bold("JOURNAL_STREAM"),
                roman(": when stderr is the journal, log lines carry a syslog priority ("),
                bold("journalctl -p warning"),
                roman(") and no timestamp of their own."),
            ],
        ],
    );
    section(
        &mut roff,
        "EXIT STATUS",
        &[vec![roman(
            "0 after a signal to stop; 1 when the server cannot start (a port taken, a key \
             that does not load); 2 when the command line or the configuration file is refused.",
        )]],
    );
    section(
        &mut roff,
        "SEE ALSO",
        &[vec![roman("systemctl(1), journalctl(1), sysctl.d(5)")]],
    );
    roff.to_writer(out)?;
    man.render_version_section(out)
}

fn section(roff: &mut Roff, title: &str, paragraphs: &[Vec<Inline>]) {
    roff.control("SH", [title]);
    for paragraph in paragraphs {
        roff.control("PP", []);
        roff.text(paragraph.clone());
    }
}
