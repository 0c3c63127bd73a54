//! WebSocket (RFC 6455) as bytes, apart from any socket, as `http` is for HTTP/1.1:
//! the handshake's checks and accept key (`handshake`), the close codes PROTOCOL.md
//! uses (`close`), reading client frames into messages with every limit and
//! violation (`read`), and writing server frames (`write`). The connection engine
//! drives it over its buffers; it owns no buffer of a connection but the pieces of a
//! fragmented message.

pub mod close;
pub mod handshake;
pub mod read;
pub mod write;

#[cfg(test)]
mod tests;

/// A frame's opcode (RFC 6455 section 5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opcode {
    Continuation,
    Text,
    Binary,
    Close,
    Ping,
    Pong,
}

impl Opcode {
    /// The opcode of the low four bits of a frame's first byte; `None` for the ten
    /// reserved ones.
    pub fn from_bits(bits: u8) -> Option<Opcode> {
        Some(match bits {
            0x0 => Opcode::Continuation,
            0x1 => Opcode::Text,
            0x2 => Opcode::Binary,
            0x8 => Opcode::Close,
            0x9 => Opcode::Ping,
            0xA => Opcode::Pong,
            _ => return None,
        })
    }

    /// The four bits of this opcode.
    pub fn bits(self) -> u8 {
        match self {
            Opcode::Continuation => 0x0,
            Opcode::Text => 0x1,
            Opcode::Binary => 0x2,
            Opcode::Close => 0x8,
            Opcode::Ping => 0x9,
            Opcode::Pong => 0xA,
        }
    }

    /// Close, ping and pong: never fragmented, at most 125 bytes of payload.
    pub fn is_control(self) -> bool {
        matches!(self, Opcode::Close | Opcode::Ping | Opcode::Pong)
    }
}
