//! `--config FILE`: reads the TOML file and checks every key against the flags, so
//! that a file is refused before anything starts, naming its line and key. A key is a
//! flag's long name (`poll-timeout` for `--poll-timeout`); its value is checked by the
//! flag's own parser, so a file accepts exactly what the command line does.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use clap::{Arg, ArgAction, Command};
use toml::Spanned;

/// Flags that are not settings, and so not keys of a file.
pub const NOT_KEYS: &[&str] = &["config", "print-config", "help", "version"];

/// One key of the file, checked: the flag it sets, its values as the command line
/// would give them, and the line it is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSetting {
    pub key: String,
    /// The flag's id in clap (`poll_timeout` for `poll-timeout`).
    pub id: String,
    pub values: Vec<String>,
    pub line: usize,
}

/// A file that cannot be used: which file, and where and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    pub path: PathBuf,
    /// The line (from 1), when the fault is on one.
    pub line: Option<usize>,
    /// The key, when the fault is in one.
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(line) = self.line {
            write!(f, ", line {line}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ", key {key}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for FileError {}

/// Reads `path` and checks it against `command`'s flags.
pub fn read(path: &Path, command: &Command) -> Result<Vec<FileSetting>, FileError> {
    let text = std::fs::read_to_string(path).map_err(|e| FileError {
        path: path.to_path_buf(),
        line: None,
        key: None,
        message: format!("cannot read it: {e}"),
    })?;
    parse(path, &text, command)
}

/// Checks the TOML `text` (read from `path`, named in errors) against `command`'s
/// flags: every key must be a flag's long name, every value one the flag's parser takes.
pub fn parse(path: &Path, text: &str, command: &Command) -> Result<Vec<FileSetting>, FileError> {
    let fail = |line: Option<usize>, key: Option<&str>, message: String| FileError {
        path: path.to_path_buf(),
        line,
        key: key.map(str::to_string),
        message,
    };
    type Table = BTreeMap<Spanned<String>, Spanned<toml::Value>>;
    let table: Table = toml::from_str(text).map_err(|e| {
        let line = e.span().map(|span| line_of(text, span.start));
        fail(line, None, e.message().trim().to_string())
    })?;
    let mut keys: Vec<_> = table.into_iter().collect();
    keys.sort_by_key(|(key, _)| key.span().start);
    let mut settings = Vec::with_capacity(keys.len());
    for (key, value) in keys {
        let line = line_of(text, key.span().start);
        let name = key.get_ref().as_str();
        let at = |message: String| fail(Some(line), Some(name), message);
        let arg = setting_arg(command, name).ok_or_else(|| at(unknown_key(command, name)))?;
        let values = values_of(arg, value.get_ref()).map_err(at)?;
        for one in &values {
            check_value(command, arg, one).map_err(at)?;
        }
        settings.push(FileSetting {
            key: name.to_string(),
            id: arg.get_id().to_string(),
            values,
            line,
        });
    }
    Ok(settings)
}

/// The flag a key names, if it is a setting.
pub fn setting_arg<'c>(command: &'c Command, key: &str) -> Option<&'c Arg> {
    settings_args(command).find(|arg| arg.get_long() == Some(key))
}

/// Every flag that is a setting (a key of the file), in the order `--help` lists them.
pub fn settings_args(command: &Command) -> impl Iterator<Item = &Arg> {
    command
        .get_arguments()
        .filter(|arg| arg.get_long().is_some_and(|long| !NOT_KEYS.contains(&long)))
}

/// Whether the flag takes a list (it may be given more than once).
pub fn takes_list(arg: &Arg) -> bool {
    matches!(arg.get_action(), ArgAction::Append)
}

fn unknown_key(command: &Command, key: &str) -> String {
    let dashed = key.replace('_', "-");
    if NOT_KEYS.contains(&key) {
        format!("{key} is not a setting; it can only be given on the command line")
    } else if dashed != key && setting_arg(command, &dashed).is_some() {
        format!("unknown key; keys are spelled as the flags are: {dashed}")
    } else {
        "unknown key; `halley --help` lists the settings (a key is a flag's name without --)"
            .to_string()
    }
}

/// The value as the command line would give it: a string or an integer, or for a flag
/// that takes a list, an array of them.
fn values_of(arg: &Arg, value: &toml::Value) -> Result<Vec<String>, String> {
    match value {
        toml::Value::Array(items) if takes_list(arg) => items.iter().map(scalar).collect(),
        toml::Value::Array(_) => Err("takes one value, not a list".to_string()),
        one => scalar(one).map(|text| vec![text]),
    }
}

fn scalar(value: &toml::Value) -> Result<String, String> {
    match value {
        toml::Value::String(text) => Ok(text.clone()),
        toml::Value::Integer(number) => Ok(number.to_string()),
        other => Err(format!(
            "expected a string or an integer, found {}; durations and sizes are strings with their unit, like \"30s\" or \"64KiB\"",
            kind_of(other)
        )),
    }
}

fn kind_of(value: &toml::Value) -> &'static str {
    match value {
        toml::Value::String(_) => "a string",
        toml::Value::Integer(_) => "an integer",
        toml::Value::Float(_) => "a float",
        toml::Value::Boolean(_) => "a boolean",
        toml::Value::Datetime(_) => "a date",
        toml::Value::Array(_) => "a list",
        toml::Value::Table(_) => "a table",
    }
}

/// Runs the flag's own parser on one value (a command line of that one flag); its
/// reason when it refuses.
fn check_value(command: &Command, arg: &Arg, value: &str) -> Result<(), String> {
    let flag = format!("--{}={value}", arg.get_long().unwrap_or_default());
    command
        .clone()
        .try_get_matches_from([command.get_name(), flag.as_str()])
        .map(drop)
        .map_err(|e| {
            let reason = std::error::Error::source(&e)
                .map(|source| source.to_string())
                .unwrap_or_else(|| {
                    let rendered = e.render().to_string();
                    let first = rendered.lines().next().unwrap_or_default();
                    first.trim_start_matches("error: ").to_string()
                });
            let quoted = format!("{value:?}");
            if reason.contains(&quoted) {
                reason
            } else {
                format!("{quoted}: {reason}")
            }
        })
}

/// The line (from 1) that byte `offset` of `text` is on.
fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    1 + text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
}

#[cfg(test)]
mod tests;
