//! A WebSocket client for the integration tests, over the raw `Client`: it sends the
//! handshake and frames byte by byte as a browser would (masked, or not when a test
//! breaks the rules on purpose) and reads the server's frames, every wait bounded.

use super::{Client, Response};

/// The key of RFC 6455's example handshake, and its accept value.
pub const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
pub const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// Opcodes.
pub const TEXT: u8 = 0x1;
pub const BINARY: u8 = 0x2;
pub const CLOSE: u8 = 0x8;
pub const PING: u8 = 0x9;
pub const PONG: u8 = 0xA;

/// A frame from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub fin: bool,
    pub opcode: u8,
    pub payload: Vec<u8>,
}

impl Frame {
    pub fn text(&self) -> String {
        assert_eq!(self.opcode, TEXT, "a text frame: {self:?}");
        String::from_utf8(self.payload.clone()).unwrap()
    }

    /// The code of a close frame.
    pub fn close_code(&self) -> Option<u16> {
        assert_eq!(self.opcode, CLOSE, "a close frame: {self:?}");
        (self.payload.len() >= 2).then(|| u16::from_be_bytes([self.payload[0], self.payload[1]]))
    }
}

/// The handshake request for `path`, with `extra` header lines (each ending `\r\n`).
pub fn handshake_request(path: &str, extra: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
}

/// A client frame: `fin`, `opcode`, `payload`, masked with a fixed key unless `masked`
/// is false.
pub fn client_frame(fin: bool, opcode: u8, payload: &[u8], masked: bool) -> Vec<u8> {
    let mut out = vec![(if fin { 0x80 } else { 0 }) | opcode];
    let mask_bit = if masked { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => out.push(mask_bit | n as u8),
        n if n <= 0xFFFF => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    if masked {
        let mask = [0x37, 0xfa, 0x21, 0x3d];
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    } else {
        out.extend_from_slice(payload);
    }
    out
}

/// A client's WebSocket connection.
pub struct WsClient {
    pub http: Client,
}

impl WsClient {
    /// Connects and upgrades on `path`; asserts `101` with the right accept value.
    pub fn open(http: Client, path: &str) -> WsClient {
        let (client, response) = WsClient::try_open(http, path, "");
        assert_eq!(response.status, 101, "{}", response.raw_head);
        client
    }

    /// Sends a handshake with `extra` header lines and reads the answer's head (and
    /// its body, if it is not `101`).
    pub fn try_open(mut http: Client, path: &str, extra: &str) -> (WsClient, Response) {
        http.send(handshake_request(path, extra).as_bytes());
        let mut response = http.head();
        if response.status == 101 {
            assert_eq!(response.header("Sec-WebSocket-Accept"), Some(ACCEPT));
            assert_eq!(response.header("Upgrade"), Some("websocket"));
            assert_eq!(response.header("Connection"), Some("Upgrade"));
        } else if let Some(len) = response.header("Content-Length") {
            response.body = http.read_exact(len.parse().unwrap());
        }
        (WsClient { http }, response)
    }

    /// Sends a masked text message in one frame.
    pub fn send_text(&mut self, text: &str) {
        self.http
            .send(&client_frame(true, TEXT, text.as_bytes(), true));
    }

    /// Sends a frame as given.
    pub fn send_frame(&mut self, fin: bool, opcode: u8, payload: &[u8], masked: bool) {
        self.http.send(&client_frame(fin, opcode, payload, masked));
    }

    /// Reads the next frame from the server, checking it is unmasked with no
    /// reserved bits.
    pub fn frame(&mut self) -> Frame {
        let head = self.http.read_exact(2);
        assert_eq!(head[0] & 0x70, 0, "no reserved bits");
        assert_eq!(head[1] & 0x80, 0, "server frames are not masked");
        let len = match head[1] & 0x7F {
            126 => u16::from_be_bytes(self.http.read_exact(2).try_into().unwrap()) as usize,
            127 => u64::from_be_bytes(self.http.read_exact(8).try_into().unwrap()) as usize,
            n => n as usize,
        };
        Frame {
            fin: head[0] & 0x80 != 0,
            opcode: head[0] & 0x0F,
            payload: self.http.read_exact(len),
        }
    }

    /// Reads the next frame and returns it as a text message, which must be whole.
    pub fn text(&mut self) -> String {
        let frame = self.frame();
        assert!(frame.fin, "server messages are not fragmented");
        frame.text()
    }

    /// Reads the next text message as JSON.
    pub fn json(&mut self) -> serde_json::Value {
        serde_json::from_str(&self.text()).unwrap()
    }

    /// Reads a close frame with `code`, then the end of the connection.
    pub fn expect_close(&mut self, code: u16) {
        let frame = self.frame();
        assert_eq!(frame.close_code(), Some(code), "{frame:?}");
        let rest = self.http.until_close();
        assert!(rest.is_empty(), "nothing after the close: {rest:?}");
    }
}

impl WsClient {
    /// Reads a close frame the server began with `code`, echoes it as a browser does,
    /// and sees the server close the socket.
    pub fn answer_close(&mut self, code: u16) {
        let frame = self.frame();
        assert_eq!(frame.close_code(), Some(code), "{frame:?}");
        self.send_frame(true, CLOSE, &code.to_be_bytes(), true);
        let rest = self.http.until_close();
        assert!(rest.is_empty(), "nothing after the close: {rest:?}");
    }
}
