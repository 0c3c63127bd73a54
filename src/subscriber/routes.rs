//! A request arrives on the subscriber port: the methods it takes, CORS, routing
//! (`/sub/...`, `POST /pub/...`, the client library and the pages, preflights), and
//! the heads of its answers.

use super::{publish, start, Cors, SubscriberApp, SubscriberConn};
use crate::assets;
use crate::config::AllowOrigin;
use crate::engine::{Connection, Cx, Framing, HeadVerdict, Request};
use crate::http::{response, target, BodyLength, Method, Piece, RequestHead, Status};
use crate::stats::bump;

type Conn = Connection<SubscriberConn>;

/// `Cache-Control` of an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caching {
    /// `no-cache, no-store`: every subscription answer but `poll`.
    NoStore,
    /// `no-cache`: stored but revalidated by ETag (`poll`).
    Revalidate,
    /// Static content.
    Static,
}

/// A head, before its body: decides CORS for the answer, and refuses a body or a
/// method the port does not take (`405`, then close: the body is not read).
pub fn on_head(
    app: &mut SubscriberApp,
    cx: &mut Cx,
    conn: &mut Conn,
    head: &RequestHead,
    input: &[u8],
) -> HeadVerdict {
    let origin = head.origin.map(|span| span.of(input));
    conn.app.cors = cors_for(&app.config.allow_origin, origin);
    if head.body == BodyLength::None
        && matches!(head.method, Method::Get | Method::Head | Method::Options)
    {
        return HeadVerdict::Accept;
    }
    let publish_path = is_publish_path(head.target.of(input));
    if head.method == Method::Post && publish_path && publishing_is_on(app) {
        return HeadVerdict::Accept;
    }
    bump(&app.loop_stats().conns.methods_not_allowed);
    conn.http.keep_alive = false;
    let (text, allow): (&[u8], &[u8]) = if publish_path {
        (
            b"publishing from browsers is off on this server (--client-publish)\n",
            b"OPTIONS",
        )
    } else {
        (
            b"the subscriber port takes GET, HEAD and OPTIONS without a body\n",
            b"GET, HEAD, OPTIONS",
        )
    };
    respond(
        app,
        cx,
        conn,
        Status::MethodNotAllowed,
        b"text/plain; charset=utf-8",
        text,
        &[(b"Allow", allow)],
    );
    HeadVerdict::Answered
}

/// Where browser publishes go: `POST /pub/{channel}`.
const PUBLISH_PREFIX: &str = "/pub/";

/// Whether a request target is under `/pub/`.
fn is_publish_path(target: &[u8]) -> bool {
    target.starts_with(PUBLISH_PREFIX.as_bytes())
}

/// Whether browsers may publish on this server at all: to `--client-publish`'s
/// channels, or with a token.
fn publishing_is_on(app: &SubscriberApp) -> bool {
    !app.config.client_publish.is_empty() || app.config.token_key.is_some()
}

/// Routes one whole request.
pub fn route(
    app: &mut SubscriberApp,
    cx: &mut Cx,
    key: usize,
    conn: &mut Conn,
    request: &Request<'_>,
) {
    let Ok((path, query)) = target::split(request.target()) else {
        bump(&app.loop_stats().conns.bad_requests);
        return respond_text(app, cx, conn, Status::BadRequest, b"bad request target\n");
    };
    if request.head.method == Method::Options {
        return respond_preflight(app, cx, conn, is_publish_path(path.as_bytes()));
    }
    if request.head.method == Method::Post {
        // Only `/pub/...` with publishing on gets here (`on_head`).
        let channel = path.strip_prefix(PUBLISH_PREFIX).unwrap_or_default();
        return publish::from_post(app, cx, key, conn, (channel, query), request);
    }
    if let Some(file) = assets::subscriber_file(path) {
        let caching: &[(&[u8], &[u8])] = &[(b"Cache-Control", b"no-cache")];
        respond(
            app,
            cx,
            conn,
            Status::Ok,
            file.content_type,
            file.body,
            caching,
        );
    } else if let Some(channels) = path.strip_prefix("/sub/") {
        start::subscribe(app, cx, key, conn, request, channels, query);
    } else {
        bump(&app.loop_stats().conns.not_found);
        respond_text(app, cx, conn, Status::NotFound, b"not found\n");
    }
}

/// Answers a CORS preflight: the methods and headers a subscriber may use, or a
/// browser publish (`/pub/...`, when publishing is on).
fn respond_preflight(app: &SubscriberApp, cx: &mut Cx, conn: &mut Conn, publish_path: bool) {
    const SUBSCRIBE: &[(&[u8], &[u8])] = &[
        (b"Access-Control-Allow-Methods", b"GET, HEAD, OPTIONS"),
        (
            b"Access-Control-Allow-Headers",
            b"Last-Event-ID, If-None-Match, Cache-Control, Accept, X-Requested-With, Authorization",
        ),
        (b"Access-Control-Max-Age", b"86400"),
        (b"Allow", b"GET, HEAD, OPTIONS"),
    ];
    const PUBLISH: &[(&[u8], &[u8])] = &[
        (b"Access-Control-Allow-Methods", b"POST, OPTIONS"),
        (
            b"Access-Control-Allow-Headers",
            b"Content-Type, Authorization, X-Requested-With",
        ),
        (b"Access-Control-Max-Age", b"86400"),
        (b"Allow", b"POST, OPTIONS"),
    ];
    const PUBLISH_OFF: &[(&[u8], &[u8])] = &[(b"Allow", b"OPTIONS")];
    let headers = match (publish_path, publishing_is_on(app)) {
        (false, _) => SUBSCRIBE,
        (true, true) => PUBLISH,
        (true, false) => PUBLISH_OFF,
    };
    respond_empty(app, cx, conn, Status::NoContent, Caching::Static, headers);
}

