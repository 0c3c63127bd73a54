//! `--admin-token-file` (PROTOCOL.md, "Authentication"): every admin request but
//! `GET /healthz` needs `Authorization: Bearer` with the file's token, compared in
//! constant time (the `subtle` crate). Checked on the head, so a refused request's
//! body is never read; refusals are `401` and counted (`admin_auth_refused`).

use subtle::ConstantTimeEq;

use super::{AdminApp, AdminConn};
use crate::engine::{Connection, Cx, HeadVerdict};
use crate::http::{Method, RequestHead, Status};
use crate::stats::bump;

/// The shortest admin token accepted: 16 bytes, 128 bits if random.
pub const MIN_TOKEN_BYTES: usize = 16;

/// The token of a file's content: its bytes, a trailing newline taken off.
pub fn token_of_file(content: &[u8]) -> Result<Box<[u8]>, String> {
    let token = content.strip_suffix(b"\n").unwrap_or(content);
    let token = token.strip_suffix(b"\r").unwrap_or(token);
    if token.len() < MIN_TOKEN_BYTES || token.iter().any(|b| !b.is_ascii_graphic()) {
        return Err(format!(
            "an admin token is at least {MIN_TOKEN_BYTES} printable ASCII bytes without spaces"
        ));
    }
    Ok(token.into())
}

/// Whether the head may go on: no token is set, it is `GET /healthz`, or it carries
/// the token. Answers `401` itself otherwise.
pub fn check(
    app: &AdminApp,
    cx: &mut Cx,
    conn: &mut Connection<AdminConn>,
    head: &RequestHead,
    input: &[u8],
) -> HeadVerdict {
    let Some(expected) = &app.config.admin_token else {
        return HeadVerdict::Accept;
    };
    let target = head.target.of(input);
    let health = matches!(head.method, Method::Get | Method::Head)
        && (target == b"/healthz" || target.starts_with(b"/healthz?"));
    let given = head
        .authorization
        .map(|span| span.of(input))
        .and_then(|value| {
            let value = value.trim_ascii();
            let (scheme, rest) = value.split_at(value.len().min(7));
            scheme
                .eq_ignore_ascii_case(b"bearer ")
                .then(|| rest.trim_ascii())
        });
    let matches = given.is_some_and(|given| bool::from(given.ct_eq(expected.bytes())));
    if health || matches {
        return HeadVerdict::Accept;
    }
    bump(&app.stats.admin.auth_refused);
    conn.http.keep_alive = false;
    let headers: [(&[u8], &[u8]); 2] = [
        (b"Cache-Control", b"no-store"),
        (b"WWW-Authenticate", b"Bearer"),
    ];
    let text = b"the admin port needs Authorization: Bearer with the admin token\n";
    conn.respond(
        cx,
        Status::Unauthorized,
        b"text/plain; charset=utf-8",
        &headers,
        text,
    );
    HeadVerdict::Answered
}

#[cfg(test)]
mod tests {
    use super::token_of_file;

    #[test]
    fn token_files() {
        assert_eq!(
            &*token_of_file(b"0123456789abcdef\n").unwrap(),
            b"0123456789abcdef"
        );
        assert!(token_of_file(b"short\n").is_err());
        assert!(token_of_file(b"0123456789 abcdef").is_err());
    }
}
