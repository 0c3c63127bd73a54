//! The command line as a user meets it: `--help` explains every flag the parser
//! takes, the README's table lists every one, and a duration without a unit is
//! refused with a message that says so. The flags are read from the clap
//! definitions, so a new flag is checked without this file changing.

use std::process::Command;

use clap::CommandFactory;
use halley::cli::Args;

/// Every long flag the parser defines, with its help text.
fn flags() -> Vec<(String, String)> {
    Args::command()
        .get_arguments()
        .filter_map(|arg| {
            let long = arg.get_long()?;
            let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
            Some((format!("--{long}"), help))
        })
        .filter(|(flag, _)| flag != "--help" && flag != "--version")
        .collect()
}

#[test]
fn help_explains_every_flag() {
    let flags = flags();
    assert!(flags.len() >= 26, "{} flags read from clap", flags.len());
    let output = Command::new(env!("CARGO_BIN_EXE_halley"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8(output.stdout).unwrap();
    for (flag, text) in &flags {
        assert!(text.len() > 10, "{flag} has no help text");
        assert!(help.contains(&format!("{flag} ")), "--help lacks {flag}");
    }
}

#[test]
fn the_readme_lists_every_flag() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    for (flag, _) in flags() {
        assert!(
            readme.contains(&format!("| `{flag} ")) || readme.contains(&format!("| `{flag}` ")),
            "README.md's table of flags lacks {flag}"
        );
    }
}

#[test]
fn a_duration_without_a_unit_is_refused() {
    let bad = Command::new(env!("CARGO_BIN_EXE_halley"))
        .args(["--poll-timeout", "30"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unit"));
}
