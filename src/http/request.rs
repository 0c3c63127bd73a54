//! Request heads: `httparse` finds the request line and headers; this module enforces
//! the head size limit, rejects what could smuggle a second request past a proxy
//! (both `Content-Length` and `Transfer-Encoding`, disagreeing lengths, codings we do
//! not know), and keeps from the headers only what the server uses, as spans into the
//! caller's buffer, so a parsed head owns no memory.

/// Most headers in one request; more is answered like an oversized head (431).
pub const MAX_HEADERS: usize = 64;

/// A byte range of the buffer the head was parsed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    /// The bytes of this span in `buf` (the buffer the head was parsed from).
    pub fn of<'b>(&self, buf: &'b [u8]) -> &'b [u8] {
        &buf[self.start..self.end]
    }

    fn within(buf: &[u8], part: &[u8]) -> Span {
        let start = part.as_ptr() as usize - buf.as_ptr() as usize;
        Span {
            start,
            end: start + part.len(),
        }
    }
}

/// The request methods the server tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Options,
    Post,
    Other,
}

/// How the request's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyLength {
    /// No body.
    None,
    /// `Content-Length`.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// What the server keeps of a request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    pub method: Method,
    /// The request target as sent.
    pub target: Span,
    /// HTTP/1.0 (no chunked responses; keep-alive only when asked for).
    pub http10: bool,
    /// Whether the connection may carry another request after this one.
    pub keep_alive: bool,
    pub body: BodyLength,
    /// `Expect: 100-continue`.
    pub expect_continue: bool,
    pub origin: Option<Span>,
    pub last_event_id: Option<Span>,
    pub if_none_match: Option<Span>,
    /// `Authorization` (a bearer token, read by `auth`).
    pub authorization: Option<Span>,
    /// `Accept` names `text/event-stream`.
    pub accepts_event_stream: bool,
    /// `Upgrade` lists `websocket` and `Connection` lists `upgrade`: a WebSocket
    /// handshake (RFC 6455 section 4.2.1), checked by `websocket::handshake`.
    pub asks_websocket: bool,
    /// `Sec-WebSocket-Key`, `Sec-WebSocket-Version` and `Sec-WebSocket-Protocol` (the
    /// last one when repeated).
    pub websocket_key: Option<Span>,
    pub websocket_version: Option<Span>,
    pub websocket_protocol: Option<Span>,
    /// Bytes of the head, request line to the blank line.
    pub len: usize,
}

/// A head that cannot be served. Each maps to one answer and one counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadError {
    /// Over the head size limit, or too many headers: 431.
    TooLarge,
    /// Not HTTP/1.x syntax: 400.
    Malformed,
    /// Both `Content-Length` and `Transfer-Encoding`, or two different lengths: 400.
    AmbiguousLength,
    /// A `Content-Length` that is not a number: 400.
    BadLength,
    /// A transfer coding other than `chunked`: 501.
    UnknownCoding,
    /// HTTP/1.1 without exactly one `Host`: 400.
    BadHost,
}

/// The result of looking at the bytes received so far. (`Complete` is much larger
/// than `Partial`; boxing it would allocate once per request, on the hottest path, to
/// save stack space for a value that lives only until the engine moves the head on.)
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)]
pub enum Parsed {
    /// The head is not complete yet (and not over the limit).
    Partial,
    /// A complete head.
    Complete(RequestHead),
}

/// Parses the head at the start of `buf`, allowing at most `max_head` bytes for it.
pub fn parse_head(buf: &[u8], max_head: usize) -> Result<Parsed, HeadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let Some(len) = find_head(&mut request, buf, max_head)? else {
        return Ok(Parsed::Partial);
    };
    let http10 = request.version == Some(0);
    let mut head = RequestHead {
        method: method_of(request.method.unwrap_or("")),
        target: Span::within(buf, request.path.unwrap_or("").as_bytes()),
        http10,
        keep_alive: !http10,
        body: BodyLength::None,
        expect_continue: false,
        origin: None,
        last_event_id: None,
        authorization: None,
        if_none_match: None,
        accepts_event_stream: false,
        asks_websocket: false,
        websocket_key: None,
        websocket_version: None,
        websocket_protocol: None,
        len,
    };
    let framing = read_headers(buf, request.headers, &mut head)?;
    head.asks_websocket = framing.upgrade_websocket && framing.connection_upgrade;
    if (!http10 && framing.hosts != 1) || framing.hosts > 1 {
        return Err(HeadError::BadHost);
    }
    head.body = framing.body_length(http10)?;
    Ok(Parsed::Complete(head))
}

