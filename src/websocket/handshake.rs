//! The opening handshake (RFC 6455 section 4.2): the checks of `Sec-WebSocket-Key` and
//! `Sec-WebSocket-Version`, the accept key, and the one subprotocol Halley speaks.
//! Whether a request asks to upgrade at all is read with its head
//! (`http::RequestHead::asks_websocket`).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use sha1::{Digest, Sha1};

/// The GUID every server appends to the client's key (RFC 6455 section 1.3).
const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The subprotocol Halley echoes when a client offers it.
pub const SUBPROTOCOL: &[u8] = b"halley.v1";

/// Bytes of a `Sec-WebSocket-Accept` value: 20 bytes of SHA-1 in base64.
pub const ACCEPT_LEN: usize = 28;

/// Why a handshake is refused (`400` with `Sec-WebSocket-Version: 13`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeError {
    /// No `Sec-WebSocket-Key`, or one that is not 16 bytes in base64.
    BadKey,
    /// No `Sec-WebSocket-Version`, or one other than 13.
    BadVersion,
}

impl HandshakeError {
    /// A line for the body of the 400, saying what to fix.
    pub fn message(self) -> &'static str {
        match self {
            HandshakeError::BadKey => "Sec-WebSocket-Key must be 16 bytes in base64\n",
            HandshakeError::BadVersion => "Sec-WebSocket-Version must be 13\n",
        }
    }
}

/// Checks the key and the version, and returns the `Sec-WebSocket-Accept` value.
pub fn accept(
    key: Option<&[u8]>,
    version: Option<&[u8]>,
) -> Result<[u8; ACCEPT_LEN], HandshakeError> {
    if version.map(<[u8]>::trim_ascii) != Some(b"13") {
        return Err(HandshakeError::BadVersion);
    }
    let key = key.map(<[u8]>::trim_ascii).ok_or(HandshakeError::BadKey)?;
    let mut nonce = [0u8; 18];
    match STANDARD.decode_slice(key, &mut nonce) {
        Ok(16) => {}
        _ => return Err(HandshakeError::BadKey),
    }
    Ok(accept_key(key))
}

/// `Sec-WebSocket-Accept` for `key`: base64 of the SHA-1 of the key and the GUID.
pub fn accept_key(key: &[u8]) -> [u8; ACCEPT_LEN] {
    let mut sha = Sha1::new();
    sha.update(key);
    sha.update(GUID);
    let digest = sha.finalize();
    let mut out = [0u8; ACCEPT_LEN];
    let written = STANDARD
        .encode_slice(digest, &mut out)
        .expect("20 bytes are 28 in base64");
    debug_assert_eq!(written, ACCEPT_LEN);
    out
}

/// Whether `Sec-WebSocket-Protocol` (a comma list, maybe repeated and joined) offers
/// `halley.v1`, exactly (subprotocol names are case-sensitive); it is then echoed, and
/// any other is ignored.
pub fn offers_subprotocol(value: Option<&[u8]>) -> bool {
    value.is_some_and(|value| {
        value
            .split(|&b| b == b',')
            .any(|item| item.trim_ascii() == SUBPROTOCOL)
    })
}
