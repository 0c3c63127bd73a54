//! A connection to the server under test: plain, or TLS (`https://`, `wss://`) with
//! rustls on the same non-blocking socket. Reads drain the socket each time (so an
//! edge-triggered poll never leaves records behind in it) and hand back plaintext;
//! writes are buffered by rustls until the handshake is done.

use std::io::{self, ErrorKind, Read, Write};
use std::sync::Arc;

use mio::net::TcpStream;
use rustls::pki_types::ServerName;
use rustls::ClientConnection;

/// A connection, plain or TLS.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream>),
}

/// A TLS client on a non-blocking socket.
pub struct TlsStream {
    socket: TcpStream,
    tls: ClientConnection,
    /// The server has closed the TCP connection.
    eof: bool,
}

impl Stream {
    /// `socket` as it is, or under TLS with `config` (the handshake starts with the
    /// first write or read).
    pub fn new(socket: TcpStream, tls: Option<&Arc<rustls::ClientConfig>>) -> io::Result<Stream> {
        let Some(config) = tls else {
            return Ok(Stream::Plain(socket));
        };
        let name = ServerName::try_from("localhost").expect("a name");
        let tls = ClientConnection::new(config.clone(), name).map_err(io::Error::other)?;
        Ok(Stream::Tls(Box::new(TlsStream {
            socket,
            tls,
            eof: false,
        })))
    }

    /// The socket, to register with a poll.
    pub fn socket(&mut self) -> &mut TcpStream {
        match self {
            Stream::Plain(socket) => socket,
            Stream::Tls(tls) => &mut tls.socket,
        }
    }
}

impl TlsStream {
    /// Writes the records rustls has, until the socket takes no more (or is not
    /// connected yet: the next readiness event comes back here).
    fn push(&mut self) -> io::Result<()> {
        while self.tls.wants_write() {
            match self.tls.write_tls(&mut self.socket) {
                Ok(_) => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::NotConnected) => {
                    break
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Reads every record the socket has, then hands back plaintext.
    fn read_plain(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.push()?;
        while !self.eof {
            match self.tls.read_tls(&mut self.socket) {
                Ok(0) => self.eof = true,
                Ok(_) => {
                    self.tls
                        .process_new_packets()
                        .map_err(|e| io::Error::new(ErrorKind::InvalidData, e))?;
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::NotConnected) => {
                    break
                }
                Err(e) => return Err(e),
            }
        }
        self.push()?;
        match self.tls.reader().read(buf) {
            Ok(n) => Ok(n),
            Err(e) if e.kind() == ErrorKind::WouldBlock && self.eof => Ok(0),
            // Closed without close_notify: a close all the same, for a load tester.
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => Ok(0),
            Err(e) => Err(e),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(socket) => socket.read(buf),
            Stream::Tls(tls) => tls.read_plain(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(socket) => socket.write(buf),
            Stream::Tls(tls) => {
                tls.tls.writer().write_all(buf)?;
                tls.push()?;
                Ok(buf.len())
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A client configuration that trusts the certificate in `path` (PEM) and resumes no
/// session (every connection pays a full handshake, the cost measured), with rustls's
/// ring provider as the server has it, offering TLS 1.3 only.
pub fn client_config(path: &str) -> Result<Arc<rustls::ClientConfig>, String> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("{path}: {e}"))?
    {
        roots
            .add(cert.map_err(|e| format!("{path}: {e}"))?)
            .map_err(|e| format!("{path}: {e}"))?;
    }
    // X25519 first, as browsers and OpenSSL (ring's default puts P-384 first).
    use rustls::crypto::ring::kx_group::{SECP256R1, SECP384R1, X25519};
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::CryptoProvider {
        kx_groups: vec![X25519, SECP256R1, SECP384R1],
        ..rustls::crypto::ring::default_provider()
    });
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.resumption = rustls::client::Resumption::disabled();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
