use std::io::Write;

use clap::CommandFactory;

use super::*;
use crate::cli::Args;

/// A value other than the default for every setting, as a file would write it.
const SAMPLES: &[(&str, &str)] = &[
    ("listen", "\"127.0.0.1:9080\""),
    ("admin-listen", "\"127.0.0.1:9081\""),
    ("threads", "3"),
    ("history", "50"),
    ("max-message", "\"1MiB\""),
    ("max-channels", "4"),
    ("poll-timeout", "\"10s\""),
    ("heartbeat", "\"5s\""),
    ("stream-max-bytes", "\"2MiB\""),
    ("stream-max-age", "\"60s\""),
    ("sse-retry", "\"500ms\""),
    ("allow-origin", "\"https://example.com\""),
    ("client-publish", "\"chat.*\""),
    ("client-publish-rate", "5"),
    ("token-key-file", "\"/etc/halley/token.pem\""),
    ("public-channels", "\"news.*\""),
    ("admin-token-file", "\"/etc/halley/admin-token\""),
    ("tls-listen", "\"0.0.0.0:8443\""),
    ("tls-cert", "\"/etc/halley/cert.pem\""),
    ("tls-key", "\"/etc/halley/key.pem\""),
    ("admin-tls-cert", "\"/etc/halley/admin-cert.pem\""),
    ("admin-tls-key", "\"/etc/halley/admin-key.pem\""),
    ("header-timeout", "\"3s\""),
    ("max-head", "\"16KiB\""),
    ("keepalive-timeout", "\"15s\""),
    ("defer-accept", "\"0s\""),
    ("max-pending", "\"1MiB\""),
    ("write-timeout", "\"30s\""),
    ("max-conns", "50000"),
    ("admin-max-conns", "64"),
    ("redis", "\"redis://127.0.0.1:6379/0\""),
    ("redis-timeout", "\"500ms\""),
    ("redis-replicas", "1"),
    ("data-dir", "\"/var/lib/halley\""),
    ("fsync", "\"batch\""),
    ("fsync-interval", "\"200ms\""),
    ("retain", "[100000, \"24h\"]"),
    ("segment-size", "\"16MiB\""),
    ("log-level", "\"debug\""),
];

/// A file with `text`, removed when dropped.
struct TempFile(std::path::PathBuf);

impl TempFile {
    fn new(text: &str) -> TempFile {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("halley-settings-{}-{n}.toml", std::process::id()));
        std::fs::File::create(&path)
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        TempFile(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn setting<'s>(settings: &'s Settings, key: &str) -> &'s Setting {
    settings.settings.iter().find(|s| s.key == key).unwrap()
}

#[test]
fn the_samples_cover_every_setting() {
    let command = Args::command();
    let keys: Vec<&str> = file::settings_args(&command)
        .filter_map(|arg| arg.get_long())
        .collect();
    let sampled: Vec<&str> = SAMPLES.iter().map(|(key, _)| *key).collect();
    assert_eq!(keys, sampled, "every setting, in --help's order");
}

#[test]
fn every_key_of_a_file_changes_its_setting_and_the_config() {
    let defaults = Settings::from_command_line(["halley"]).unwrap();
    let default_args = format!("{:?}", defaults.args);
    let default_config = format!("{:?}", defaults.args.to_config());
    for (key, value) in SAMPLES {
        let file = TempFile::new(&format!("# one key\n{key} = {value}\n"));
        let settings = Settings::from_command_line(["halley", "--config", file.path()])
            .unwrap_or_else(|e| panic!("{key} = {value}: {e}"));
        let read = setting(&settings, key);
        assert_eq!(read.origin, Origin::File { line: 2 }, "{key}");
        let written: toml::Value = toml::from_str::<toml::Table>(&format!("v = {value}"))
            .unwrap()
            .remove("v")
            .unwrap();
        let expected: Vec<String> = match written {
            toml::Value::Array(items) => items.iter().map(scalar_text).collect(),
            one => vec![scalar_text(&one)],
        };
        assert_eq!(read.values, expected, "{key}");
        assert_ne!(format!("{:?}", settings.args), default_args, "{key}");
        // The log level is the binary's (main.rs starts the logger with it), not the
        // server's; tests/config_file.rs sees it take effect.
        if *key != "log-level" {
            assert_ne!(
                format!("{:?}", settings.args.to_config()),
                default_config,
                "{key} does not reach the Config"
            );
        }
        for other in &settings.settings {
            if other.key != *key {
                assert_eq!(
                    other,
                    setting(&defaults, &other.key),
                    "{key} moved {}",
                    other.key
                );
            }
        }
    }
}

