use std::path::Path;

use clap::CommandFactory;

use super::*;
use crate::cli::Args;

fn parse_text(text: &str) -> Result<Vec<FileSetting>, FileError> {
    parse(Path::new("/etc/halley/halley.toml"), text, &Args::command())
}

/// The refusal of `text`, as `halley` prints it.
fn refusal(text: &str) -> String {
    parse_text(text).expect_err(text).to_string()
}

#[test]
fn keys_are_read_with_their_lines_and_values_as_the_command_line_gives_them() {
    let settings = parse_text(
        "# a comment\n\npoll-timeout = \"10s\"\nhistory = 50\nretain = [100, \"24h\"]\n",
    )
    .unwrap();
    let line = |key: &str| settings.iter().find(|s| s.key == key).unwrap().clone();
    assert_eq!(line("poll-timeout").values, ["10s"]);
    assert_eq!(line("poll-timeout").line, 3);
    assert_eq!(line("history").values, ["50"]);
    assert_eq!(line("history").line, 4);
    assert_eq!(line("retain").values, ["100", "24h"]);
    assert_eq!(line("retain").line, 5);
}

#[test]
fn an_empty_file_sets_nothing() {
    assert_eq!(parse_text("").unwrap(), []);
    assert_eq!(parse_text("# only comments\n").unwrap(), []);
}

#[test]
fn an_unknown_key_is_refused_with_file_line_and_key() {
    assert_eq!(
        refusal("history = 5\nhistroy = 5\n"),
        "/etc/halley/halley.toml, line 2, key histroy: unknown key; `halley --help` lists the settings (a key is a flag's name without --)"
    );
}

#[test]
fn a_key_spelled_with_underscores_is_refused_with_the_right_spelling() {
    assert_eq!(
        refusal("poll_timeout = \"10s\""),
        "/etc/halley/halley.toml, line 1, key poll_timeout: unknown key; keys are spelled as the flags are: poll-timeout"
    );
}

#[test]
fn flags_that_are_not_settings_are_refused() {
    for key in ["config", "print-config", "help", "version"] {
        assert_eq!(
            refusal(&format!("{key} = \"x\"")),
            format!("/etc/halley/halley.toml, line 1, key {key}: {key} is not a setting; it can only be given on the command line")
        );
    }
}

#[test]
fn a_table_is_an_unknown_key() {
    assert_eq!(
        refusal("history = 5\n[server]\nlisten = \"0.0.0.0:80\"\n"),
        "/etc/halley/halley.toml, line 2, key server: unknown key; `halley --help` lists the settings (a key is a flag's name without --)"
    );
}

#[test]
fn a_bad_value_is_refused_with_the_flags_own_reason() {
    assert_eq!(
        refusal("\npoll-timeout = \"30\""),
        "/etc/halley/halley.toml, line 2, key poll-timeout: \"30\": a duration needs a unit: ms, s, m or h"
    );
    assert_eq!(
        refusal("max-message = \"64KB\""),
        "/etc/halley/halley.toml, line 1, key max-message: \"64KB\": unknown size suffix \"KB\"; use KiB, MiB or GiB (powers of 1024)"
    );
    assert_eq!(
        refusal("listen = \"1.2.3\""),
        "/etc/halley/halley.toml, line 1, key listen: \"1.2.3\": invalid socket address syntax"
    );
    assert_eq!(
        refusal("history = -1"),
        "/etc/halley/halley.toml, line 1, key history: \"-1\": invalid digit found in string"
    );
    assert_eq!(
        refusal("fsync = \"sometimes\""),
        "/etc/halley/halley.toml, line 1, key fsync: \"sometimes\": expected always, batch or never"
    );
    assert_eq!(
        refusal("retain = [\"100\", \"forever\"]"),
        format!(
            "/etc/halley/halley.toml, line 1, key retain: {}",
            crate::storage::retention::Limit::parse("forever").unwrap_err()
        )
    );
}

#[test]
fn a_value_of_the_wrong_type_is_refused() {
    let reason = "durations and sizes are strings with their unit, like \"30s\" or \"64KiB\"";
    for (text, found) in [
        ("poll-timeout = 1.5", "a float"),
        ("history = true", "a boolean"),
        ("listen = 1979-05-27", "a date"),
        ("listen = { host = \"a\" }", "a table"),
        ("retain = [[1]]", "a list"),
    ] {
        let key = text.split(' ').next().unwrap();
        assert_eq!(
            refusal(text),
            format!("/etc/halley/halley.toml, line 1, key {key}: expected a string or an integer, found {found}; {reason}")
        );
    }
    assert_eq!(
        refusal("listen = [\"127.0.0.1:80\"]"),
        "/etc/halley/halley.toml, line 1, key listen: takes one value, not a list"
    );
}

#[test]
fn toml_that_does_not_parse_is_refused_with_its_line() {
    assert_eq!(
        refusal("history = 5\nhistory = 6\n"),
        "/etc/halley/halley.toml, line 2: duplicate key"
    );
    let unterminated = refusal("history = 5\n\nlisten = \"0.0.0.0:80\n");
    assert!(
        unterminated.starts_with("/etc/halley/halley.toml, line 3: "),
        "{unterminated}"
    );
    let no_value = refusal("history =\n");
    assert!(
        no_value.starts_with("/etc/halley/halley.toml, line 1: "),
        "{no_value}"
    );
}

#[test]
fn a_file_that_cannot_be_read_is_named() {
    let error = read(Path::new("/nonexistent/halley.toml"), &Args::command()).unwrap_err();
    assert_eq!(error.line, None);
    assert!(
        error
            .to_string()
            .starts_with("/nonexistent/halley.toml: cannot read it: "),
        "{error}"
    );
}

proptest::proptest! {
    /// Whatever the file holds, reading it gives settings or a refusal, never a panic,
    /// and a refusal names the file.
    #[test]
    fn any_text_is_read_or_refused(text in "(\\PC|\n|=|\"|\\[|\\]|-){0,200}") {
        if let Err(error) = parse_text(&text) {
            proptest::prop_assert!(error.to_string().starts_with("/etc/halley/halley.toml"));
        }
    }

    /// Lines of real keys with values of any kind: read or refused with the line.
    #[test]
    fn known_keys_with_any_values_are_read_or_refused_with_their_line(
        values in proptest::collection::vec("(\\PC|\"){0,20}", 1..6)
    ) {
        let keys = ["history", "poll-timeout", "listen", "retain", "allow-origin", "fsync"];
        let text: String = values
            .iter()
            .zip(keys)
            .map(|(value, key)| format!("{key} = {value}\n"))
            .collect();
        if let Err(error) = parse_text(&text) {
            let line = error.line.expect("a line");
            // An unterminated string is reported where the input ends, after the last line.
            proptest::prop_assert!(line >= 1 && line <= values.len() + 1, "{error}");
        }
    }
}
