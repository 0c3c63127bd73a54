//! Where requests go: a URL template (`http://127.0.0.1:8080/sub/{channel}?t=stream`,
//! or `ws://` for a WebSocket handshake on that path; `https://` and `wss://` the same
//! over TLS, trusting the certificate in the file `HALLEY_LOAD_CACERT` names, which
//! worker processes inherit) turned into an address, a Host
//! header and a path per channel, and the loopback
//! source addresses connections are spread over (each source address has its own
//! range of ephemeral ports, so more of them hold more connections).

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;

/// The environment variable naming the certificate (PEM) `https://` targets trust.
pub const CACERT_VAR: &str = "HALLEY_LOAD_CACERT";

/// A parsed `http://` URL template.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub host: String,
    /// Path and query, with `{channel}` where the channel goes.
    pub path: String,
    /// `ws://`: the GET is a WebSocket handshake (answered `101`), and the server's
    /// frames follow it unmasked, so markers are found in them as in any framing.
    pub websocket: bool,
    /// `https://` or `wss://`: the client configuration to speak TLS with.
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

/// The handshake's headers (RFC 6455's example key: the answer is not checked).
const WEBSOCKET_HEADERS: &str = "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";

impl Target {
    pub fn parse(url: &str) -> Result<Target, String> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| format!("{url}: not a URL"))?;
        let (websocket, secure) = match scheme {
            "http" => (false, false),
            "ws" => (true, false),
            "https" => (false, true),
            "wss" => (true, true),
            _ => {
                return Err(format!(
                    "{url}: only http://, ws://, https:// and wss:// URLs"
                ))
            }
        };
        let tls = if secure {
            let path = std::env::var(CACERT_VAR)
                .map_err(|_| format!("{url}: set {CACERT_VAR} to the certificate to trust"))?;
            Some(crate::stream::client_config(&path)?)
        } else {
            None
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let addr = authority
            .to_socket_addrs()
            .map_err(|e| format!("{authority}: {e}"))?
            .next()
            .ok_or_else(|| format!("{authority}: no address"))?;
        Ok(Target {
            addr,
            host: authority.to_string(),
            path: path.to_string(),
            websocket,
            tls,
        })
    }

    /// Several targets, comma-separated (the servers of a cluster); one at least.
    pub fn parse_list(urls: &str) -> Result<Vec<Target>, String> {
        urls.split(',').map(Target::parse).collect()
    }

    /// The path for `channel`.
    pub fn path_for(&self, channel: &str) -> String {
        self.path.replace("{channel}", channel)
    }

    /// A GET request for `channel`, with `extra` header lines (each ending in CRLF);
    /// a WebSocket handshake for a `ws://` target.
    pub fn get(&self, channel: &str, keep_alive: bool, extra: &str) -> Vec<u8> {
        let connection = match (self.websocket, keep_alive) {
            (true, _) => WEBSOCKET_HEADERS,
            (false, true) => "",
            (false, false) => "Connection: close\r\n",
        };
        format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\n{connection}{extra}\r\n",
            self.path_for(channel),
            self.host,
        )
        .into_bytes()
    }

    /// The status that says a subscriber is in place.
    pub fn held_status(&self) -> u16 {
        if self.websocket {
            101
        } else {
            200
        }
    }
}

/// The name of channel `i` of `count`.
pub fn channel_name(i: usize, count: usize) -> String {
    format!("lt{}", i % count.max(1))
}

/// Loopback source addresses to connect from, used in turn.
#[derive(Debug, Clone)]
pub struct Sources {
    addrs: Vec<IpAddr>,
    next: usize,
}

impl Sources {
    /// `count` addresses from 127.0.0.2 up, when the target is on loopback; otherwise
    /// the kernel chooses.
    pub fn new(target: &SocketAddr, count: usize, offset: usize) -> Sources {
        let addrs = if target.ip().is_loopback() && count > 0 {
            (0..count)
                .map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, (i / 250) as u8, (2 + i % 250) as u8)))
                .collect()
        } else {
            Vec::new()
        };
        Sources {
            addrs,
            next: offset,
        }
    }

    /// Opens a non-blocking connection to `to` from the next source address.
    pub fn connect(&mut self, to: SocketAddr) -> io::Result<mio::net::TcpStream> {
        use socket2::{Domain, Socket, Type};
        let socket = Socket::new(Domain::for_address(to), Type::STREAM, None)?;
        socket.set_nonblocking(true)?;
        socket.set_tcp_nodelay(true)?;
        if !self.addrs.is_empty() {
            let from = self.addrs[self.next % self.addrs.len()];
            self.next += 1;
            // The port is chosen at connect, for the whole address pair: without
            // this, bind picks one unique to the source address alone, and about
            // 28,000 connections (TIME_WAIT included) use up an address.
            no_port_at_bind(&socket)?;
            socket.bind(&SocketAddr::new(from, 0).into())?;
        }
        match socket.connect(&to.into()) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
            Err(e) => return Err(e),
        }
        Ok(mio::net::TcpStream::from_std(socket.into()))
    }
}

/// Sets IP_BIND_ADDRESS_NO_PORT on `socket`.
fn no_port_at_bind(socket: &socket2::Socket) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let on: libc::c_int = 1;
    // SAFETY: setsockopt reads one c_int we own, for a descriptor `socket` owns.
    let done = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if done == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Nanoseconds of CLOCK_MONOTONIC: one clock for every process of the machine, so a
/// publisher's stamp can be compared with a subscriber's arrival time.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates() {
        let t = Target::parse("http://127.0.0.1:8080/sub/{channel}?t=stream").unwrap();
        assert_eq!(t.addr, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(t.path_for("lt3"), "/sub/lt3?t=stream");
        assert_eq!(
            String::from_utf8(t.get("a", false, "Accept: x\r\n")).unwrap(),
            "GET /sub/a?t=stream HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nConnection: close\r\nAccept: x\r\n\r\n"
        );
        assert!(Target::parse("ftp://x").is_err());
        let list = Target::parse_list("http://127.0.0.1:1/a,http://127.0.0.1:2/b").unwrap();
        assert_eq!((list[0].addr.port(), list[1].path.as_str()), (1, "/b"));
        let ws = Target::parse("ws://127.0.0.1:8080/sub/{channel}?t=ws").unwrap();
        let handshake = String::from_utf8(ws.get("a", false, "")).unwrap();
        assert!(handshake.starts_with("GET /sub/a?t=ws HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"));
        assert!(handshake.ends_with("Sec-WebSocket-Version: 13\r\n\r\n"));
        assert_eq!((ws.held_status(), t.held_status()), (101, 200));
        assert_eq!(channel_name(7, 3), "lt1");
    }

    #[test]
    fn sources_rotate_over_loopback() {
        let mut s = Sources::new(&"127.0.0.1:1".parse().unwrap(), 3, 0);
        assert_eq!(s.addrs.len(), 3);
        assert_eq!(s.addrs[0].to_string(), "127.0.0.2");
        s.next = 4;
        assert_eq!(s.addrs[s.next % 3].to_string(), "127.0.0.3");
    }
}
