//! Who may subscribe and publish (PROTOCOL.md, "Authentication"): with
//! `--token-key-file`, a subscription to any channel not matched by
//! `--public-channels` needs a token, in `Authorization: Bearer` or `?token=`, whose
//! `channels` claim covers every such channel; a browser publish to a channel not
//! matched by `--client-publish` needs one whose `publish` claim covers it. Refusals
//! are `401` (with `WWW-Authenticate`) or `403` naming the channel, the same whether
//! the channel exists or not, counted, and never logged with the token.

use std::borrow::Cow;
use std::time::{SystemTime, UNIX_EPOCH};

use super::routes::respond;
use super::{SubscriberApp, SubscriberConn};
use crate::auth::{self, AuthError, Grant};
use crate::engine::{Connection, Cx, Request};
use crate::http::Status;
use crate::stats::bump;

type Conn = Connection<SubscriberConn>;

/// The token a request carries: `Authorization: Bearer TOKEN`, else `?token=`.
pub fn token_of<'a>(request: &Request<'a>, query_token: Option<&'a str>) -> Option<&'a [u8]> {
    let header = request.span(request.head.authorization);
    header
        .and_then(auth::bearer_token)
        .or(query_token.map(str::as_bytes))
}

/// Seconds since the epoch, now.
fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// What a checked subscription may do.
#[derive(Debug, Default)]
pub struct Access {
    /// What its token grants, if it came with a valid one (on public channels too:
    /// the `publish` claim serves a WebSocket's publishes).
    pub grant: Option<Grant>,
    /// When (loop time, ms) it ends for its token: `u64::MAX` when no channel of it
    /// needed one (public channels are not closed by a token's expiry).
    pub expires_ms: u64,
}

/// Whether every one of `channels` is subscribed to without a token.
fn all_public(app: &SubscriberApp, channels: &[Cow<'_, str>]) -> bool {
    let public = &app.config.public_channels;
    channels.iter().all(|channel| public.matches(channel))
}

/// Checks a subscription to `channels`; answers a refusal itself and returns `Err`.
pub fn subscription(
    app: &SubscriberApp,
    cx: &mut Cx,
    conn: &mut Conn,
    token: Option<&[u8]>,
    channels: &[Cow<'_, str>],
) -> Result<Access, ()> {
    let never = Access {
        grant: None,
        expires_ms: u64::MAX,
    };
    let Some(key) = &app.config.token_key else {
        return Ok(never);
    };
    let public = &app.config.public_channels;
    if all_public(app, channels) {
        // Not checked: a bad token does not close public channels.
        let grant = token.and_then(|token| auth::verify(key, token, now()).ok());
        return Ok(Access { grant, ..never });
    }
    let verified = match token {
        Some(token) => auth::verify(key, token, now()),
        None => Err(AuthError::Missing),
    };
    let grant = match verified {
        Ok(grant) => grant,
        Err(error) => {
            refuse_401(app, cx, conn, error);
            return Err(());
        }
    };
    let uncovered = channels
        .iter()
        .find(|channel| !public.matches(channel) && !grant.channels.matches(channel));
    if let Some(channel) = uncovered {
        bump(&app.loop_stats().auth_forbidden);
        let text = format!("the token does not cover channel {channel}\n");
        let text_type = b"text/plain; charset=utf-8";
        respond(
            app,
            cx,
            conn,
            Status::Forbidden,
            text_type,
            text.as_bytes(),
            &[],
        );
        return Err(());
    }
    Ok(Access {
        expires_ms: expires_ms(&grant, cx.now_ms),
        grant: Some(grant),
    })
}

/// A browser publish to `channel` with `token`: `Ok(None)` when `--client-publish`
/// allows it (or no key is set: then only that flag can); `Ok(Some)`, the channels the
/// token's `publish` claim covers (whether they cover this one is the caller's
/// `403`); a missing or invalid token is answered `401` here and is `Err`.
pub fn publish(
    app: &SubscriberApp,
    cx: &mut Cx,
    conn: &mut Conn,
    token: Option<&[u8]>,
    channel: &str,
) -> Result<Option<crate::channel::ChannelPatterns>, ()> {
    let Some(key) = &app.config.token_key else {
        return Ok(None);
    };
    if app.config.client_publish.matches(channel) {
        return Ok(None);
    }
    let verified = match token {
        Some(token) => auth::verify(key, token, now()),
        None => Err(AuthError::Missing),
    };
    match verified {
        Ok(grant) => Ok(Some(grant.publish)),
        Err(error) => {
            refuse_401(app, cx, conn, error);
            Err(())
        }
    }
}

/// `401` for a token that is missing or not valid.
fn refuse_401(app: &SubscriberApp, cx: &mut Cx, conn: &mut Conn, error: AuthError) {
    let stats = app.loop_stats();
    let (counter, challenge): (_, &[u8]) = match error {
        AuthError::Missing => (&stats.auth_missing, b"Bearer"),
        AuthError::Expired => (&stats.auth_expired, b"Bearer error=\"invalid_token\""),
        _ => (&stats.auth_invalid, b"Bearer error=\"invalid_token\""),
    };
    bump(counter);
    let text_type = b"text/plain; charset=utf-8";
    let extra: [(&[u8], &[u8]); 1] = [(b"WWW-Authenticate", challenge)];
    let body = error.message().as_bytes();
    respond(app, cx, conn, Status::Unauthorized, text_type, body, &extra);
}

/// When (loop time, ms) a subscription under `grant` ends: at its `exp`.
fn expires_ms(grant: &Grant, now_ms: u64) -> u64 {
    let left_s = grant.expires_at.saturating_sub(now());
    now_ms.saturating_add(left_s.saturating_mul(1000))
}
