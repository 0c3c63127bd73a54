//! The request target: its path and query, percent-decoding, and query parameters.
//! Origin form (`/sub/a?t=sse`) is what browsers send; absolute form
//! (`http://host/sub/a`), which HTTP/1.1 servers must accept, is reduced to it.

use std::borrow::Cow;

/// Why a target cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetError {
    /// Not origin or absolute form, a bad `%` escape, or not UTF-8 once decoded.
    Malformed,
}

/// Splits a raw target into (path, query); the query excludes `?` and any fragment.
pub fn split(raw: &[u8]) -> Result<(&str, &str), TargetError> {
    let raw = std::str::from_utf8(raw).map_err(|_| TargetError::Malformed)?;
    let origin_form = if raw.starts_with('/') {
        raw
    } else if let Some(rest) = raw
        .strip_prefix("http://")
        .or_else(|| raw.strip_prefix("https://"))
    {
        match rest.find('/') {
            Some(i) => &rest[i..],
            None => "/",
        }
    } else {
        return Err(TargetError::Malformed);
    };
    let without_fragment = origin_form.split('#').next().unwrap_or("");
    Ok(match without_fragment.split_once('?') {
        Some((path, query)) => (path, query),
        None => (without_fragment, ""),
    })
}

/// Percent-decodes `input`, borrowing it when it has nothing to decode (the usual
/// case: no allocation); `+` is decoded as a space only when `plus_is_space`.
pub fn decode(input: &str, plus_is_space: bool) -> Result<Cow<'_, str>, TargetError> {
    let escaped = |b: &u8| *b == b'%' || (plus_is_space && *b == b'+');
    if !input.as_bytes().iter().any(escaped) {
        return Ok(Cow::Borrowed(input));
    }
    let bytes = input.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3).ok_or(TargetError::Malformed)?;
                let hi = hex_value(hex[0]).ok_or(TargetError::Malformed)?;
                let lo = hex_value(hex[1]).ok_or(TargetError::Malformed)?;
                decoded.push(hi << 4 | lo);
                i += 3;
            }
            b'+' if plus_is_space => {
                decoded.push(b' ');
                i += 1;
            }
            other => {
                decoded.push(other);
                i += 1;
            }
        }
    }
    String::from_utf8(decoded)
        .map(Cow::Owned)
        .map_err(|_| TargetError::Malformed)
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// The `key=value` pairs of a query, raw (not yet decoded); a key without `=` has an
/// empty value.
pub fn pairs(query: &str) -> impl Iterator<Item = (&str, &str)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_table() {
        let table: &[(&str, Option<(&str, &str)>)] = &[
            ("/sub/a?t=sse", Some(("/sub/a", "t=sse"))),
            ("/sub/a", Some(("/sub/a", ""))),
            ("/sub/a?", Some(("/sub/a", ""))),
            ("/sub/a?x#frag", Some(("/sub/a", "x"))),
            ("http://h:8080/sub/a?t=poll", Some(("/sub/a", "t=poll"))),
            ("https://h", Some(("/", ""))),
            ("*", None),
            ("sub/a", None),
        ];
        for (raw, expected) in table {
            assert_eq!(split(raw.as_bytes()).ok(), *expected, "{raw}");
        }
    }

    #[test]
    fn decoding() {
        let table: &[(&str, bool, Option<&str>)] = &[
            ("plain", false, Some("plain")),
            ("a%2Cb", false, Some("a,b")),
            ("a%2cb", false, Some("a,b")),
            ("a+b", true, Some("a b")),
            ("a+b", false, Some("a+b")),
            ("%C3%A9", false, Some("é")),
            ("%", false, None),
            ("%4", false, None),
            ("%zz", false, None),
            ("%FF", false, None),
        ];
        for (input, plus, expected) in table {
            let got = decode(input, *plus).ok();
            assert_eq!(got.as_deref(), *expected, "{input}");
            let borrowed = matches!(decode(input, *plus), Ok(Cow::Borrowed(_)));
            assert_eq!(borrowed, expected == &Some(*input), "{input}: borrowed");
        }
    }

    #[test]
    fn query_pairs() {
        let got: Vec<_> = pairs("t=sse&since=4,0&&flag&callback=").collect();
        assert_eq!(
            got,
            [
                ("t", "sse"),
                ("since", "4,0"),
                ("flag", ""),
                ("callback", "")
            ]
        );
    }
}
