//! The settings in force: each one from the command line if given there, else from
//! the `--config` file if it has the key, else the flag's default. The flags stay
//! clap's (`cli.rs`); a file's keys are checked by `file.rs` and handed to clap as if
//! they had been written before the command line's own flags, so both go through the
//! same parsers. `print.rs` writes the settings back out as TOML.

pub mod file;
pub mod print;

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;

use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches};

use crate::cli::Args;
use file::{FileError, FileSetting};

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    CommandLine,
    /// The `--config` file, on this line.
    File {
        line: usize,
    },
    Default,
    /// Neither given nor defaulted (an optional setting left out).
    Unset,
}

/// One setting in force: its key (the flag's long name), its values as text (more
/// than one only for a flag that takes a list) and where they came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub key: String,
    pub values: Vec<String>,
    pub origin: Origin,
}

/// The command line and the file, resolved.
#[derive(Debug)]
pub struct Settings {
    /// The flags, as if every key of the file not given on the command line had been.
    pub args: Args,
    /// The `--config` file, if one was named.
    pub file: Option<PathBuf>,
    /// Every setting, in `--help`'s order.
    pub settings: Vec<Setting>,
}

/// Why the settings cannot be resolved.
#[derive(Debug)]
pub enum SettingsError {
    /// The command line (or `--help`, `--version`): clap's own error, printed by clap.
    Flags(clap::Error),
    /// The `--config` file.
    File(FileError),
}

impl fmt::Display for SettingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SettingsError::Flags(e) => write!(f, "{e}"),
            SettingsError::File(e) => write!(f, "{e}"),
        }
    }
}

impl From<clap::Error> for SettingsError {
    fn from(e: clap::Error) -> Self {
        SettingsError::Flags(e)
    }
}

impl From<FileError> for SettingsError {
    fn from(e: FileError) -> Self {
        SettingsError::File(e)
    }
}

impl Settings {
    /// Resolves a command line (`argv[0]` first, as `std::env::args_os` gives it).
    pub fn from_command_line<I, T>(argv: I) -> Result<Settings, SettingsError>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString>,
    {
        let mut argv: Vec<OsString> = argv.into_iter().map(Into::into).collect();
        if argv.is_empty() {
            argv.push("halley".into());
        }
        let command = Args::command();
        let given = command.clone().try_get_matches_from(&argv)?;
        let path = given.get_one::<PathBuf>("config").cloned();
        let from_file = match &path {
            Some(path) => file::read(path, &command)?,
            None => Vec::new(),
        };
        let on_command_line = |id: &str| given.value_source(id) == Some(ValueSource::CommandLine);
        let mut merged = vec![argv[0].clone()];
        for setting in &from_file {
            if on_command_line(&setting.id) {
                continue;
            }
            for value in &setting.values {
                merged.push(format!("--{}={value}", setting.key).into());
            }
        }
        merged.extend(argv[1..].iter().cloned());
        let matches = command.clone().try_get_matches_from(merged)?;
        let args = Args::from_arg_matches(&matches)?;
        let settings = file::settings_args(&command)
            .map(|arg| {
                let id = arg.get_id().as_str();
                let values: Vec<String> = matches
                    .get_raw(id)
                    .map(|raw| raw.map(|v| v.to_string_lossy().into_owned()).collect())
                    .unwrap_or_default();
                let key = arg.get_long().unwrap_or(id).to_string();
                let origin = origin(on_command_line(id), &from_file, &key, &values);
                Setting {
                    key,
                    values,
                    origin,
                }
            })
            .collect();
        Ok(Settings {
            args,
            file: path,
            settings,
        })
    }
}

fn origin(on_command_line: bool, file: &[FileSetting], key: &str, values: &[String]) -> Origin {
    if on_command_line {
        Origin::CommandLine
    } else if let Some(setting) = file.iter().find(|s| s.key == key) {
        Origin::File { line: setting.line }
    } else if values.is_empty() {
        Origin::Unset
    } else {
        Origin::Default
    }
}

#[cfg(test)]
mod tests;
