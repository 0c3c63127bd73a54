//! A backend for Pushpin, the peer that needs one: Pushpin forwards each subscriber's
//! request here and holds the connection as this answer tells it (GRIP): a stream on
//! the channel named by the path's last segment. Messages are then published to
//! Pushpin's own publish endpoint.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};

use socket2::{Domain, Socket, Type};

/// Pending connections the listener keeps: Pushpin forwards a burst of subscribers as
/// a burst of connections, and the standard library's 128 overflowed, which Pushpin
/// answered with `502 Error while proxying to origin`.
const BACKLOG: i32 = 4096;

/// Serves until killed: one short-lived thread per request. Pushpin holds the
/// subscriber's connection itself once it has the GRIP answer, so this connection is
/// closed after the answer (keeping it would keep a thread per held subscriber).
pub fn serve(listen: &str) -> std::io::Result<()> {
    let addr: SocketAddr = listen
        .parse()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    let listener: TcpListener = socket.into();
    eprintln!("grip-origin: listening on {}", listener.local_addr()?);
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stream.try_clone()?);
            let mut writer = stream;
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 {
                return Ok::<(), std::io::Error>(());
            }
            let path = line.split(' ').nth(1).unwrap_or("/").to_string();
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header)? == 0 || header == "\r\n" {
                    break;
                }
            }
            let channel = path
                .split('?')
                .next()
                .unwrap_or("")
                .rsplit('/')
                .next()
                .unwrap_or("lt0")
                .to_string();
            write!(
                writer,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nGrip-Hold: stream\r\nGrip-Channel: {channel}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
        });
    }
    Ok(())
}
