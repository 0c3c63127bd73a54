//! Answering requests on the subscriber port: routing, CORS, response heads, and the
//! small fixed answers (errors, preflights, the demo page).

use super::conn::{Conn, Cors, State};
use super::Env;
use super::Worker;
use crate::assets;
use crate::config::AllowOrigin;
use crate::http::request::RequestHead;
use crate::http::{response, target, BodyLength, Method, Piece, Status};
use crate::stats::bump;

/// How the body of an answer is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `Content-Length`.
    Length(usize),
    /// `Transfer-Encoding: chunked` (HTTP/1.1) or the connection's close (HTTP/1.0).
    Stream,
    /// No body and no length header (204, 304).
    Empty,
}

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

impl Worker {
    /// Routes one complete request.
    pub(super) fn handle_request(&mut self, key: usize, head: &RequestHead) {
        let env = &mut self.env;
        let conn = &mut self.conns[key];
        conn.http10 = head.http10;
        conn.keep_alive = head.keep_alive && !env.shutting_down;
        conn.cors = cors_for(
            &env.config.allow_origin,
            head.origin.map(|span| span.of(&conn.input)),
        );
        let head_only = head.method == Method::Head;

        if head.body != BodyLength::None
            || !matches!(head.method, Method::Get | Method::Head | Method::Options)
        {
            bump(&env.loop_stats().methods_not_allowed);
            conn.keep_alive = false;
            self.respond(
                key,
                Status::MethodNotAllowed,
                b"text/plain; charset=utf-8",
                b"the subscriber port takes GET, HEAD and OPTIONS without a body\n",
                &[(b"Allow", b"GET, HEAD, OPTIONS")],
                false,
            );
            return;
        }
        let Ok((path, query)) = target::split(head.target.of(&conn.input)) else {
            bump(&env.loop_stats().bad_requests);
            self.respond_text(key, Status::BadRequest, b"bad request target\n");
            return;
        };
        if head.method == Method::Options {
            self.respond_preflight(key);
            return;
        }
        if let Some(file) = assets::subscriber_file(path) {
            let caching: &[(&[u8], &[u8])] = &[(b"Cache-Control", b"no-cache")];
            self.respond(
                key,
                Status::Ok,
                file.content_type,
                file.body,
                caching,
                head_only,
            );
        } else if let Some(channels) = path.strip_prefix("/sub/") {
            let (channels, query) = (channels.to_string(), query.to_string());
            self.subscribe(key, head, &channels, &query);
        } else {
            bump(&self.env.loop_stats().not_found);
            self.respond_text(key, Status::NotFound, b"not found\n");
        }
    }

    /// Answers a CORS preflight: the methods and headers a subscriber may use.
    fn respond_preflight(&mut self, key: usize) {
        const HEADERS: &[(&[u8], &[u8])] = &[
            (b"Access-Control-Allow-Methods", b"GET, HEAD, OPTIONS"),
            (
                b"Access-Control-Allow-Headers",
                b"Last-Event-ID, If-None-Match, Cache-Control, Accept, X-Requested-With",
            ),
            (b"Access-Control-Max-Age", b"86400"),
            (b"Allow", b"GET, HEAD, OPTIONS"),
        ];
        let env = &mut self.env;
        let conn = &mut self.conns[key];
        env.scratch.clear();
        push_head(
            env,
            conn,
            Status::NoContent,
            None,
            Framing::Empty,
            Caching::Static,
            HEADERS,
        );
        write_scratch(env, conn, &[]);
    }

    /// Answers with a plain-text body.
    pub(super) fn respond_text(&mut self, key: usize, status: Status, body: &[u8]) {
        self.respond(key, status, b"text/plain; charset=utf-8", body, &[], false);
    }

