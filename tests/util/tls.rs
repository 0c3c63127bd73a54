//! TLS for the tests: a certificate and key made at run time (nothing committed), and
//! client configurations that trust it, for TLS 1.3, 1.2 or both.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore, SupportedProtocolVersion};

/// A self-signed ECDSA P-256 certificate for `localhost` and its key, as PEM files in
/// a directory of the test's own (removed when dropped).
pub struct TestCert {
    pub dir: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub der: CertificateDer<'static>,
}

impl TestCert {
    /// A new pair in a new directory named after `label`.
    pub fn new(label: &str) -> TestCert {
        let dir = std::env::temp_dir().join(format!(
            "halley-tls-{label}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut cert = TestCert {
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
            dir,
            der: CertificateDer::from(Vec::new()),
        };
        cert.renew();
        cert
    }

    /// Writes a new pair over the files (what an operator does before SIGHUP).
    pub fn renew(&mut self) {
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        std::fs::write(&self.cert, made.cert.pem()).unwrap();
        std::fs::write(&self.key, made.signing_key.serialize_pem()).unwrap();
        self.der = made.cert.der().clone();
    }

    /// A client that trusts this certificate, speaking `versions`.
    pub fn client(&self, versions: &[&'static SupportedProtocolVersion]) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots.add(self.der.clone()).unwrap();
        Arc::new(client_config(roots, versions))
    }
}

/// A client configuration over ring with `roots`, speaking `versions`, offering ALPN
/// `h2` and `http/1.1` (as a browser does).
pub fn client_config(
    roots: RootCertStore,
    versions: &[&'static SupportedProtocolVersion],
) -> ClientConfig {
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    config
}

/// TLS 1.3 only.
pub const TLS13: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13];
/// TLS 1.2 only.
pub const TLS12: &[&SupportedProtocolVersion] = &[&rustls::version::TLS12];

impl Drop for TestCert {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
