//! The close codes Halley sends and accepts (RFC 6455 section 7.4, and PROTOCOL.md's
//! "WebSocket"), and which codes a client may send in its own close.

/// Every frame of every channel was delivered, up to their close markers.
pub const NORMAL: u16 = 1000;
/// The server is shutting down.
pub const GOING_AWAY: u16 = 1001;
/// The client broke the protocol: an unmasked frame, a binary message, reserved bits,
/// a fragmented or oversized control frame, an unknown opcode.
pub const PROTOCOL_ERROR: u16 = 1002;
/// A text message (or a close reason) that is not UTF-8.
pub const NOT_UTF8: u16 = 1007;
/// A slow reader: `--max-pending` or `--write-timeout`.
pub const POLICY: u16 = 1008;
/// A client message over `--max-message` plus the publish envelope's room.
pub const TOO_BIG: u16 = 1009;
/// The subscription's token expired (PROTOCOL.md, "Authentication").
pub const TOKEN_EXPIRED: u16 = 4001;

/// Whether a client may send `code` in a close frame: the codes RFC 6455 defines for
/// use on the wire, the registered range and the private range. 1005, 1006 and 1015
/// are for reports only and never sent; 1004 and 1016–2999 are reserved.
pub fn is_sendable(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}
