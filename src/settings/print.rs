//! Settings written out as TOML that `--config` reads back: the settings in force
//! (`halley --print-config`), each with where it came from, and the commented file the
//! Debian package installs as `/etc/halley/halley.toml`, every key with its help.

use std::fmt::Write;

use clap::{Arg, Command};

use super::file::{setting_arg, settings_args, takes_list};
use super::{Origin, Settings};

/// Lines of help in the commented file are wrapped at this width.
const WIDTH: usize = 88;

/// The settings in force, one key per line, each followed by where it came from. A
/// setting left unset whose value the server works out (`threads`: the cores) is
/// printed with the value `computed` gives it.
pub fn in_force(settings: &Settings, command: &Command, computed: &[(&str, String)]) -> String {
    let mut out = String::from(
        "# The settings in force (halley --print-config), as a file --config reads.\n",
    );
    if let Some(path) = &settings.file {
        let _ = writeln!(out, "# Read from {} and the command line.", path.display());
    }
    for setting in &settings.settings {
        let Some(arg) = setting_arg(command, &setting.key) else {
            continue;
        };
        let from = match &setting.origin {
            Origin::Unset => {
                let note = default_text(arg);
                match computed.iter().find(|(key, _)| *key == setting.key) {
                    Some((_, value)) => {
                        let value = toml_value(arg, std::slice::from_ref(value));
                        let why = note.map(|n| format!(": {n}")).unwrap_or_default();
                        let _ = writeln!(out, "{} = {value}  # default{why}", setting.key);
                    }
                    None => {
                        let why = note.map(|n| format!(" (default: {n})")).unwrap_or_default();
                        let _ = writeln!(out, "# {} is not set{why}", setting.key);
                    }
                }
                continue;
            }
            Origin::CommandLine => "the command line".to_string(),
            Origin::File { line } => format!("line {line} of the file"),
            Origin::Default => "default".to_string(),
        };
        let _ = writeln!(
            out,
            "{} = {}  # {from}",
            setting.key,
            toml_value(arg, &setting.values)
        );
    }
    out
}

/// A setting the commented file sets rather than shows: its key, its value, and a
/// line saying why.
pub struct Active<'a> {
    pub key: &'a str,
    pub value: &'a str,
    pub why: &'a str,
}

/// The commented configuration file: a header, then every setting with its help and
/// its default commented out. Keys in `active` are written uncommented with the value
/// given (the package's `data-dir`).
pub fn commented_file(command: &Command, active: &[Active]) -> String {
    let mut out = String::from(
        "# Halley's settings, read by `halley --config FILE` (the service reads this file).\n\
         # Every key is the flag of the same name (`man halley`, `halley --help`); a flag\n\
         # given on the command line wins over the file. Each setting below shows its\n\
         # default, commented out: remove the `#` before the key and change the value.\n\
         # Durations and sizes are strings with their unit (\"30s\", \"64KiB\").\n\
         # `halley --config FILE --print-config` shows what is in force, line by line.\n",
    );
    for arg in settings_args(command) {
        let key = arg.get_long().unwrap_or_default();
        out.push('\n');
        for line in wrap(&help_of(arg), WIDTH - 2) {
            let _ = writeln!(out, "# {line}");
        }
        if let Some(set) = active.iter().find(|set| set.key == key) {
            for line in wrap(set.why, WIDTH - 2) {
                let _ = writeln!(out, "# {line}");
            }
            let _ = writeln!(out, "{key} = {}", toml_value(arg, &[set.value.to_string()]));
            continue;
        }
        let defaults: Vec<String> = arg
            .get_default_values()
            .iter()
            .map(|v| v.to_string_lossy().into_owned())
            .collect();
        if defaults.is_empty() && takes_list(arg) {
            // An empty list is what a list left out means.
            let _ = writeln!(out, "#{key} = []");
        } else if defaults.is_empty() {
            let _ = writeln!(out, "# (not set by default)");
            // The value's name stands in for it (`N`, `"FILE"`): there is no default.
            let placeholder = arg
                .get_value_names()
                .and_then(|names| names.first())
                .map(|name| name.to_string())
                .unwrap_or_default();
            let shown = if is_count(arg) {
                placeholder
            } else {
                toml_value(arg, &[placeholder])
            };
            let _ = writeln!(out, "#{key} = {shown}");
        } else {
            let _ = writeln!(out, "#{key} = {}", toml_value(arg, &defaults));
        }
    }
    out
}

/// A value as TOML: an integer for a count (`N`), a string otherwise, a list for a
/// flag that takes one.
fn toml_value(arg: &Arg, values: &[String]) -> String {
    let one = |text: &String| match text.parse::<i64>() {
        Ok(number) if is_count(arg) => number.to_string(),
        _ => toml::Value::String(text.clone()).to_string(),
    };
    if takes_list(arg) {
        format!(
            "[{}]",
            values.iter().map(one).collect::<Vec<_>>().join(", ")
        )
    } else {
        values.first().map(one).unwrap_or_default()
    }
}

/// Whether the flag takes a count (`N`), written as a TOML integer.
fn is_count(arg: &Arg) -> bool {
    arg.get_value_names()
        .is_some_and(|names| names.iter().any(|n| n.as_str() == "N"))
}

fn help_of(arg: &Arg) -> String {
    arg.get_long_help()
        .or_else(|| arg.get_help())
        .map(|help| help.to_string())
        .unwrap_or_default()
}

/// What a help's `[default: …]` says, for a setting with no default value.
fn default_text(arg: &Arg) -> Option<String> {
    let help = help_of(arg);
    help.split_once("[default: ")
        .and_then(|(_, rest)| rest.split_once(']'))
        .map(|(note, _)| note.to_string())
}

/// Splits `text` into lines of at most `width` characters, at spaces.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}
