//! Tokens signed here, with keys made by the test (none is committed), verified or
//! refused; and random or mutated tokens, which never panic and never authorize.

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use proptest::prelude::*;

use super::*;

const SECRET: &[u8] = b"a secret of thirty-two bytes or more, for tests";
const NOW: u64 = 2_000_000_000;

fn hs_key() -> TokenKey {
    TokenKey::from_file_content(SECRET).unwrap()
}

fn sign(claims: serde_json::Value) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(SECRET).unwrap(),
    )
    .unwrap()
}

/// A fresh EC P-256 key pair: the signing key's PEM and the public key's PEM.
fn ec_pair() -> (String, String) {
    use p256::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
    let signing = p256::ecdsa::SigningKey::random(&mut p256::elliptic_curve::rand_core::OsRng);
    let private = signing.to_pkcs8_pem(LineEnding::LF).unwrap().to_string();
    let public = signing
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap();
    (private, public)
}

#[test]
fn a_valid_hs256_token_grants_its_claims() {
    let token = sign(serde_json::json!({
        "exp": NOW + 60, "sub": "ada", "channels": ["room.*", "lobby"], "publish": ["room.1"]
    }));
    let grant = verify(&hs_key(), token.as_bytes(), NOW).unwrap();
    assert_eq!(grant.subject.as_deref(), Some("ada"));
    assert!(grant.channels.matches("room.7") && grant.channels.matches("lobby"));
    assert!(!grant.channels.matches("admin"));
    assert!(grant.publish.matches("room.1") && !grant.publish.matches("room.2"));
    assert_eq!(grant.expires_at, NOW + 60);
}

#[test]
fn es256_tokens_verify_with_the_public_key_and_no_other() {
    let (private, public) = ec_pair();
    let key = TokenKey::from_file_content(public.as_bytes()).unwrap();
    assert_eq!(key.algorithm(), Algorithm::ES256);
    let claims = serde_json::json!({"exp": NOW + 60, "channels": ["a"]});
    let token = encode(
        &Header::new(Algorithm::ES256),
        &claims,
        &EncodingKey::from_ec_pem(private.as_bytes()).unwrap(),
    )
    .unwrap();
    assert!(verify(&key, token.as_bytes(), NOW).is_ok());
    let (other_private, _) = ec_pair();
    let forged = encode(
        &Header::new(Algorithm::ES256),
        &claims,
        &EncodingKey::from_ec_pem(other_private.as_bytes()).unwrap(),
    )
    .unwrap();
    assert_eq!(
        verify(&key, forged.as_bytes(), NOW),
        Err(AuthError::BadSignature)
    );
    // An HS256 token "signed" with the public key's text: the confusion attack.
    let confused = encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(public.as_bytes()).unwrap(),
    )
    .unwrap();
    assert_eq!(
        verify(&key, confused.as_bytes(), NOW),
        Err(AuthError::BadSignature)
    );
}

