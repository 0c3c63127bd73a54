//! `GET /sub/{channels}?t=&since=&callback=`: what the request asks for, checked
//! against PROTOCOL.md. Every refusal is a `SubscribeError`, answered 400.

use std::borrow::Cow;

use crate::channel::is_valid_name;
use crate::http::target;

/// How events reach the subscriber (`t=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Held until an event or the poll timeout; JSON (or JSONP) answer.
    LongPoll,
    /// Answered at once; cacheable by ETag.
    Poll,
    /// XHR streaming: chunked NDJSON.
    Stream,
    /// Forever frame: chunked HTML of `<script>` elements.
    Iframe,
    /// Server-sent events.
    Sse,
    /// WebSocket: one text message per frame.
    Ws,
}

impl Transport {
    /// Whether the answer is a long-lived stream (a WebSocket is one).
    pub fn is_stream(self) -> bool {
        matches!(
            self,
            Transport::Stream | Transport::Iframe | Transport::Sse | Transport::Ws
        )
    }

    fn from_param(value: &str) -> Option<Transport> {
        Some(match value {
            "longpoll" => Transport::LongPoll,
            "poll" => Transport::Poll,
            "stream" => Transport::Stream,
            "iframe" => Transport::Iframe,
            "sse" => Transport::Sse,
            "ws" => Transport::Ws,
            _ => return None,
        })
    }
}

/// Where each channel's cursor starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Since {
    /// No `since` and no `Last-Event-ID`: only events published from now on.
    New,
    /// One id per channel, in the order of the channels (a single integer is repeated).
    Ids(Vec<u64>),
}

/// A subscription request as asked. Names and values borrow the request's target
/// unless they had escapes to decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscribeRequest<'a> {
    pub channels: Vec<Cow<'a, str>>,
    pub since: Since,
    pub transport: Transport,
    /// `callback=`: the forever frame's function, or JSONP for `longpoll`/`poll`.
    pub callback: Option<Cow<'a, str>>,
    /// `token=`: a signed token, for clients that cannot send `Authorization`.
    pub token: Option<Cow<'a, str>>,
}

/// Why a subscription request is refused (400).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscribeError {
    BadTarget,
    BadChannel,
    DuplicateChannel,
    TooManyChannels,
    BadSince,
    BadTransport,
    BadCallback,
    MissingCallback,
    CallbackNotAllowed,
    RepeatedParameter,
    /// `t=ws` on a request that is not a WebSocket handshake.
    NotAHandshake,
    /// A WebSocket handshake with a `t=` other than `ws`.
    HandshakeForOtherTransport,
}

impl SubscribeError {
    /// A line for the body of the 400, saying what to fix.
    pub fn message(self) -> &'static str {
        match self {
            SubscribeError::BadTarget => "the request target could not be decoded\n",
            SubscribeError::BadChannel => {
                "a channel name is 1 to 128 bytes of A-Z a-z 0-9 _ . : @ -\n"
            }
            SubscribeError::DuplicateChannel => "a channel appears twice\n",
            SubscribeError::TooManyChannels => "more channels than --max-channels\n",
            SubscribeError::BadSince => {
                "since (or Last-Event-ID) is one integer, or one per channel joined by commas\n"
            }
            SubscribeError::BadTransport => {
                "t= is one of longpoll, poll, stream, iframe, sse, ws\n"
            }
            SubscribeError::BadCallback => {
                "callback= is a dotted JavaScript identifier of at most 64 bytes\n"
            }
            SubscribeError::MissingCallback => "t=iframe needs callback=\n",
            SubscribeError::CallbackNotAllowed => {
                "callback= is for t=iframe, t=longpoll and t=poll only\n"
            }
            SubscribeError::RepeatedParameter => {
                "t, since, callback and token may each appear once\n"
            }
            SubscribeError::NotAHandshake => {
                "t=ws needs a WebSocket handshake (Upgrade: websocket, Connection: Upgrade)\n"
            }
            SubscribeError::HandshakeForOtherTransport => {
                "a WebSocket handshake takes t=ws or no t= at all\n"
            }
        }
    }
}

/// Most bytes of a `callback=` name.
pub const MAX_CALLBACK_BYTES: usize = 64;

/// What of a request's head, besides its target, a subscription is read from.
#[derive(Debug, Clone, Copy, Default)]
pub struct HeadHints<'h> {
    /// `Last-Event-ID`, which takes the place of `since` (an empty one counts as
    /// absent).
    pub last_event_id: Option<&'h [u8]>,
    /// `Accept` names `text/event-stream`: SSE when no `t=` is given.
    pub accepts_event_stream: bool,
    /// The request is a WebSocket handshake: `ws` when no `t=` is given.
    pub asks_websocket: bool,
}

