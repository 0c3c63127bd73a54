//! JSON string literals safe inside HTML `<script>` elements.
//!
//! Frames are encoded once and sent unchanged on every transport, the forever frame
//! included, so a string is escaped for the strictest of them: besides what JSON
//! requires, `<`, `>` and `&` become `\u003c`, `\u003e`, `\u0026` (no payload can close
//! the script element or open a comment) and U+2028/U+2029 become escapes (they end a
//! line in older JavaScript). The result is still plain JSON.

/// The bytes `push_string` may have to escape: controls, DEL, `"`, `\`, `<`, `>`, `&`,
/// and 0xE2 (the first byte of U+2028 and U+2029). Every other byte is copied as it
/// is, so the common case is one table look-up per byte.
const SPECIAL: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 0x20 {
        table[byte] = true;
        byte += 1;
    }
    table[0x7f] = true;
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table[b'<' as usize] = true;
    table[b'>' as usize] = true;
    table[b'&' as usize] = true;
    table[0xE2] = true;
    table
};

/// Appends `text` as a quoted JSON string literal.
pub fn push_string(out: &mut Vec<u8>, text: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.reserve(text.len() + 2);
    out.push(b'"');
    let bytes = text.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let byte = bytes[i];
        if !SPECIAL[byte as usize] {
            i += 1;
            continue;
        }
        let escape: Option<&[u8]> = match byte {
            b'"' => Some(b"\\\""),
            b'\\' => Some(b"\\\\"),
            b'\n' => Some(b"\\n"),
            b'\r' => Some(b"\\r"),
            b'\t' => Some(b"\\t"),
            b'<' => Some(b"\\u003c"),
            b'>' => Some(b"\\u003e"),
            b'&' => Some(b"\\u0026"),
            // U+2028 and U+2029 are E2 80 A8 / E2 80 A9 in UTF-8.
            0xE2 if bytes.get(i + 1) == Some(&0x80)
                && matches!(bytes.get(i + 2), Some(0xA8 | 0xA9)) =>
            {
                Some(if bytes[i + 2] == 0xA8 {
                    b"\\u2028"
                } else {
                    b"\\u2029"
                })
            }
            _ => None,
        };
        if let Some(escape) = escape {
            out.extend_from_slice(&bytes[start..i]);
            out.extend_from_slice(escape);
            i += if byte == 0xE2 { 3 } else { 1 };
            start = i;
        } else if byte < 0x20 || byte == 0x7f {
            out.extend_from_slice(&bytes[start..i]);
            out.extend_from_slice(b"\\u00");
            out.push(HEX[(byte >> 4) as usize]);
            out.push(HEX[(byte & 0xf) as usize]);
            i += 1;
            start = i;
        } else {
            i += 1;
        }
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quoted(text: &str) -> String {
        let mut out = Vec::new();
        push_string(&mut out, text);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn escapes_what_json_and_script_need() {
        let table = [
            ("plain", r#""plain""#),
            ("a\"b\\c", r#""a\"b\\c""#),
            ("line\nnext\r\t", r#""line\nnext\r\t""#),
            ("</script><!--", r#""\u003c/script\u003e\u003c!--""#),
            ("a&b", r#""a\u0026b""#),
            ("\u{2028}\u{2029}", r#""\u2028\u2029""#),
            ("\u{1}\u{7f}", r#""\u0001\u007f""#),
            ("héllo ✓ 😀", "\"héllo ✓ 😀\""),
            ("\u{2027}", "\"\u{2027}\""),
        ];
        for (input, expected) in table {
            assert_eq!(quoted(input), expected, "{input:?}");
        }
    }

    #[test]
    fn output_parses_back_as_json() {
        for input in [
            "",
            "x</script>y",
            "\u{0}\u{1f}",
            "\u{2028}",
            "tab\tquote\"",
            "ünï",
        ] {
            let parsed: String = serde_json::from_str(&quoted(input)).unwrap();
            assert_eq!(parsed, input);
        }
    }

    proptest::proptest! {
        #[test]
        fn any_text_round_trips_and_stays_script_safe(input in "\\PC*|[\\x00-\\x7f\u{2026}-\u{202a}<>&]*") {
            let out = quoted(&input);
            let parsed: String = serde_json::from_str(&out).unwrap();
            proptest::prop_assert_eq!(&parsed, &input);
            let inner = &out[1..out.len() - 1];
            proptest::prop_assert!(
                !inner.contains(['<', '>', '&', '\u{2028}', '\u{2029}', '\u{7f}'])
                    && !inner.chars().any(|c| c < ' '),
                "{:?}", out
            );
        }
    }
}