/// Where the head ends, once it is whole (`None` until then); a head over
/// `max_head`, whole or not, or with too many headers, is too large.
fn find_head<'h, 'b>(
    request: &mut httparse::Request<'h, 'b>,
    buf: &'b [u8],
    max_head: usize,
) -> Result<Option<usize>, HeadError> {
    match request.parse(buf) {
        Ok(httparse::Status::Complete(len)) if len > max_head => Err(HeadError::TooLarge),
        Ok(httparse::Status::Complete(len)) => Ok(Some(len)),
        Ok(httparse::Status::Partial) if buf.len() > max_head => Err(HeadError::TooLarge),
        Ok(httparse::Status::Partial) => Ok(None),
        Err(httparse::Error::TooManyHeaders) => Err(HeadError::TooLarge),
        Err(_) => Err(HeadError::Malformed),
    }
}

fn method_of(name: &str) -> Method {
    match name {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "OPTIONS" => Method::Options,
        "POST" => Method::Post,
        _ => Method::Other,
    }
}

/// What the headers say of the body's framing and the host, checked once all are
/// read.
#[derive(Debug, Default)]
struct Framing {
    content_length: Option<u64>,
    chunked: bool,
    hosts: usize,
    /// `Upgrade` lists `websocket`.
    upgrade_websocket: bool,
    /// `Connection` lists `upgrade`.
    connection_upgrade: bool,
}

impl Framing {
    /// How the body is delimited; refuses what could smuggle a request past a proxy.
    fn body_length(&self, http10: bool) -> Result<BodyLength, HeadError> {
        match (self.content_length, self.chunked) {
            (Some(_), true) => Err(HeadError::AmbiguousLength),
            (_, true) if http10 => Err(HeadError::UnknownCoding),
            (_, true) => Ok(BodyLength::Chunked),
            (Some(0) | None, false) => Ok(BodyLength::None),
            (Some(n), false) => Ok(BodyLength::Length(n)),
        }
    }
}

/// Reads the headers the server uses into `head` (as spans of `buf`) and returns what
/// they say of the framing; refuses bad lengths and codings as it meets them.
fn read_headers(
    buf: &[u8],
    headers: &[httparse::Header<'_>],
    head: &mut RequestHead,
) -> Result<Framing, HeadError> {
    let mut framing = Framing::default();
    for header in headers {
        let (name, value) = (header.name, header.value);
        let span = || Some(Span::within(buf, value.trim_ascii()));
        if name.eq_ignore_ascii_case("content-length") {
            let parsed = parse_length(value).ok_or(HeadError::BadLength)?;
            if framing.content_length.is_some_and(|known| known != parsed) {
                return Err(HeadError::AmbiguousLength);
            }
            framing.content_length = Some(parsed);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            if framing.chunked || !value.trim_ascii().eq_ignore_ascii_case(b"chunked") {
                return Err(HeadError::UnknownCoding);
            }
            framing.chunked = true;
        } else if name.eq_ignore_ascii_case("connection") {
            for token in value.split(|&b| b == b',') {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"close") {
                    head.keep_alive = false;
                } else if token.eq_ignore_ascii_case(b"keep-alive") && head.http10 {
                    head.keep_alive = true;
                } else if token.eq_ignore_ascii_case(b"upgrade") {
                    framing.connection_upgrade = true;
                }
            }
        } else if name.eq_ignore_ascii_case("host") {
            framing.hosts += 1;
        } else if name.eq_ignore_ascii_case("origin") {
            head.origin = span();
        } else if name.eq_ignore_ascii_case("last-event-id") {
            head.last_event_id = span();
        } else if name.eq_ignore_ascii_case("authorization") {
            head.authorization = span();
        } else if name.eq_ignore_ascii_case("if-none-match") {
            head.if_none_match = span();
        } else if name.eq_ignore_ascii_case("accept") {
            head.accepts_event_stream |= contains_ignore_case(value, b"text/event-stream");
        } else if name.eq_ignore_ascii_case("expect") {
            head.expect_continue = value.trim_ascii().eq_ignore_ascii_case(b"100-continue");
        } else if name.eq_ignore_ascii_case("upgrade") {
            // The handshake's headers last: every request has the ones above.
            framing.upgrade_websocket |= value
                .split(|&b| b == b',')
                .any(|token| token.trim_ascii().eq_ignore_ascii_case(b"websocket"));
        } else if name.eq_ignore_ascii_case("sec-websocket-key") {
            head.websocket_key = span();
        } else if name.eq_ignore_ascii_case("sec-websocket-version") {
            head.websocket_version = span();
        } else if name.eq_ignore_ascii_case("sec-websocket-protocol") {
            head.websocket_protocol = span();
        }
    }
    Ok(framing)
}

/// `Content-Length`: one or more digits and nothing else (no sign, no list).
fn parse_length(value: &[u8]) -> Option<u64> {
    let value = value.trim_ascii();
    if value.is_empty() || value.len() > 18 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok()
}

