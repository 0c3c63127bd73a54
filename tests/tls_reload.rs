//! SIGHUP reloads the TLS pair, on the real binary: a stream held open across the
//! reload goes on, new handshakes get the new certificate, and a pair that does not
//! load is logged while the one in use stays.

mod util;

use std::net::SocketAddr;
use std::sync::Arc;

use util::binary::{spawn, Halley};
use util::tls::{client_config, TestCert, TLS13};
use util::Client;

/// The certificate a new TLS connection to `addr` is shown (trusting `trusted`).
fn served_certificate(addr: SocketAddr, trusted: Arc<rustls::ClientConfig>) -> Vec<u8> {
    let client = Client::connect_tls(addr, trusted);
    let chain = client.tls.as_ref().unwrap().peer_certificates().unwrap();
    chain[0].to_vec()
}

/// A client configuration that trusts both pairs (so either may be served).
fn trusting(certs: &[&rustls::pki_types::CertificateDer<'static>]) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in certs {
        roots.add((*cert).clone()).unwrap();
    }
    Arc::new(client_config(roots, TLS13))
}

fn tls_addr(halley: &Halley) -> SocketAddr {
    let line = halley.wait_log("subscribers over TLS on ");
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

fn publish(halley: &Halley, body: &str) {
    let raw = format!(
        "POST /pub/held HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    assert_eq!(
        Client::connect(halley.admin)
            .exchange(raw.as_bytes())
            .status,
        201
    );
}

#[test]
fn sighup_reloads_the_pair_without_dropping_a_held_stream() {
    let mut cert = TestCert::new("reload");
    let first = cert.der.clone();
    let cert_arg = cert.cert.to_str().unwrap().to_string();
    let key_arg = cert.key.to_str().unwrap().to_string();
    let halley = spawn(&[
        "--tls-listen",
        "127.0.0.1:0",
        "--tls-cert",
        &cert_arg,
        "--tls-key",
        &key_arg,
    ]);
    let addr = tls_addr(&halley);
    let mut held = Client::connect_tls(addr, cert.client(TLS13));
    held.get("/sub/held?t=sse");
    assert_eq!(held.head().status, 200);
    held.prelude("sse");

    cert.renew();
    let second = cert.der.clone();
    assert_ne!(first, second);
    halley.signal(libc::SIGHUP);
    halley.wait_log("reloaded");
    let both = trusting(&[&first, &second]);
    assert_eq!(
        served_certificate(addr, both.clone()),
        second.to_vec(),
        "new handshakes get the new pair"
    );

    publish(&halley, "after the reload");
    assert!(
        held.chunk_text().contains("after the reload"),
        "the held stream goes on"
    );

    // A broken pair: the error is logged and the pair in use stays.
    std::fs::write(&cert.key, "not a key\n").unwrap();
    halley.signal(libc::SIGHUP);
    let line = halley.wait_log("not reloaded");
    assert!(line.contains("key.pem"), "{line}");
    assert_eq!(served_certificate(addr, both), second.to_vec());
    publish(&halley, "after the failed reload");
    assert!(held.chunk_text().contains("after the failed reload"));
}
