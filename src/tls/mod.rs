//! TLS on both ports, with rustls driven by our own loops (no runtime, no thread per
//! connection):
//!
//! - `certs.rs`: a certificate chain and key read from PEM files, the rustls
//!   `ServerConfig` built on them (TLS 1.2 and 1.3, ALPN `http/1.1`), and the reload
//!   that SIGHUP asks for: new handshakes use the new pair, held connections go on, a
//!   pair that fails to load leaves the old one in place.
//! - `session.rs`: one TLS connection over a non-blocking socket, on rustls's
//!   unbuffered API so that the buffers are ours: an idle connection holds none.
//!
//! The engine's `ByteLayer::Tls` holds a session; nothing above it sees TLS.

mod certs;
mod session;

pub use certs::{TlsError, TlsServer};
pub use session::TlsSession;
