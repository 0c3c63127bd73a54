//! Just enough HTTP/1.1 to tell where an answer ends: the status, and the body by
//! `Content-Length`, chunked framing, or no body (`204`, `304`).

/// What is known of an answer from the bytes received so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Not all of it has arrived.
    Partial,
    /// Complete: its status and how many bytes it took.
    Complete { status: u16, len: usize },
    /// Not HTTP.
    Invalid,
}

/// Looks at the answer at the start of `buf`.
pub fn answer(buf: &[u8]) -> Answer {
    let Some(head_end) = find(buf, b"\r\n\r\n") else {
        return Answer::Partial;
    };
    let head = &buf[..head_end];
    let Some(status) = status(head) else {
        return Answer::Invalid;
    };
    let body = head_end + 4;
    if status == 204 || status == 304 || (100..200).contains(&status) {
        return Answer::Complete { status, len: body };
    }
    if let Some(len) = header(head, b"content-length")
        .and_then(|v| std::str::from_utf8(v).ok()?.trim().parse::<usize>().ok())
    {
        return if buf.len() >= body + len {
            Answer::Complete {
                status,
                len: body + len,
            }
        } else {
            Answer::Partial
        };
    }
    if header(head, b"transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case(b"chunked")) {
        return match find(&buf[body..], b"0\r\n\r\n") {
            Some(end) if end == 0 || buf[body + end - 1] == b'\n' => Answer::Complete {
                status,
                len: body + end + 5,
            },
            _ => Answer::Partial,
        };
    }
    Answer::Partial
}

/// Reads from `stream` into `input` until it holds one whole answer; returns its status.
pub fn read_answer(stream: &mut impl std::io::Read, input: &mut Vec<u8>) -> Result<u16, String> {
    let mut buf = [0u8; 4096];
    loop {
        match answer(input) {
            Answer::Complete { status, .. } => return Ok(status),
            Answer::Invalid => return Err("not HTTP".into()),
            Answer::Partial => {}
        }
        let n = stream.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("closed".into());
        }
        input.extend_from_slice(&buf[..n]);
    }
}

/// Whether the answer at the start of `buf` says the server closes after it.
pub fn closes(buf: &[u8]) -> bool {
    let head = &buf[..find(buf, b"\r\n\r\n").unwrap_or(buf.len())];
    header(head, b"connection").is_some_and(|v| v.eq_ignore_ascii_case(b"close"))
}

/// The status code of a head.
pub fn status(head: &[u8]) -> Option<u16> {
    let line = head.split(|&b| b == b'\n').next()?;
    let code = line.split(|&b| b == b' ').nth(1)?;
    std::str::from_utf8(code).ok()?.trim().parse().ok()
}

fn header<'a>(head: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    head.split(|&b| b == b'\n').skip(1).find_map(|line| {
        let colon = line.iter().position(|&b| b == b':')?;
        line[..colon]
            .eq_ignore_ascii_case(name)
            .then(|| line[colon + 1..].trim_ascii())
    })
}

/// Where `needle` first occurs in `haystack`.
pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers() {
        assert_eq!(
            answer(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"),
            Answer::Complete {
                status: 200,
                len: 40
            }
        );
        assert_eq!(
            answer(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nh"),
            Answer::Partial
        );
        assert_eq!(
            answer(b"HTTP/1.1 304 Not Modified\r\nETag: \"1\"\r\n\r\n"),
            Answer::Complete {
                status: 304,
                len: 40
            }
        );
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n";
        assert_eq!(
            answer(chunked),
            Answer::Complete {
                status: 200,
                len: chunked.len()
            }
        );
        assert_eq!(answer(&chunked[..chunked.len() - 1]), Answer::Partial);
        assert_eq!(
            answer(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Answer::Partial
        );
        assert_eq!(answer(b"garbage\r\n\r\n"), Answer::Invalid);
    }

    #[test]
    fn connection_close_is_seen_in_the_head_only() {
        assert!(closes(
            b"HTTP/1.1 200 OK\r\nConnection: Close\r\nContent-Length: 0\r\n\r\n"
        ));
        assert!(!closes(
            b"HTTP/1.1 200 OK\r\nContent-Length: 17\r\n\r\nConnection: close"
        ));
        assert!(!closes(
            b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\n\r\n"
        ));
    }
}