/// Answers with a head alone (`204`, `304`): no body and no length.
pub fn respond_empty(
    app: &SubscriberApp,
    cx: &mut Cx,
    conn: &mut Conn,
    status: Status,
    caching: Caching,
    extra: &[(&[u8], &[u8])],
) {
    cx.scratch.clear();
    let head = Head {
        status,
        content_type: None,
        framing: Framing::Empty,
        caching,
        extra,
    };
    push_head(app, cx, conn, head);
    finish(cx, conn, &[]);
}

/// Answers with a plain-text body.
pub fn respond_text(
    app: &SubscriberApp,
    cx: &mut Cx,
    conn: &mut Conn,
    status: Status,
    body: &[u8],
) {
    respond(
        app,
        cx,
        conn,
        status,
        b"text/plain; charset=utf-8",
        body,
        &[],
    );
}

/// Answers with a whole body (left out for HEAD).
pub fn respond(
    app: &SubscriberApp,
    cx: &mut Cx,
    conn: &mut Conn,
    status: Status,
    content_type: &[u8],
    body: &[u8],
    extra: &[(&[u8], &[u8])],
) {
    let caching = if status == Status::Ok {
        Caching::Static
    } else {
        Caching::NoStore
    };
    cx.scratch.clear();
    let head = Head {
        status,
        content_type: Some(content_type),
        framing: Framing::Length(body.len()),
        caching,
        extra,
    };
    push_head(app, cx, conn, head);
    let body = if conn.http.head_only { &[][..] } else { body };
    finish(cx, conn, body);
}

/// Decides CORS for a request from `--allow-origin` and its `Origin`.
pub fn cors_for(policy: &AllowOrigin, origin: Option<&[u8]>) -> Cors {
    match policy {
        AllowOrigin::Any => Cors::Any,
        AllowOrigin::None => Cors::Nothing,
        AllowOrigin::List(allowed) => {
            let origin = origin.and_then(|o| std::str::from_utf8(o).ok());
            match origin {
                Some(origin) => match allowed.iter().position(|a| a == origin) {
                    Some(at) if at <= u16::MAX as usize => Cors::Echo(at as u16),
                    _ => Cors::Denied,
                },
                None => Cors::Denied,
            }
        }
    }
}

/// What an answer's head says besides what the connection decides (CORS, version,
/// keep-alive).
#[derive(Debug, Clone, Copy)]
pub struct Head<'a> {
    pub status: Status,
    pub content_type: Option<&'a [u8]>,
    pub framing: Framing,
    pub caching: Caching,
    /// More headers, after the rest.
    pub extra: &'a [(&'a [u8], &'a [u8])],
}

/// Writes a whole answer head for `conn` into `cx.scratch` (appending): status,
/// `Date`, type, framing, caching, CORS, `extra`, `Connection`.
pub fn push_head(app: &SubscriberApp, cx: &mut Cx, conn: &mut Conn, head: Head<'_>) {
    let Head {
        status,
        content_type,
        framing,
        caching,
        extra,
    } = head;
    let out = &mut cx.scratch;
    conn.http
        .start_head(out, cx.date.get(), status, content_type, framing);
    match caching {
        Caching::NoStore => response::header(out, b"Cache-Control", b"no-cache, no-store"),
        Caching::Revalidate => response::header(out, b"Cache-Control", b"no-cache"),
        Caching::Static => {}
    }
    match conn.app.cors {
        Cors::Nothing => {}
        Cors::Any => {
            response::header(out, b"Access-Control-Allow-Origin", b"*");
            response::header(out, b"Access-Control-Expose-Headers", b"ETag, Retry-After");
        }
        Cors::Echo(at) => {
            let origin = match &app.config.allow_origin {
                AllowOrigin::List(allowed) => allowed[at as usize].as_bytes(),
                _ => b"null",
            };
            response::header(out, b"Access-Control-Allow-Origin", origin);
            response::header(out, b"Access-Control-Expose-Headers", b"ETag, Retry-After");
            response::header(out, b"Vary", b"Origin");
        }
        Cors::Denied => response::header(out, b"Vary", b"Origin"),
    }
    for (name, value) in extra {
        response::header(out, name, value);
    }
    conn.http.end_head(out);
}

/// Sends `cx.scratch` and then `body`: the answer is complete.
pub fn finish(cx: &mut Cx, conn: &mut Conn, body: &[u8]) {
    conn.send(cx.now_ms, &[Piece::Copy(&cx.scratch), Piece::Copy(body)]);
    conn.http.complete(cx.now_ms);
}
