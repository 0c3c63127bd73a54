//! A port's certificate and key, and the rustls configuration built on them.
//!
//! The pair is behind a resolver that rustls asks once per handshake; a reload swaps
//! the pair it hands out, so connections already open keep the keys they agreed and
//! new ones get the new pair. The lock is held only to clone an `Arc`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;

/// Why a certificate and key could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsError(pub String);

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TlsError {}

/// The pair rustls hands to each new handshake.
#[derive(Debug)]
struct Reloadable {
    current: RwLock<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for Reloadable {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        // A poisoned lock still holds a whole `Arc` (the writer only assigns one).
        let current = self.current.read().unwrap_or_else(|e| e.into_inner());
        Some(current.clone())
    }
}

/// A port's TLS: the configuration each new connection starts from, and the files
/// to reload it from. Clones share the pair.
#[derive(Debug, Clone)]
pub struct TlsServer {
    config: Arc<ServerConfig>,
    resolver: Arc<Reloadable>,
    provider: Arc<CryptoProvider>,
    cert_path: PathBuf,
    key_path: PathBuf,
}

impl TlsServer {
    /// Reads the chain in `cert_path` and the key in `key_path` (PEM: an RSA, ECDSA or
    /// Ed25519 key) and builds the configuration: TLS 1.3 and 1.2, ALPN `http/1.1`,
    /// stateless session tickets.
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<TlsServer, TlsError> {
        // ring, not aws-lc-rs: a small, well-kept build (no C library of a megabyte to
        // compile in CI). rustls marks it deprecated because it has no post-quantum key
        // exchange; X25519 and the NIST curves are what it offers (docs/protocol.md).
        //
        // Key exchange in the order browsers and OpenSSL prefer, X25519 first. rustls
        // takes the group of a key share the client sent when it can (no extra round
        // trip), so this order decides only among several shares, or which group a
        // retry asks for; ring's default would ask for P-384, which ring computes
        // without assembly (a full handshake cost 950 µs of server CPU over P-384
        // against 165 µs over X25519, measured with halley-load).
        #[allow(deprecated)]
        let provider = Arc::new(CryptoProvider {
            kx_groups: key_exchange_groups(),
            ..rustls::crypto::ring::default_provider()
        });
        let pair = load_pair(&provider, cert_path, key_path)?;
        let resolver = Arc::new(Reloadable {
            current: RwLock::new(pair),
        });
        let mut config = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| TlsError(format!("TLS versions: {e}")))?
            .with_no_client_auth()
            .with_cert_resolver(resolver.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        // Resumption without a cache shared by the loops: tickets sealed with keys
        // that rotate, as nginx does with OpenSSL's defaults.
        config.ticketer = rustls::crypto::ring::Ticketer::new()
            .map_err(|e| TlsError(format!("session tickets: {e}")))?;
        Ok(TlsServer {
            config: Arc::new(config),
            resolver,
            provider,
            cert_path: cert_path.to_path_buf(),
            key_path: key_path.to_path_buf(),
        })
    }

    /// Reads the pair again from its files. On success new handshakes use it; on
    /// failure the pair in use stays, and the error says why.
    pub fn reload(&self) -> Result<(), TlsError> {
        let pair = load_pair(&self.provider, &self.cert_path, &self.key_path)?;
        *self
            .resolver
            .current
            .write()
            .unwrap_or_else(|e| e.into_inner()) = pair;
        Ok(())
    }

    /// The certificate file (for log lines).
    pub fn cert_path(&self) -> &Path {
        &self.cert_path
    }

    /// The configuration a new connection starts from.
    pub fn config(&self) -> &Arc<ServerConfig> {
        &self.config
    }
}

/// The key exchange groups offered, most preferred first.
fn key_exchange_groups() -> Vec<&'static dyn rustls::crypto::SupportedKxGroup> {
    use rustls::crypto::ring::kx_group::{SECP256R1, SECP384R1, X25519};
    vec![X25519, SECP256R1, SECP384R1]
}

/// Reads a chain and its key and checks that they belong together.
fn load_pair(
    provider: &CryptoProvider,
    cert_path: &Path,
    key_path: &Path,
) -> Result<Arc<CertifiedKey>, TlsError> {
    let chain = CertificateDer::pem_file_iter(cert_path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsError(format!("{}: {e}", cert_path.display())))?;
    if chain.is_empty() {
        return Err(TlsError(format!(
            "{}: no certificate in the file",
            cert_path.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(key_path)
        .map_err(|e| TlsError(format!("{}: {e}", key_path.display())))?;
    let key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| TlsError(format!("{}: {e}", key_path.display())))?;
    let pair = CertifiedKey::new(chain, key);
    pair.keys_match().map_err(|e| {
        TlsError(format!(
            "{} does not match {}: {e}",
            key_path.display(),
            cert_path.display()
        ))
    })?;
    Ok(Arc::new(pair))
}
