//! Signed tokens (PROTOCOL.md, "Authentication"): the key a server verifies them with
//! (`key`), and a token verified into what it grants (`token`): the channels it may
//! subscribe to and publish to, until when. Socket-free; the subscriber application
//! asks it. Signatures are checked by the `jsonwebtoken` crate, never here.

pub mod key;
pub mod token;

pub use key::{KeyError, TokenKey};

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
