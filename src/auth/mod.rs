//! Signed tokens (PROTOCOL.md, "Authentication"): the key a server verifies them with
//! (`key`), and a token verified into what it grants (`token`): the channels it may
//! subscribe to and publish to, until when. Socket-free; the subscriber application
//! asks it. Signatures are checked by the `jsonwebtoken` crate, never here.

pub mod key;
pub mod token;

pub use key::{KeyError, TokenKey};
pub use token::{verify, AuthError, Grant};

#[cfg(test)]
mod tests;
