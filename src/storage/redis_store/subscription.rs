//! A subscription to announcements on one Redis connection: `SUBSCRIBE` to the one
//! announcement channel of a single Redis, or `SSUBSCRIBE` to the shard channels of a
//! cluster shard's slots. Set up with blocking calls, each bounded by the timeout; then
//! non-blocking, registered with the listener's `mio::Poll`, read as far as it goes.
//! A PING checks a silent link, or marks a point in the announcements (`barrier.rs`).
//!
//! It owns its socket and reads replies with the redis crate's parser, which keeps a
//! reply cut short by the wait and goes on with it at the next read. The crate's own
//! connection is not used here: after a read that timed out it skips the next reply
//! (taking it for the late answer), and its `PubSub` reads `message` only, while a
//! shard's announcements come as `smessage`.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use mio::{Interest, Registry, Token};
use redis::{ConnectionAddr, IntoConnectionInfo, Parser, Value};

use super::RedisError;

/// How announcements are subscribed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `SUBSCRIBE` / `message` (one Redis).
    Plain,
    /// `SSUBSCRIBE` / `smessage` (a cluster shard).
    Sharded,
}

/// What came on the subscription.
#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    /// A message's payload.
    Message(Vec<u8>),
    /// The answer to a PING, with its message.
    Pong(Vec<u8>),
    /// Nothing more for now.
    Nothing,
}

/// A connection in subscribed state.
pub struct Subscription {
    socket: Wire<mio::net::TcpStream>,
    parser: Parser,
    mode: Mode,
}

/// The blocking connection while it is set up.
struct Setup {
    socket: Wire<TcpStream>,
    parser: Parser,
}

/// The subscription's bytes: on the socket, or TLS over it (`rediss://`).
enum Wire<S: Read + Write> {
    Plain(S),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, S>>),
}

impl<S: Read + Write> Wire<S> {
    fn socket_mut(&mut self) -> &mut S {
        match self {
            Wire::Plain(socket) => socket,
            Wire::Tls(stream) => &mut stream.sock,
        }
    }

    /// The same connection (and TLS session) over another kind of socket.
    fn map<T: Read + Write>(self, change: impl FnOnce(S) -> T) -> Wire<T> {
        match self {
            Wire::Plain(socket) => Wire::Plain(change(socket)),
            Wire::Tls(stream) => {
                let rustls::StreamOwned { conn, sock } = *stream;
                Wire::Tls(Box::new(rustls::StreamOwned::new(conn, change(sock))))
            }
        }
    }
}

impl<S: Read + Write> Read for Wire<S> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Wire::Plain(socket) => socket.read(buf),
            Wire::Tls(stream) => stream.read(buf),
        }
    }
}

impl<S: Read + Write> Write for Wire<S> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Wire::Plain(socket) => socket.write(buf),
            Wire::Tls(stream) => stream.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Wire::Plain(socket) => socket.flush(),
            Wire::Tls(stream) => stream.flush(),
        }
    }
}

