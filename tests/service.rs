//! Under systemd, on the real binary: `READY=1` on `NOTIFY_SOCKET` only once both
//! ports answer, `WATCHDOG=1` again and again while the loops turn, `STOPPING=1` on
//! the way out; and with stderr the journal (`JOURNAL_STREAM`), log lines with a
//! `<N>` priority and no timestamp of their own.

mod util;

use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use util::binary::{self, spawn_command};
use util::{Client, WAIT};

fn halley() -> Command {
    let mut command = binary::command();
    command.args(binary::EPHEMERAL);
    command
}

fn scratch(name: &str) -> std::path::PathBuf {
    util::scratch("service", name)
}

/// The next notification, within `WAIT`.
fn next_notice(socket: &UnixDatagram) -> String {
    socket.set_read_timeout(Some(WAIT)).unwrap();
    let mut buf = [0u8; 4096];
    let n = socket.recv(&mut buf).expect("a notification within WAIT");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn ready_comes_once_both_ports_answer_then_the_watchdog_and_stopping() {
    let path = scratch("notify.sock");
    let socket = UnixDatagram::bind(&path).unwrap();
    let mut command = halley();
    command
        .env("NOTIFY_SOCKET", &path)
        .env("WATCHDOG_USEC", "300000");
    let mut server = spawn_command(command);
    let ready = next_notice(&socket);
    assert!(ready.lines().any(|l| l == "READY=1"), "{ready:?}");
    let status = format!(
        "STATUS=subscribers on {}, admin on {}",
        server.sub, server.admin
    );
    assert!(ready.lines().any(|l| l == status), "{ready:?}");
    // Both ports answer now.
    let health =
        Client::connect(server.admin).exchange(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(health.status, 200);
    let poll = Client::connect(server.sub)
        .exchange(b"GET /sub/news?t=poll&since=0 HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(poll.status, 200);
    // The watchdog: every 150 ms (half of WATCHDOG_USEC), three in a row.
    for _ in 0..3 {
        assert_eq!(next_notice(&socket), "WATCHDOG=1\n");
    }
    server.signal(libc::SIGTERM);
    let deadline = Instant::now() + WAIT;
    loop {
        let notice = next_notice(&socket);
        if notice == "STOPPING=1\n" {
            break;
        }
        assert_eq!(notice, "WATCHDOG=1\n");
        assert!(Instant::now() < deadline, "no STOPPING=1");
    }
    assert!(server.wait_exit(WAIT).success());
    let _ = std::fs::remove_file(&path);
}

#[test]
fn without_a_watchdog_asked_for_none_is_sent() {
    let path = scratch("no-watchdog.sock");
    let socket = UnixDatagram::bind(&path).unwrap();
    let mut command = halley();
    command.env("NOTIFY_SOCKET", &path);
    let mut server = spawn_command(command);
    assert!(next_notice(&socket).starts_with("READY=1\n"));
    socket
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut buf = [0u8; 256];
    assert!(socket.recv(&mut buf).is_err(), "nothing after READY=1");
    server.signal(libc::SIGTERM);
    assert_eq!(next_notice(&socket), "STOPPING=1\n");
    assert!(server.wait_exit(WAIT).success());
    let _ = std::fs::remove_file(&path);
}

/// Runs halley with stderr a file, `JOURNAL_STREAM` naming that file (as systemd
/// names the stream it connects) when `journal`, and returns the file's lines once it
/// has exited (a start that fails: --tls-listen without its pair, after a warning).
fn log_of_a_failed_start(journal: bool) -> Vec<String> {
    let path = scratch(if journal { "journal.log" } else { "plain.log" });
    let file = std::fs::File::create(&path).unwrap();
    let meta = file.metadata().unwrap();
    let mut command = halley();
    if journal {
        command.env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino()));
    }
    let status = command
        .args(["--tls-listen", "127.0.0.1:0", "--log-level", "debug"])
        .stderr(Stdio::from(file))
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(1));
    let lines = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let _ = std::fs::remove_file(&path);
    lines
}

#[test]
fn in_the_journal_lines_carry_their_priority_and_no_timestamp() {
    let lines = log_of_a_failed_start(true);
    assert!(!lines.is_empty());
    for line in &lines {
        let priority = line.strip_prefix('<').and_then(|rest| rest.split_once('>'));
        assert!(
            matches!(priority, Some(("3" | "4" | "6" | "7", _))),
            "no priority: {line:?}"
        );
        assert!(
            !line.contains(" 20") && !line.contains("[20"),
            "a timestamp: {line:?}"
        );
    }
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("<3>") && l.contains("--tls-listen")),
        "{lines:?}"
    );
}

#[test]
fn elsewhere_lines_carry_a_timestamp_and_level() {
    let lines = log_of_a_failed_start(false);
    let error = lines
        .iter()
        .find(|l| l.contains("--tls-listen"))
        .expect("the error");
    assert!(
        error.starts_with("[20") && error.contains(" ERROR "),
        "{error:?}"
    );
}

#[test]
fn a_journal_stream_that_is_not_stderr_is_not_the_journal() {
    // JOURNAL_STREAM inherited by a process whose stderr went elsewhere.
    let path = scratch("moved.log");
    let file = std::fs::File::create(&path).unwrap();
    let output = halley()
        .env("JOURNAL_STREAM", "1:1")
        .args(["--tls-listen", "127.0.0.1:0"])
        .stderr(Stdio::from(file))
        .status()
        .unwrap();
    assert_eq!(output.code(), Some(1));
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("[20"), "{text:?}");
    let _ = std::fs::remove_file(&path);
}

#[test]
fn a_refused_file_is_an_error_in_the_journal() {
    let config = scratch("refused.toml");
    std::fs::write(&config, "histroy = 5\n").unwrap();
    let log = scratch("refused.log");
    let file = std::fs::File::create(&log).unwrap();
    let meta = file.metadata().unwrap();
    let status = halley()
        .env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino()))
        .arg("--config")
        .arg(&config)
        .stderr(Stdio::from(file))
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(2));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.starts_with(&format!(
            "<3>halley: {}, line 1, key histroy: ",
            config.display()
        )),
        "{text:?}"
    );
}

#[test]
fn the_watchdogs_question_is_answered_only_while_every_loop_turns() {
    let config = halley::config::Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        admin_listen: "127.0.0.1:0".parse().unwrap(),
        threads: 2,
        ..halley::config::Config::default()
    };
    let server = halley::server::Server::start(config).unwrap();
    let prober = server.prober();
    assert_eq!(prober.all_answer(WAIT), Ok(()));
    server.shutdown();
    // The loops have exited: none answers, and the watchdog would not be told.
    assert_eq!(
        prober.all_answer(Duration::from_millis(100)),
        Err("0 of 3 event loops answered within 100ms".to_string())
    );
}