/// Reads a subscription from the path after `/sub/`, the query and the `hints` of
/// its head.
pub fn parse<'a>(
    channels_segment: &'a str,
    query: &'a str,
    hints: HeadHints<'_>,
    max_channels: usize,
) -> Result<SubscribeRequest<'a>, SubscribeError> {
    let HeadHints {
        last_event_id,
        accepts_event_stream,
        asks_websocket,
    } = hints;
    let channels = match target::decode(channels_segment, false) {
        Ok(Cow::Borrowed(names)) => parse_channels(names, max_channels, Cow::Borrowed)?,
        Ok(Cow::Owned(names)) => {
            parse_channels(&names, max_channels, |name| Cow::Owned(name.to_string()))?
        }
        Err(_) => return Err(SubscribeError::BadTarget),
    };

    let mut transport_param: Option<Cow<'a, str>> = None;
    let mut since_param: Option<Cow<'a, str>> = None;
    let mut callback: Option<Cow<'a, str>> = None;
    let mut token: Option<Cow<'a, str>> = None;
    for (key, raw_value) in target::pairs(query) {
        let slot = match key {
            "t" => &mut transport_param,
            "since" => &mut since_param,
            "callback" => &mut callback,
            "token" => &mut token,
            _ => continue, // cache-busters and the like
        };
        if slot.is_some() {
            return Err(SubscribeError::RepeatedParameter);
        }
        *slot = Some(target::decode(raw_value, true).map_err(|_| SubscribeError::BadTarget)?);
    }

    let transport = match transport_param.as_deref() {
        Some(value) => Transport::from_param(value).ok_or(SubscribeError::BadTransport)?,
        None if asks_websocket => Transport::Ws,
        None if accepts_event_stream => Transport::Sse,
        None => Transport::LongPoll,
    };
    match (transport, asks_websocket) {
        (Transport::Ws, false) => return Err(SubscribeError::NotAHandshake),
        (Transport::Ws, true) | (_, false) => {}
        (_, true) => return Err(SubscribeError::HandshakeForOtherTransport),
    }
    let last_event_id = last_event_id.filter(|value| !value.is_empty());
    let since = match (last_event_id, since_param.as_deref()) {
        (Some(header), _) => {
            let text = std::str::from_utf8(header).map_err(|_| SubscribeError::BadSince)?;
            parse_since(text, channels.len())?
        }
        (None, Some(text)) => parse_since(text, channels.len())?,
        (None, None) => Since::New,
    };
    match (&callback, transport) {
        (Some(name), _) if !is_valid_callback(name) => return Err(SubscribeError::BadCallback),
        (None, Transport::Iframe) => return Err(SubscribeError::MissingCallback),
        (Some(_), Transport::Stream | Transport::Sse | Transport::Ws) => {
            return Err(SubscribeError::CallbackNotAllowed)
        }
        _ => {}
    }
    Ok(SubscribeRequest {
        channels,
        since,
        transport,
        callback,
        token,
    })
}

/// The comma list of channel names, each checked, kept by `keep` (borrowed from the
/// target when it had nothing to decode).
fn parse_channels<'t, 'a>(
    names: &'t str,
    max_channels: usize,
    keep: impl Fn(&'t str) -> Cow<'a, str>,
) -> Result<Vec<Cow<'a, str>>, SubscribeError> {
    let mut channels: Vec<Cow<'a, str>> = Vec::new();
    for name in names.split(',') {
        if !is_valid_name(name) {
            return Err(SubscribeError::BadChannel);
        }
        if channels.len() == max_channels {
            return Err(SubscribeError::TooManyChannels);
        }
        if channels.iter().any(|known| known == name) {
            return Err(SubscribeError::DuplicateChannel);
        }
        channels.push(keep(name));
    }
    Ok(channels)
}

/// `since`: one integer for every channel, or exactly one per channel joined by `,`.
fn parse_since(text: &str, channel_count: usize) -> Result<Since, SubscribeError> {
    let parse_id = |part: &str| -> Result<u64, SubscribeError> {
        if part.is_empty() || part.len() > 19 || !part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(SubscribeError::BadSince);
        }
        part.parse().map_err(|_| SubscribeError::BadSince)
    };
    let ids = text
        .split(',')
        .map(parse_id)
        .collect::<Result<Vec<u64>, _>>()?;
    match ids.len() {
        1 => Ok(Since::Ids(vec![ids[0]; channel_count])),
        n if n == channel_count => Ok(Since::Ids(ids)),
        _ => Err(SubscribeError::BadSince),
    }
}