/// A key pair made by `openssl` (as an operator makes one): the private key's PEM and
/// the public key's PEM. `kind` is `genpkey`'s algorithm.
fn openssl_pair(kind: &str, options: &[&str]) -> (String, String) {
    use std::process::Command;
    let private = Command::new("openssl")
        .args(["genpkey", "-algorithm", kind])
        .args(options.iter().flat_map(|o| ["-pkeyopt", o]))
        .output()
        .expect("openssl");
    assert!(private.status.success(), "openssl genpkey {kind}");
    let mut public = Command::new("openssl")
        .args(["pkey", "-pubout"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    public
        .stdin
        .take()
        .unwrap()
        .write_all(&private.stdout)
        .unwrap();
    let public = public.wait_with_output().unwrap();
    (
        String::from_utf8(private.stdout).unwrap(),
        String::from_utf8(public.stdout).unwrap(),
    )
}

/// Tokens signed with `private` verify with `key`; those signed with `other` do not.
fn signed_by_the_key_and_no_other(
    algorithm: Algorithm,
    key: &TokenKey,
    private: EncodingKey,
    other: EncodingKey,
) {
    assert_eq!(key.algorithm(), algorithm);
    let claims = serde_json::json!({"exp": NOW + 60, "channels": ["a"]});
    let token = encode(&Header::new(algorithm), &claims, &private).unwrap();
    let grant = verify(key, token.as_bytes(), NOW).unwrap();
    assert!(grant.channels.matches("a"));
    let forged = encode(&Header::new(algorithm), &claims, &other).unwrap();
    assert_eq!(
        verify(key, forged.as_bytes(), NOW),
        Err(AuthError::BadSignature)
    );
}

#[test]
fn eddsa_and_rs256_tokens_verify_with_their_keys_and_no_other() {
    let (private, public) = openssl_pair("ed25519", &[]);
    let (other, _) = openssl_pair("ed25519", &[]);
    signed_by_the_key_and_no_other(
        Algorithm::EdDSA,
        &TokenKey::from_file_content(public.as_bytes()).unwrap(),
        EncodingKey::from_ed_pem(private.as_bytes()).unwrap(),
        EncodingKey::from_ed_pem(other.as_bytes()).unwrap(),
    );
    let (private, public) = openssl_pair("RSA", &["rsa_keygen_bits:2048"]);
    let (other, _) = openssl_pair("RSA", &["rsa_keygen_bits:2048"]);
    signed_by_the_key_and_no_other(
        Algorithm::RS256,
        &TokenKey::from_file_content(public.as_bytes()).unwrap(),
        EncodingKey::from_rsa_pem(private.as_bytes()).unwrap(),
        EncodingKey::from_rsa_pem(other.as_bytes()).unwrap(),
    );
}

#[test]
fn every_refusal_says_which() {
    let key = hs_key();
    assert_eq!(verify(&key, b"", NOW), Err(AuthError::Missing));
    assert_eq!(verify(&key, b"not.a.jwt", NOW), Err(AuthError::Malformed));
    let expired = sign(serde_json::json!({"exp": NOW - 1}));
    assert_eq!(
        verify(&key, expired.as_bytes(), NOW),
        Err(AuthError::Expired)
    );
    let at_exp = sign(serde_json::json!({"exp": NOW}));
    assert_eq!(
        verify(&key, at_exp.as_bytes(), NOW),
        Err(AuthError::Expired)
    );
    let no_exp = sign(serde_json::json!({"channels": ["a"]}));
    assert_eq!(
        verify(&key, no_exp.as_bytes(), NOW),
        Err(AuthError::Malformed)
    );
    let future_iat = sign(serde_json::json!({"exp": NOW + 60, "iat": NOW + 30}));
    assert_eq!(
        verify(&key, future_iat.as_bytes(), NOW),
        Err(AuthError::NotYetValid)
    );
    let bad_pattern = sign(serde_json::json!({"exp": NOW + 60, "channels": ["a/b"]}));
    assert_eq!(
        verify(&key, bad_pattern.as_bytes(), NOW),
        Err(AuthError::Malformed)
    );
    let wrong_secret = encode(
        &Header::new(Algorithm::HS256),
        &serde_json::json!({"exp": NOW + 60}),
        &EncodingKey::from_secret(b"another secret of thirty-two bytes, or more").unwrap(),
    )
    .unwrap();
    assert_eq!(
        verify(&key, wrong_secret.as_bytes(), NOW),
        Err(AuthError::BadSignature)
    );
}

#[test]
fn alg_none_and_other_algorithms_are_refused() {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    let claims = URL_SAFE_NO_PAD.encode(format!(r#"{{"exp":{}}}"#, NOW + 60));
    for header in [
        r#"{"alg":"none","typ":"JWT"}"#,
        r#"{"alg":"HS512","typ":"JWT"}"#,
    ] {
        let token = format!("{}.{claims}.", URL_SAFE_NO_PAD.encode(header));
        assert!(
            verify(&hs_key(), token.as_bytes(), NOW).is_err(),
            "{header}"
        );
    }
    let hs512 = encode(
        &Header::new(Algorithm::HS512),
        &serde_json::json!({"exp": NOW + 60}),
        &EncodingKey::from_secret(SECRET).unwrap(),
    )
    .unwrap();
    assert_eq!(
        verify(&hs_key(), hs512.as_bytes(), NOW),
        Err(AuthError::BadSignature)
    );
}

#[test]
fn key_files_are_checked() {
    assert!(TokenKey::from_file_content(b"short\n").is_err());
    assert!(TokenKey::from_file_content(
        b"-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n"
    )
    .is_err());
    let with_newline = [SECRET, b"\n"].concat();
    let key = TokenKey::from_file_content(&with_newline).unwrap();
    let token = sign(serde_json::json!({"exp": NOW + 60}));
    assert!(
        verify(&key, token.as_bytes(), NOW).is_ok(),
        "a trailing newline is not the secret's"
    );
    assert_eq!(
        format!("{key:?}"),
        "TokenKey(HS256)",
        "the secret never shows"
    );
}

proptest! {
    #[test]
    fn random_bytes_never_panic_or_authorize(token in proptest::collection::vec(any::<u8>(), 0..300)) {
        prop_assert!(verify(&hs_key(), &token, NOW).is_err());
    }

    #[test]
    fn mutated_tokens_never_authorize(at in any::<usize>(), byte in any::<u8>()) {
        let token = sign(serde_json::json!({"exp": NOW + 60, "channels": ["*"]}));
        let mut bytes = token.into_bytes();
        let at = at % bytes.len();
        prop_assume!(bytes[at] != byte);
        bytes[at] = byte;
        // A changed byte may leave the same decoded token (base64's spare bits); then
        // it must grant exactly what the original did, nothing more.
        if let Ok(grant) = verify(&hs_key(), &bytes, NOW) {
            prop_assert_eq!(grant.expires_at, NOW + 60);
        }
    }
}