/// TLS to Redis: the certificates the system trusts (or those of SSL_CERT_FILE), as
/// the redis crate's own connections trust them; ring, as everywhere in Halley.
fn tls_to(host: &str, socket: TcpStream) -> Result<Wire<TcpStream>, RedisError> {
    let refused = |e: String| RedisError::Refused(format!("TLS to {host}: {e}"));
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    if roots.is_empty() {
        return Err(refused(
            "no trusted certificate (the system's, or SSL_CERT_FILE)".into(),
        ));
    }
    // ring, as for Halley's own TLS (`tls/certs.rs` says why it is deprecated).
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| refused(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from(host.to_string())
        .map_err(|e| refused(e.to_string()))?;
    let session = rustls::ClientConnection::new(Arc::new(config), name)
        .map_err(|e| refused(e.to_string()))?;
    // The handshake happens with the first bytes sent, within the socket's timeouts.
    Ok(Wire::Tls(Box::new(rustls::StreamOwned::new(
        session, socket,
    ))))
}

impl Subscription {
    /// Connects to `url` (`redis://[user:password@]host:port`), authenticates, and
    /// subscribes to `channels`, every step bounded by `timeout`. On a shard, each
    /// channel is subscribed apart (`SSUBSCRIBE` takes channels of one slot only),
    /// all sent at once. Then registered with `registry` under `token`.
    pub fn open(
        url: &str,
        channels: &[String],
        mode: Mode,
        timeout: Duration,
        registry: (&Registry, Token),
    ) -> Result<Subscription, RedisError> {
        let info = url
            .into_connection_info()
            .map_err(|e| RedisError::Refused(e.to_string()))?;
        let (host, port, tls) = match info.addr() {
            ConnectionAddr::Tcp(host, port) => (host, *port, false),
            ConnectionAddr::TcpTls {
                host,
                port,
                insecure: false,
                ..
            } => (host, *port, true),
            _ => {
                return Err(RedisError::Refused(format!(
                    "{url}: TCP, or TLS that checks the certificate, only"
                )))
            }
        };
        let socket = connect(host, port, timeout)?;
        socket.set_read_timeout(Some(timeout))?;
        socket.set_write_timeout(Some(timeout))?;
        socket.set_nodelay(true)?;
        let socket = match tls {
            true => tls_to(host, socket)?,
            false => Wire::Plain(socket),
        };
        let mut subscription = Setup {
            socket,
            parser: Parser::new(),
        };
        let settings = info.redis_settings();
        if let Some(password) = settings.password() {
            let mut auth = redis::cmd("AUTH");
            if let Some(user) = settings.username() {
                auth.arg(user);
            }
            subscription.send(&auth.arg(password).get_packed_command())?;
            match subscription.reply()? {
                Value::Okay => {}
                other => return Err(RedisError::Refused(format!("AUTH answered {other:?}"))),
            }
        }
        let command = match mode {
            Mode::Plain => "SUBSCRIBE",
            Mode::Sharded => "SSUBSCRIBE",
        };
        let mut packed = Vec::new();
        for channel in channels {
            packed.extend(redis::cmd(command).arg(channel).get_packed_command());
        }
        subscription.send(&packed)?;
        let confirmation = command.to_ascii_lowercase();
        for _ in channels {
            match subscription.reply()? {
                Value::Array(parts) if matches!(parts.first(), Some(Value::BulkString(kind)) if *kind == confirmation.as_bytes()) =>
                    {}
                other => return Err(RedisError::Refused(format!("{command} answered {other:?}"))),
            }
        }
        let Setup { mut socket, parser } = subscription;
        socket.socket_mut().set_nonblocking(true)?;
        let mut socket = socket.map(mio::net::TcpStream::from_std);
        let (registry, token) = registry;
        registry.register(socket.socket_mut(), token, Interest::READABLE)?;
        Ok(Subscription {
            socket,
            parser,
            mode,
        })
    }

    /// The next message if one has come whole; `Nothing` once the socket has no more
    /// for now (the poll says when it has).
    pub fn try_receive(&mut self) -> Result<Received, RedisError> {
        match self.parser.parse_value(&mut self.socket) {
            Ok(value) => read(value, self.mode),
            Err(e) if e.is_timeout() => Ok(Received::Nothing),
            Err(e) => Err(e.into()),
        }
    }

    /// Sends a PING with `message`; its answer comes as `Received::Pong`, after every
    /// message Redis sent before it.
    pub fn ping(&mut self, message: &[u8]) -> Result<(), RedisError> {
        let ping = redis::cmd("PING").arg(message).get_packed_command();
        // A few dozen bytes: a socket that cannot take them now is as good as broken.
        self.socket
            .write_all(&ping)
            .map_err(|e| RedisError::Unavailable(e.to_string()))
    }
}

impl Setup {
    fn send(&mut self, bytes: &[u8]) -> Result<(), RedisError> {
        self.socket
            .write_all(bytes)
            .map_err(|e| RedisError::Unavailable(e.to_string()))
    }

    /// A reply within the socket's timeout.
    fn reply(&mut self) -> Result<Value, RedisError> {
        Ok(self.parser.parse_value(&mut self.socket)?)
    }
}

/// A connection to the first address of `host` that takes one within `timeout`.
fn connect(host: &str, port: u16, timeout: Duration) -> Result<TcpStream, RedisError> {
    let mut last = RedisError::Unavailable(format!("{host}: no address"));
    let addresses = (host, port)
        .to_socket_addrs()
        .map_err(|e| RedisError::Unavailable(format!("{host}: {e}")))?;
    for address in addresses {
        match TcpStream::connect_timeout(&address, timeout) {
            Ok(socket) => return Ok(socket),
            Err(e) => last = RedisError::Unavailable(format!("{address}: {e}")),
        }
    }
    Err(last)
}

/// A reply in subscribed state: a message, a pong, or what ends the subscription.
fn read(value: Value, mode: Mode) -> Result<Received, RedisError> {
    let message_kind: &[u8] = match mode {
        Mode::Plain => b"message",
        Mode::Sharded => b"smessage",
    };
    let Value::Array(mut parts) = value else {
        return Err(RedisError::Refused(format!(
            "a reply that is no message: {value:?}"
        )));
    };
    let kind = match parts.first() {
        Some(Value::BulkString(kind)) => kind.clone(),
        _ => return Err(RedisError::Refused("a message of no kind".into())),
    };
    if kind == message_kind && parts.len() == 3 {
        return match parts.pop() {
            Some(Value::BulkString(payload)) => Ok(Received::Message(payload)),
            _ => Err(RedisError::Refused("a message with no payload".into())),
        };
    }
    if kind == b"pong" && parts.len() == 2 {
        return match parts.pop() {
            Some(Value::BulkString(message)) => Ok(Received::Pong(message)),
            _ => Err(RedisError::Refused("a pong with no message".into())),
        };
    }
    // `sunsubscribe`: the shard gave the slot up (a resharding, or it became a
    // replica); the listener subscribes again where the slot now is.
    Err(RedisError::Unavailable(format!(
        "the subscription ended ({})",
        String::from_utf8_lossy(&kind)
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Gives its parts one read at a time, a timeout between each.
    struct Trickle {
        parts: Vec<&'static [u8]>,
        timed_out: bool,
    }

    impl std::io::Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if !std::mem::replace(&mut self.timed_out, true) {
                return Err(std::io::ErrorKind::WouldBlock.into());
            }
            self.timed_out = false;
            let Some(part) = self.parts.first_mut() else {
                return Ok(0);
            };
            let n = part.len().min(buf.len());
            buf[..n].copy_from_slice(&part[..n]);
            *part = &part[n..];
            if part.is_empty() {
                self.parts.remove(0);
            }
            Ok(n)
        }
    }

    #[test]
    fn a_reply_cut_by_a_timeout_is_finished_at_the_next_read() {
        let mut trickle = Trickle {
            parts: vec![
                b"*3\r\n$8\r\nsmes",
                b"sage\r\n$1\r\nc\r\n$2\r",
                b"\nhi\r\n*2\r\n$4\r\npong\r\n$1\r\nx\r\n",
            ],
            timed_out: false,
        };
        let mut parser = Parser::new();
        let mut values = Vec::new();
        let mut timeouts = 0;
        while values.len() < 2 && timeouts < 20 {
            match parser.parse_value(&mut trickle) {
                Ok(value) => values.push(read(value, Mode::Sharded).unwrap()),
                Err(e) => {
                    assert!(e.is_timeout(), "{e}");
                    timeouts += 1;
                }
            }
        }
        assert_eq!(
            values,
            [
                Received::Message(b"hi".to_vec()),
                Received::Pong(b"x".to_vec())
            ]
        );
        assert!(timeouts >= 3);
    }

    fn bulk(text: &str) -> Value {
        Value::BulkString(text.as_bytes().to_vec())
    }

    #[test]
    fn messages_of_the_mode_are_read() {
        let message = Value::Array(vec![bulk("smessage"), bulk("c"), bulk("payload")]);
        assert_eq!(
            read(message, Mode::Sharded).unwrap(),
            Received::Message(b"payload".to_vec())
        );
        let message = Value::Array(vec![bulk("message"), bulk("c"), bulk("p")]);
        assert_eq!(
            read(message, Mode::Plain).unwrap(),
            Received::Message(b"p".to_vec())
        );
        let pong = Value::Array(vec![bulk("pong"), bulk("b7")]);
        assert_eq!(
            read(pong, Mode::Sharded).unwrap(),
            Received::Pong(b"b7".to_vec())
        );
    }

    #[test]
    fn anything_else_ends_the_subscription() {
        for value in [
            Value::Array(vec![bulk("sunsubscribe"), bulk("c"), Value::Int(0)]),
            Value::Array(vec![bulk("message"), bulk("c"), bulk("p")]),
            Value::Array(vec![bulk("smessage"), bulk("c")]),
            Value::Array(vec![]),
            Value::Int(3),
            Value::Nil,
        ] {
            assert!(read(value.clone(), Mode::Sharded).is_err(), "{value:?}");
        }
    }
}
