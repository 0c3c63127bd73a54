//! A compact JWT verified into a `Grant`: its signature (by the key's one algorithm,
//! so `alg: none` and any other are refused), `exp` (required), `nbf` and `iat` when
//! present, and the `channels` and `publish` claims read as channel patterns. Every
//! refusal is an `AuthError` that says which, without the token.

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{decode, Validation};
use serde::Deserialize;

use super::TokenKey;
use crate::channel::ChannelPatterns;

/// What a valid token grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// `sub`: the user, for log lines about the connection.
    pub subject: Option<Box<str>>,
    /// Channels it may subscribe to.
    pub channels: ChannelPatterns,
    /// Channels it may publish to.
    pub publish: ChannelPatterns,
    /// `exp`, seconds since the epoch.
    pub expires_at: u64,
}

/// Why a token is refused (`401`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthError {
    /// No token was sent.
    Missing,
    /// Not a compact JWT, or claims of the wrong shape.
    Malformed,
    /// The signature does not verify with the key, or the algorithm is not the key's.
    BadSignature,
    /// Past its `exp`.
    Expired,
    /// Before its `nbf`, or issued (`iat`) in the future.
    NotYetValid,
}

impl AuthError {
    /// The line of the `401`'s body.
    pub fn message(self) -> &'static str {
        match self {
            AuthError::Missing => {
                "a token is needed: Authorization: Bearer TOKEN, or ?token=TOKEN\n"
            }
            AuthError::Malformed => "the token is not a JWT with the claims of PROTOCOL.md\n",
            AuthError::BadSignature => "the token's signature does not verify\n",
            AuthError::Expired => "the token has expired\n",
            AuthError::NotYetValid => "the token is not valid yet\n",
        }
    }
}

/// The claims Halley reads.
#[derive(Debug, Deserialize)]
struct Claims {
    exp: u64,
    #[serde(default)]
    iat: Option<u64>,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    channels: Vec<String>,
    #[serde(default)]
    publish: Vec<String>,
}

/// Verifies `token` with `key` at `now` (seconds since the epoch).
pub fn verify(key: &TokenKey, token: &[u8], now: u64) -> Result<Grant, AuthError> {
    if token.is_empty() {
        return Err(AuthError::Missing);
    }
    let mut validation = Validation::new(key.algorithm);
    validation.leeway = 0;
    validation.validate_nbf = true;
    validation.validate_aud = false;
    let data = decode::<Claims>(token, &key.key, &validation).map_err(|e| match e.kind() {
        ErrorKind::InvalidSignature
        | ErrorKind::InvalidAlgorithm
        | ErrorKind::InvalidAlgorithmName
        | ErrorKind::UnsupportedAlgorithm
        | ErrorKind::InvalidEcdsaKey
        | ErrorKind::InvalidEddsaKey
        | ErrorKind::InvalidRsaKey(_)
        | ErrorKind::InvalidKeyFormat => AuthError::BadSignature,
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::ImmatureSignature => AuthError::NotYetValid,
        _ => AuthError::Malformed,
    })?;
    let claims = data.claims;
    if claims.exp <= now {
        // jsonwebtoken reads its own clock; this is the caller's.
        return Err(AuthError::Expired);
    }
    if claims.iat.is_some_and(|iat| iat > now) {
        return Err(AuthError::NotYetValid);
    }
    let patterns = |list: &[String]| {
        ChannelPatterns::from_entries(list.iter().map(String::as_str))
            .map_err(|_| AuthError::Malformed)
    };
    Ok(Grant {
        subject: claims.sub.map(String::into_boxed_str),
        channels: patterns(&claims.channels)?,
        publish: patterns(&claims.publish)?,
        expires_at: claims.exp,
    })
}