fn scalar_text(value: &toml::Value) -> String {
    match value {
        toml::Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

#[test]
fn a_flag_on_the_command_line_wins_over_the_file() {
    let file = TempFile::new("history = 50\npoll-timeout = \"10s\"\nretain = [1, \"1h\"]\n");
    let settings = Settings::from_command_line([
        "halley",
        "--history",
        "7",
        "--config",
        file.path(),
        "--retain",
        "5",
    ])
    .unwrap();
    assert_eq!(settings.args.history, 7);
    assert_eq!(setting(&settings, "history").origin, Origin::CommandLine);
    assert_eq!(
        settings.args.poll_timeout,
        std::time::Duration::from_secs(10)
    );
    assert_eq!(
        setting(&settings, "poll-timeout").origin,
        Origin::File { line: 2 }
    );
    // A list on the command line replaces the file's, not adds to it.
    assert_eq!(setting(&settings, "retain").values, ["5"]);
    assert_eq!(setting(&settings, "retain").origin, Origin::CommandLine);
    assert_eq!(setting(&settings, "listen").origin, Origin::Default);
    assert_eq!(setting(&settings, "redis").origin, Origin::Unset);
}

#[test]
fn a_bad_file_is_refused_before_anything_else() {
    let file = TempFile::new("history = 5\nhistroy = 5\n");
    match Settings::from_command_line(["halley", "--config", file.path()]) {
        Err(SettingsError::File(e)) => {
            assert_eq!(e.line, Some(2));
            assert_eq!(e.key.as_deref(), Some("histroy"));
        }
        other => panic!("{other:?}"),
    }
    // A bad flag is clap's to report, with its usage.
    match Settings::from_command_line(["halley", "--histroy", "5"]) {
        Err(SettingsError::Flags(e)) => {
            assert_eq!(e.kind(), clap::error::ErrorKind::UnknownArgument)
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn printed_settings_read_back_as_the_same_settings() {
    let file = TempFile::new("history = 50\nretain = [100, \"24h\"]\nallow-origin = \"none\"\n");
    let command = Args::command();
    let first = Settings::from_command_line([
        "halley",
        "--config",
        file.path(),
        "--poll-timeout",
        "9s",
        "--data-dir",
        "/var/lib/halley dir \"quoted\"",
    ])
    .unwrap();
    let threads = first.args.to_config().threads.to_string();
    let printed = print::in_force(&first, &command, &[("threads", threads.clone())]);
    assert!(
        printed.contains("history = 50  # line 1 of the file\n"),
        "{printed}"
    );
    assert!(
        printed.contains("poll-timeout = \"9s\"  # the command line\n"),
        "{printed}"
    );
    assert!(
        printed.contains("listen = \"0.0.0.0:8080\"  # default\n"),
        "{printed}"
    );
    assert!(printed.contains("# redis is not set\n"), "{printed}");
    let threads_line = format!("threads = {threads}  # default: the number of cores\n");
    assert!(printed.contains(&threads_line), "{printed}");
    assert!(
        printed.contains("# max-conns is not set (default: from the descriptor limit)\n"),
        "{printed}"
    );
    let again = TempFile::new(&printed);
    let second = Settings::from_command_line(["halley", "--config", again.path()]).unwrap();
    assert_eq!(
        format!("{:?}", first.args.to_config()),
        format!("{:?}", second.args.to_config())
    );
    for (a, b) in first.settings.iter().zip(&second.settings) {
        if a.key == "threads" {
            // Printed as worked out, so the file read back sets it.
            assert_eq!(b.values, std::slice::from_ref(&threads));
        } else {
            assert_eq!((&a.key, &a.values), (&b.key, &b.values));
        }
    }
}

#[test]
fn the_commented_file_names_every_key_and_changes_nothing_but_its_active_lines() {
    let command = Args::command();
    let data_dir = print::Active {
        key: "data-dir",
        value: "/var/lib/halley",
        why: "Set by the package.",
    };
    let text = print::commented_file(&command, &[data_dir]);
    assert!(text.contains("# Set by the package.\ndata-dir = \"/var/lib/halley\"\n"));
    assert!(text.contains("\n#threads = N\n"), "{text}");
    assert!(text.contains("\n#tls-cert = \"FILE\"\n"), "{text}");
    assert!(text.contains("\n#retain = []\n"), "{text}");
    for arg in file::settings_args(&command) {
        let key = arg.get_long().unwrap();
        let shown = text.lines().any(|line| {
            line.starts_with(&format!("#{key} = ")) || line.starts_with(&format!("{key} = "))
        });
        assert!(shown, "{key} is not in the file");
    }
    let as_is = TempFile::new(&text);
    let read = Settings::from_command_line(["halley", "--config", as_is.path()]).unwrap();
    let defaults = Settings::from_command_line(["halley"]).unwrap();
    for (a, b) in read.settings.iter().zip(&defaults.settings) {
        if a.key == "data-dir" {
            assert_eq!(a.values, ["/var/lib/halley"]);
        } else {
            assert_eq!(a.values, b.values, "{}", a.key);
        }
    }
    // Every commented default, uncommented, is the default: the file does not lie.
    let uncommented: String = text
        .lines()
        .filter(|line| line.starts_with('#') && line.contains(" = ") && !line.starts_with("# "))
        .map(|line| format!("{}\n", &line[1..]))
        .filter(|line| {
            let key = line.split(' ').next().unwrap();
            defaults
                .settings
                .iter()
                .any(|s| s.key == key && s.origin == Origin::Default)
                || line.ends_with(" = []\n")
        })
        .collect();
    assert!(uncommented.lines().count() >= 25, "{uncommented}");
    let file = TempFile::new(&uncommented);
    let read = Settings::from_command_line(["halley", "--config", file.path()]).unwrap();
    for (a, b) in read.settings.iter().zip(&defaults.settings) {
        assert_eq!(a.values, b.values, "{}", a.key);
    }
}
