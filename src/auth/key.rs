//! `--token-key-file`: an HS256 secret, or a PEM public key for ES256, RS256 or EdDSA,
//! chosen by the file's content. Only the key's own algorithm is accepted in tokens.

use jsonwebtoken::{Algorithm, DecodingKey};

/// The key tokens are verified with, and its one algorithm.
#[derive(Clone)]
pub struct TokenKey {
    pub(super) key: DecodingKey,
    pub(super) algorithm: Algorithm,
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key itself: a secret must not reach a log line.
        write!(f, "TokenKey({:?})", self.algorithm)
    }
}

/// Why a key file cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyError(pub String);

impl std::fmt::Display for KeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// An HS256 secret shorter than this is refused: RFC 7518 section 3.2 asks for a key
/// at least as long as the hash (256 bits).
pub const MIN_SECRET_BYTES: usize = 32;

impl TokenKey {
    /// The key of a file's `content`: a PEM public key (`-----BEGIN PUBLIC KEY-----`,
    /// an EC P-256, Ed25519 or RSA key) or else an HS256 secret (its bytes, with a
    /// trailing newline taken off).
    pub fn from_file_content(content: &[u8]) -> Result<TokenKey, KeyError> {
        super::ring_verifier::install();
        let text = content.trim_ascii();
        if text.starts_with(b"-----BEGIN") {
            return Self::from_pem(text);
        }
        let secret = content.strip_suffix(b"\n").unwrap_or(content);
        let secret = secret.strip_suffix(b"\r").unwrap_or(secret);
        if secret.len() < MIN_SECRET_BYTES {
            return Err(KeyError(format!(
                "an HS256 secret must be at least {MIN_SECRET_BYTES} bytes (this one is {})",
                secret.len()
            )));
        }
        let key = DecodingKey::from_secret(secret)
            .map_err(|e| KeyError(format!("not a usable secret: {e}")))?;
        Ok(TokenKey {
            key,
            algorithm: Algorithm::HS256,
        })
    }

    /// A PEM public key: EC (ES256), Ed25519 (EdDSA) or RSA (RS256), whichever it is.
    fn from_pem(pem: &[u8]) -> Result<TokenKey, KeyError> {
        if let Ok(key) = DecodingKey::from_ec_pem(pem) {
            return Ok(TokenKey {
                key,
                algorithm: Algorithm::ES256,
            });
        }
        if let Ok(key) = DecodingKey::from_ed_pem(pem) {
            return Ok(TokenKey {
                key,
                algorithm: Algorithm::EdDSA,
            });
        }
        match DecodingKey::from_rsa_pem(pem) {
            Ok(key) => Ok(TokenKey {
                key,
                algorithm: Algorithm::RS256,
            }),
            Err(e) => Err(KeyError(format!(
                "not a PEM public key of EC P-256, Ed25519 or RSA: {e}"
            ))),
        }
    }

    /// Reads `path`.
    pub fn load(path: &std::path::Path) -> Result<TokenKey, KeyError> {
        let content = std::fs::read(path)
            .map_err(|e| KeyError(format!("cannot read {}: {e}", path.display())))?;
        Self::from_file_content(&content).map_err(|e| KeyError(format!("{}: {e}", path.display())))
    }

    /// The algorithm tokens must be signed with.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
}