/// A dotted JavaScript identifier (`parent.halley.push`) of at most 64 bytes, ASCII
/// only: nothing that could be anything but a function reference in a script.
pub fn is_valid_callback(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_CALLBACK_BYTES
        && name.split('.').all(|part| {
            let mut bytes = part.bytes();
            matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_' || b == b'$')
                && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask<'a>(path: &'a str, query: &'a str) -> Result<SubscribeRequest<'a>, SubscribeError> {
        parse(path, query, HeadHints::default(), 16)
    }

    fn hints(last_event_id: Option<&[u8]>, sse: bool, ws: bool) -> HeadHints<'_> {
        HeadHints {
            last_event_id,
            accepts_event_stream: sse,
            asks_websocket: ws,
        }
    }

    #[test]
    fn defaults() {
        let request = ask("live", "").unwrap();
        assert_eq!(request.channels, ["live"]);
        assert_eq!(
            (request.transport, request.since, request.callback),
            (Transport::LongPoll, Since::New, None)
        );
        let sse = parse("live", "", hints(None, true, false), 16).unwrap();
        assert_eq!(sse.transport, Transport::Sse);
    }

    #[test]
    fn websocket_handshakes() {
        let ws = |query| parse("live", query, hints(None, true, true), 16);
        assert_eq!(ws("").unwrap().transport, Transport::Ws);
        assert_eq!(ws("t=ws&since=3").unwrap().since, Since::Ids(vec![3]));
        assert_eq!(ws("t=sse"), Err(SubscribeError::HandshakeForOtherTransport));
        assert_eq!(
            ws("t=ws&callback=f"),
            Err(SubscribeError::CallbackNotAllowed)
        );
        assert_eq!(ask("live", "t=ws"), Err(SubscribeError::NotAHandshake));
    }

    #[test]
    fn cursors() {
        assert_eq!(ask("a,b", "since=4").unwrap().since, Since::Ids(vec![4, 4]));
        assert_eq!(
            ask("a,b", "since=4,0").unwrap().since,
            Since::Ids(vec![4, 0])
        );
        let with_header = parse("a,b", "since=1", hints(Some(b"7,8"), false, false), 16).unwrap();
        assert_eq!(
            with_header.since,
            Since::Ids(vec![7, 8]),
            "Last-Event-ID wins"
        );
        let empty_header = parse("a", "since=3", hints(Some(b""), false, false), 16).unwrap();
        assert_eq!(empty_header.since, Since::Ids(vec![3]));
        for bad in [
            "since=",
            "since=1,2,3",
            "since=-1",
            "since=+1",
            "since=1,",
            "since=a",
            "since=1%202",
            "since=99999999999999999999",
        ] {
            assert_eq!(ask("a,b", bad), Err(SubscribeError::BadSince), "{bad}");
        }
    }

    #[test]
    fn refusals() {
        let seventeen: Vec<String> = (0..17).map(|i| format!("c{i}")).collect();
        let table = [
            ("a/b", "", SubscribeError::BadChannel),
            ("", "", SubscribeError::BadChannel),
            ("a,,b", "", SubscribeError::BadChannel),
            ("a%2", "", SubscribeError::BadTarget),
            ("a,a", "", SubscribeError::DuplicateChannel),
            (&seventeen.join(","), "", SubscribeError::TooManyChannels),
            ("a", "t=websocket", SubscribeError::BadTransport),
            ("a", "t=iframe", SubscribeError::MissingCallback),
            (
                "a",
                "t=iframe&callback=alert(1)",
                SubscribeError::BadCallback,
            ),
            ("a", "t=sse&callback=f", SubscribeError::CallbackNotAllowed),
            ("a", "t=sse&t=poll", SubscribeError::RepeatedParameter),
        ];
        for (path, query, expected) in table {
            assert_eq!(ask(path, query), Err(expected), "{path}?{query}");
        }
        assert!(
            ask("a%2Cb", "").is_ok(),
            "an encoded comma separates channels"
        );
        assert!(ask(&seventeen[..16].join(","), "").is_ok());
    }

    #[test]
    fn callbacks() {
        let table = [
            ("parent.halley.push", true),
            ("$cb_1", true),
            ("_", true),
            (&"a".repeat(64), true),
            (&"a".repeat(65), false),
            ("", false),
            ("a..b", false),
            (".a", false),
            ("1a", false),
            ("a-b", false),
            ("a[0]", false),
            ("alert(1)", false),
            ("é", false),
            ("a</script>", false),
        ];
        for (name, ok) in table {
            assert_eq!(is_valid_callback(name), ok, "{name}");
        }
    }
}
