//! Channel names: 1 to 128 bytes of `A-Z a-z 0-9 _ . : @ -` (PROTOCOL.md). No other
//! byte is allowed, so a name never needs escaping in JSON, a header or a file name
//! (`.` and `..` are ordinary names; storage maps them safely, not the URL layer).

/// Longest channel name, in bytes.
pub const MAX_NAME_BYTES: usize = 128;

/// Whether `name` is a channel name the protocol allows.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_BYTES
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'@' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_protocol() {
        let long_ok = "a".repeat(128);
        let too_long = "a".repeat(129);
        let table: &[(&str, bool)] = &[
            ("live", true),
            ("A-z_0.9:@", true),
            (".", true),
            ("..", true),
            ("a:b", true),
            (&long_ok, true),
            (&too_long, false),
            ("", false),
            ("a/b", false),
            ("a,b", false),
            ("a b", false),
            ("é", false),
            ("a%20", false),
            ("a\0", false),
        ];
        for (name, ok) in table {
            assert_eq!(is_valid_name(name), *ok, "{name:?}");
        }
    }
}
