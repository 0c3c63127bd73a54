//! `--config FILE` on the real binary: a file's settings take effect on real sockets,
//! a flag on the command line wins over the file, a bad file stops the start with its
//! file, line and key, and `--print-config` says what is in force.

mod util;

use std::time::{Duration, Instant};

use util::binary::{self, spawn_command};
use util::Client;

/// A file holding `text` in the test's own scratch directory.
fn config_file(name: &str, text: &str) -> std::path::PathBuf {
    let path = util::scratch("config", name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_files_settings_take_effect_and_flags_win_over_them() {
    let path = config_file(
        "effect.toml",
        "# ports the kernel picks\nlisten = \"127.0.0.1:0\"\nadmin-listen = \"127.0.0.1:0\"\n\
         threads = 1\npoll-timeout = \"300ms\"\nhistory = 2\nmax-message = \"10KiB\"\n",
    );
    let mut command = binary::command();
    command.arg("--config").arg(&path).args(["--history", "3"]);
    let server = spawn_command(command);
    assert!(
        server.start_line.contains("(1 loops"),
        "{}",
        server.start_line
    );
    // max-message from the file: 10 KiB is the largest publish.
    let publish = |body: &str| {
        Client::connect(server.admin).exchange(
            format!(
                "POST /pub/news HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        )
    };
    assert_eq!(publish(&"x".repeat(10 * 1024 + 1)).status, 413);
    for n in 1..=4 {
        assert_eq!(publish(&format!("event {n}")).status, 201);
    }
    // history from the command line (3), not the file (2): ids 2 to 4 are kept.
    let frames = Client::connect(server.sub)
        .exchange(b"GET /sub/news?t=poll&since=0 HTTP/1.1\r\nHost: t\r\n\r\n")
        .json();
    let ids: Vec<u64> = frames["frames"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["id"].as_u64())
        .collect();
    assert_eq!(ids, [2, 3, 4], "{frames}");
    // poll-timeout from the file: a long-poll with nothing new is answered empty,
    // long before the default's 30 s.
    let asked = Instant::now();
    let empty = Client::connect(server.sub)
        .exchange(b"GET /sub/news?since=4 HTTP/1.1\r\nHost: t\r\n\r\n")
        .json();
    assert!(asked.elapsed() >= Duration::from_millis(250));
    assert_eq!(empty["frames"].as_array().unwrap().len(), 0, "{empty}");
}

#[test]
fn a_bad_file_stops_the_start_naming_file_line_and_key() {
    let path = config_file("bad.toml", "history = 5\n\npoll-timeout = \"30\"\n");
    let output = binary::command()
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        format!(
            "halley: {}, line 3, key poll-timeout: \"30\": a duration needs a unit: ms, s, m or h\n",
            path.display()
        )
    );
    let missing = binary::command()
        .args(["--config", "/nonexistent/halley.toml"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr)
        .starts_with("halley: /nonexistent/halley.toml: cannot read it: "));
}

#[test]
fn print_config_shows_each_setting_and_where_it_came_from() {
    let path = config_file("print.toml", "history = 50\nretain = [100, \"24h\"]\n");
    let output = binary::command()
        .arg("--config")
        .arg(&path)
        .args(["--print-config", "--poll-timeout", "9s"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let printed = String::from_utf8(output.stdout).unwrap();
    for line in [
        "history = 50  # line 1 of the file",
        "retain = [\"100\", \"24h\"]  # line 2 of the file",
        "poll-timeout = \"9s\"  # the command line",
        "listen = \"0.0.0.0:8080\"  # default",
        "# data-dir is not set",
    ] {
        assert!(
            printed.lines().any(|l| l == line),
            "no {line:?} in\n{printed}"
        );
    }
}

#[test]
fn the_files_log_level_is_the_loggers() {
    // A start that fails (TLS without its pair) logs an error; at `off` it does not.
    let quiet = config_file(
        "quiet.toml",
        "log-level = \"off\"\ntls-listen = \"127.0.0.1:0\"\n",
    );
    let loud = config_file("loud.toml", "tls-listen = \"127.0.0.1:0\"\n");
    let run = |path: &std::path::Path| {
        binary::command()
            .arg("--config")
            .arg(path)
            .output()
            .unwrap()
    };
    let (quiet, loud) = (run(&quiet), run(&loud));
    assert_eq!(quiet.status.code(), Some(1));
    assert_eq!(loud.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&quiet.stderr), "");
    assert!(
        String::from_utf8_lossy(&loud.stderr).contains("--tls-listen"),
        "{}",
        String::from_utf8_lossy(&loud.stderr)
    );
}
