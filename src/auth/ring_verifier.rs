//! Signature checks on `ring` behind `jsonwebtoken`'s provider interface: jsonwebtoken
//! still parses tokens and checks their claims, and `ring` (already in the build for
//! TLS) checks their signatures. Its ECDSA P-256 is about five times faster than the
//! pure-Rust one jsonwebtoken ships (`cargo bench --bench token_verify`), and a
//! subscription's token is verified on its loop.
//!
//! Only verification is ours; signing (which the server never does) and the JWK
//! helpers stay jsonwebtoken's RustCrypto ones, and a key of a kind not handled here
//! goes to them too.

use std::sync::OnceLock;

use jsonwebtoken::crypto::{rust_crypto, CryptoProvider, JwtVerifier};
use jsonwebtoken::errors::{Error, ErrorKind};
use jsonwebtoken::signature::{self, Verifier};
use jsonwebtoken::{Algorithm, DecodingKey};
use ring::{hmac, signature as sig};

/// Installs the provider for the process, once; a provider already installed (by an
/// embedding program) is left in place.
pub fn install() {
    static PROVIDER: OnceLock<CryptoProvider> = OnceLock::new();
    let provider = PROVIDER.get_or_init(|| CryptoProvider {
        verifier_factory: new_verifier,
        ..rust_crypto::DEFAULT_PROVIDER.clone()
    });
    let _ = provider.install_default();
}

/// How a key's signatures are checked.
#[derive(Clone, Copy)]
enum Check {
    Hmac,
    Public(&'static sig::EdDSAParameters),
    Ecdsa(&'static sig::EcdsaVerificationAlgorithm),
    Rsa(&'static sig::RsaParameters),
}

/// A verifier for one token: the algorithm, the key's bytes, and how to check.
struct RingVerifier {
    algorithm: Algorithm,
    key: Vec<u8>,
    check: Check,
}

fn new_verifier(algorithm: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>, Error> {
    let check = match algorithm {
        Algorithm::HS256 => Check::Hmac,
        Algorithm::ES256 => Check::Ecdsa(&sig::ECDSA_P256_SHA256_FIXED),
        Algorithm::EdDSA => Check::Public(&sig::ED25519),
        Algorithm::RS256 => Check::Rsa(&sig::RSA_PKCS1_2048_8192_SHA256),
        _ => return (rust_crypto::DEFAULT_PROVIDER.verifier_factory)(algorithm, key),
    };
    let Ok(bytes) = key.try_get_as_bytes() else {
        // An RSA key given as modulus and exponent (a JWK): not ours.
        return (rust_crypto::DEFAULT_PROVIDER.verifier_factory)(algorithm, key);
    };
    if key.family() != algorithm.family() {
        return Err(ErrorKind::InvalidKeyFormat.into());
    }
    Ok(Box::new(RingVerifier {
        algorithm: *algorithm,
        key: bytes.to_vec(),
        check,
    }))
}

impl Verifier<Vec<u8>> for RingVerifier {
    fn verify(&self, msg: &[u8], signature: &Vec<u8>) -> Result<(), signature::Error> {
        let verified = match self.check {
            Check::Hmac => hmac::verify(
                &hmac::Key::new(hmac::HMAC_SHA256, &self.key),
                msg,
                signature,
            ),
            Check::Public(algorithm) => {
                sig::UnparsedPublicKey::new(algorithm, &self.key).verify(msg, signature)
            }
            Check::Ecdsa(algorithm) => {
                sig::UnparsedPublicKey::new(algorithm, &self.key).verify(msg, signature)
            }
            Check::Rsa(algorithm) => {
                sig::UnparsedPublicKey::new(algorithm, &self.key).verify(msg, signature)
            }
        };
        verified.map_err(|_| signature::Error::new())
    }
}

impl JwtVerifier for RingVerifier {
    fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
}
