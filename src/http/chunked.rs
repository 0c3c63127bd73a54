//! Decoding a `Transfer-Encoding: chunked` request body (publishers may stream their
//! body, as `curl -T -` does). The whole body is in the buffer before it is used, so
//! this is a check-then-decode over a slice, bounded by the largest body allowed.

/// The state of a chunked body in the bytes received so far.
#[derive(Debug, PartialEq, Eq)]
pub enum Chunked {
    /// More bytes are needed.
    Partial,
    /// The decoded body, and how many bytes of the buffer it took.
    Complete { body: Vec<u8>, consumed: usize },
}

/// Why a chunked body was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkedError {
    /// Not chunked syntax.
    Malformed,
    /// The decoded body would pass the limit.
    TooLarge,
}

/// Most bytes of a chunk-size line or trailer line, extensions included.
const MAX_LINE: usize = 1024;

/// Decodes the chunked body at the start of `buf`, refusing one over `max_body` bytes.
pub fn decode(buf: &[u8], max_body: usize) -> Result<Chunked, ChunkedError> {
    let mut body = Vec::new();
    let mut at = 0;
    loop {
        let Some(line) = line_at(buf, at)? else {
            return Ok(Chunked::Partial);
        };
        let size_text = line.split(|&b| b == b';').next().unwrap_or(b"");
        let size_text = std::str::from_utf8(size_text).map_err(|_| ChunkedError::Malformed)?;
        let size_text = size_text.trim_matches(|c| c == ' ' || c == '\t');
        if size_text.is_empty()
            || size_text.len() > 15
            || !size_text.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(ChunkedError::Malformed);
        }
        let size = usize::from_str_radix(size_text, 16).map_err(|_| ChunkedError::Malformed)?;
        at += line.len() + 2;
        if size == 0 {
            // Trailer lines, ignored, up to the blank line.
            loop {
                let Some(trailer) = line_at(buf, at)? else {
                    return Ok(Chunked::Partial);
                };
                at += trailer.len() + 2;
                if trailer.is_empty() {
                    return Ok(Chunked::Complete { body, consumed: at });
                }
            }
        }
        if body.len() + size > max_body {
            return Err(ChunkedError::TooLarge);
        }
        if buf.len() < at + size + 2 {
            return Ok(Chunked::Partial);
        }
        body.extend_from_slice(&buf[at..at + size]);
        if &buf[at + size..at + size + 2] != b"\r\n" {
            return Err(ChunkedError::Malformed);
        }
        at += size + 2;
    }
}

/// The line starting at `at`, without its CRLF; `None` if its end has not arrived.
fn line_at(buf: &[u8], at: usize) -> Result<Option<&[u8]>, ChunkedError> {
    let rest = &buf[at.min(buf.len())..];
    match rest.windows(2).position(|w| w == b"\r\n") {
        Some(end) if end <= MAX_LINE => Ok(Some(&rest[..end])),
        Some(_) => Err(ChunkedError::Malformed),
        None if rest.len() > MAX_LINE => Err(ChunkedError::Malformed),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_and_reports_what_it_took() {
        let text = b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nTrailer: x\r\n\r\nNEXT";
        assert_eq!(
            decode(text, 100),
            Ok(Chunked::Complete {
                body: b"hello, world".to_vec(),
                consumed: text.len() - 4
            })
        );
    }

    #[test]
    fn waits_for_every_prefix() {
        let text = b"5\r\nhello\r\n0\r\n\r\n";
        for end in 0..text.len() {
            assert_eq!(
                decode(&text[..end], 100),
                Ok(Chunked::Partial),
                "prefix {end}"
            );
        }
    }

    #[test]
    fn refuses_bad_syntax_and_big_bodies() {
        assert_eq!(decode(b"zz\r\n", 100), Err(ChunkedError::Malformed));
        assert_eq!(decode(b"-1\r\n", 100), Err(ChunkedError::Malformed));
        assert_eq!(decode(b"3\r\nabcX\r\n", 100), Err(ChunkedError::Malformed));
        assert_eq!(
            decode(b"ffffffffffffffffff\r\n", 100),
            Err(ChunkedError::Malformed)
        );
        assert_eq!(decode(b"65\r\n", 100), Err(ChunkedError::TooLarge));
        assert_eq!(decode(&[b'1'; 2000], 100), Err(ChunkedError::Malformed));
    }
}