fn contains_ignore_case(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Parsed, HeadError> {
        parse_head(text.as_bytes(), 8192)
    }

    fn complete(text: &str) -> RequestHead {
        match parse(text) {
            Ok(Parsed::Complete(head)) => head,
            other => panic!("{text:?}: {other:?}"),
        }
    }

    #[test]
    fn a_plain_get() {
        let text = "GET /sub/live?t=sse HTTP/1.1\r\nHost: x\r\nOrigin: http://a.example\r\n\r\n";
        let head = complete(text);
        assert_eq!(head.method, Method::Get);
        assert_eq!(head.target.of(text.as_bytes()), b"/sub/live?t=sse");
        assert_eq!(
            head.origin.unwrap().of(text.as_bytes()),
            b"http://a.example"
        );
        assert!(head.keep_alive && !head.http10);
        assert_eq!((head.body, head.len), (BodyLength::None, text.len()));
    }

    #[test]
    fn partial_heads_wait_until_the_limit() {
        assert_eq!(parse("GET / HTTP/1.1\r\nHost: x\r\n"), Ok(Parsed::Partial));
        let long = format!("GET /{} HTTP/1.1\r\n", "a".repeat(9000));
        assert_eq!(parse(&long), Err(HeadError::TooLarge));
        let many = format!("GET / HTTP/1.1\r\n{}\r\n", "A: b\r\n".repeat(70));
        assert_eq!(parse(&many), Err(HeadError::TooLarge));
    }

    #[test]
    fn error_table() {
        let table = [
            ("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", HeadError::AmbiguousLength),
            ("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", HeadError::AmbiguousLength),
            ("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\n", HeadError::BadLength),
            ("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\n", HeadError::BadLength),
            ("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", HeadError::BadLength),
            ("GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", HeadError::UnknownCoding),
            ("GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n", HeadError::UnknownCoding),
            ("GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", HeadError::UnknownCoding),
            ("GET / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", HeadError::UnknownCoding),
            ("GET / HTTP/1.1\r\n\r\n", HeadError::BadHost),
            ("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", HeadError::BadHost),
            ("GET / HTTP/2.0\r\nHost: x\r\n\r\n", HeadError::Malformed),
            ("GET /\r\n\r\n", HeadError::Malformed),
            ("GET / HTTP/1.1\r\nHost : x\r\n\r\n", HeadError::Malformed),
            ("GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", HeadError::Malformed),
            ("G\0T / HTTP/1.1\r\n\r\n", HeadError::Malformed),
        ];
        for (text, expected) in table {
            assert_eq!(parse(text), Err(expected), "{text:?}");
        }
    }

    #[test]
    fn bodies_and_connection_handling() {
        let head = complete("POST /pub/a HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\nContent-Length: 12\r\nExpect: 100-continue\r\n\r\n");
        assert_eq!(
            (head.method, head.body, head.expect_continue),
            (Method::Post, BodyLength::Length(12), true)
        );
        let head =
            complete("POST /pub/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n");
        assert_eq!(head.body, BodyLength::Chunked);
        let head = complete("GET / HTTP/1.0\r\n\r\n");
        assert!(head.http10 && !head.keep_alive);
        let head = complete("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
        assert!(head.keep_alive);
        let head = complete("GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, close\r\n\r\n");
        assert!(!head.keep_alive);
        let head = complete("GET / HTTP/1.1\r\nHost: x\r\nAccept: text/html, Text/Event-Stream\r\nLast-Event-ID: 4,0\r\nIf-None-Match: \"4,0\"\r\n\r\n");
        assert!(head.accepts_event_stream);
    }

    #[test]
    fn websocket_handshake_headers() {
        let text = "GET /sub/a HTTP/1.1\r\nHost: x\r\nUpgrade: WebSocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Key:  dGhlIHNhbXBsZSBub25jZQ== \r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chat, halley.v1\r\n\r\n";
        let head = complete(text);
        let buf = text.as_bytes();
        assert!(head.asks_websocket);
        assert_eq!(
            head.websocket_key.unwrap().of(buf),
            b"dGhlIHNhbXBsZSBub25jZQ=="
        );
        assert_eq!(head.websocket_version.unwrap().of(buf), b"13");
        assert_eq!(head.websocket_protocol.unwrap().of(buf), b"chat, halley.v1");
        // Both headers are needed, each naming its token.
        for text in [
            "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\nConnection: upgrade\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: keep-alive\r\n\r\n",
        ] {
            assert!(!complete(text).asks_websocket, "{text:?}");
        }
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn never_panics_and_respects_the_limit(bytes in prop::collection::vec(any::<u8>(), 0..2000), max in 16usize..1024) {
            match parse_head(&bytes, max) {
                Ok(Parsed::Complete(head)) => prop_assert!(head.len <= max && head.len <= bytes.len()),
                Ok(Parsed::Partial) => prop_assert!(bytes.len() <= max),
                Err(_) => {}
            }
        }

        #[test]
        fn every_prefix_of_a_valid_head_is_partial(cut in 0usize..60) {
            let text = b"GET /sub/a?t=sse HTTP/1.1\r\nHost: example\r\nAccept: */*\r\n\r\n";
            let cut = cut.min(text.len() - 1);
            prop_assert_eq!(parse_head(&text[..cut], 8192), Ok(Parsed::Partial));
        }
    }
}
