//! Signed tokens (PROTOCOL.md, "Authentication"): the key a server verifies them with
//! (`key`), and a token verified into what it grants (`token`): the channels it may
//! subscribe to and publish to, until when. Socket-free; the subscriber application
//! asks it. Tokens are parsed and their claims checked by the `jsonwebtoken` crate,
//! their signatures by `ring` behind jsonwebtoken's provider interface
//! (`ring_verifier`): never by code of ours.

pub mod key;
mod ring_verifier;
pub mod token;

pub use key::{KeyError, TokenKey};

/// The token of an `Authorization` header's value, if its scheme is `Bearer` (in any
/// case).
pub fn bearer_token(value: &[u8]) -> Option<&[u8]> {
    let value = value.trim_ascii();
    let (scheme, rest) = value.split_at(value.len().min(7));
    scheme
        .eq_ignore_ascii_case(b"bearer ")
        .then(|| rest.trim_ascii())
}

/// A secret held in the settings (the admin token): its `Debug` never shows it, so a
/// settings dump cannot put it in a log.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Box<[u8]>);

impl Secret {
    pub fn new(bytes: Box<[u8]>) -> Secret {
        Secret(bytes)
    }

    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret({} bytes)", self.0.len())
    }
}
pub use token::{verify, AuthError, Grant};

#[cfg(test)]
mod tests;

#[cfg(test)]
mod bearer_tests {
    #[test]
    fn bearer_tokens() {
        assert_eq!(super::bearer_token(b"Bearer abc"), Some(&b"abc"[..]));
        assert_eq!(super::bearer_token(b" bearer  abc "), Some(&b"abc"[..]));
        assert_eq!(super::bearer_token(b"Basic abc"), None);
        assert_eq!(super::bearer_token(b"Bear"), None);
    }
}