    /// Answers with a whole body (left out for HEAD).
    pub(super) fn respond(
        &mut self,
        key: usize,
        status: Status,
        content_type: &[u8],
        body: &[u8],
        extra: &[(&[u8], &[u8])],
        head_only: bool,
    ) {
        let env = &mut self.env;
        let conn = &mut self.conns[key];
        let caching = if status == Status::Ok {
            Caching::Static
        } else {
            Caching::NoStore
        };
        env.scratch.clear();
        push_head(
            env,
            conn,
            status,
            Some(content_type),
            Framing::Length(body.len()),
            caching,
            extra,
        );
        write_scratch(env, conn, if head_only { &[] } else { body });
    }
}

/// Decides CORS for a request from `--allow-origin` and its `Origin`.
pub fn cors_for(policy: &AllowOrigin, origin: Option<&[u8]>) -> Cors {
    match policy {
        AllowOrigin::Any => Cors::Any,
        AllowOrigin::None => Cors::Nothing,
        AllowOrigin::List(allowed) => {
            let origin = origin.and_then(|o| std::str::from_utf8(o).ok());
            match origin {
                Some(origin) if allowed.iter().any(|a| a == origin) => Cors::Echo(origin.into()),
                _ => Cors::Denied,
            }
        }
    }
}

/// Writes a response head for `conn` into `env.scratch` (appending).
pub fn push_head(
    env: &mut Env,
    conn: &mut Conn,
    status: Status,
    content_type: Option<&[u8]>,
    framing: Framing,
    caching: Caching,
    extra: &[(&[u8], &[u8])],
) {
    let out = &mut env.scratch;
    response::start(out, status, env.date.get());
    if let Some(content_type) = content_type {
        response::header(out, b"Content-Type", content_type);
    }
    match framing {
        Framing::Length(len) => response::content_length(out, len),
        Framing::Stream if conn.http10 => conn.keep_alive = false,
        Framing::Stream => response::header(out, b"Transfer-Encoding", b"chunked"),
        Framing::Empty => {}
    }
    match caching {
        Caching::NoStore => response::header(out, b"Cache-Control", b"no-cache, no-store"),
        Caching::Revalidate => response::header(out, b"Cache-Control", b"no-cache"),
        Caching::Static => {}
    }
    match &conn.cors {
        Cors::Nothing => {}
        Cors::Any => {
            response::header(out, b"Access-Control-Allow-Origin", b"*");
            response::header(out, b"Access-Control-Expose-Headers", b"ETag, Retry-After");
        }
        Cors::Echo(origin) => {
            response::header(out, b"Access-Control-Allow-Origin", origin.as_bytes());
            response::header(out, b"Access-Control-Expose-Headers", b"ETag, Retry-After");
            response::header(out, b"Vary", b"Origin");
        }
        Cors::Denied => response::header(out, b"Vary", b"Origin"),
    }
    for (name, value) in extra {
        response::header(out, name, value);
    }
    if !conn.keep_alive {
        response::header(out, b"Connection", b"close");
    } else if conn.http10 {
        response::header(out, b"Connection", b"keep-alive");
    }
    response::end(out);
}

/// Sends `env.scratch` and then `body`, and moves to `Closing` unless kept alive.
pub fn write_scratch(env: &mut Env, conn: &mut Conn, body: &[u8]) {
    write_pieces(env, conn, &[Piece::Copy(&env.scratch), Piece::Copy(body)]);
    if !conn.keep_alive {
        conn.state = State::Closing;
    }
}

/// Writes pieces through the connection's queue, noting when output starts waiting.
pub fn write_pieces(env: &Env, conn: &mut Conn, pieces: &[Piece<'_>]) -> usize {
    let was_empty = conn.out.is_empty();
    match conn.out.write_through(&mut conn.socket, pieces) {
        Ok(written) => {
            if written > 0 || (was_empty && !conn.out.is_empty()) {
                conn.last_progress_ms = env.now_ms;
            }
            written
        }
        Err(_) => {
            conn.broken = true;
            0
        }
    }
}
