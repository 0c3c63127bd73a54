//! What a subscription's token costs its loop: `auth::verify` on HS256 and ES256
//! tokens of the shape a site issues (a subject, two channel patterns, a publish
//! claim), the two interleaved round by round. Prints the median of the rounds and
//! their spread, in microseconds per verification. Run: `cargo bench --bench
//! token_verify`.
//!
//! A held subscription's token is verified once, when it starts (its expiry is a
//! timer, not a verification): this is the cost per subscription, and per request for
//! polls and long-polls.

use std::hint::black_box;
use std::time::Instant;

use halley::auth::{verify, TokenKey};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use p256::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};

const ROUNDS: usize = 15;
const PER_ROUND: usize = 2_000;
const NOW: u64 = 2_000_000_000;

fn claims() -> serde_json::Value {
    serde_json::json!({
        "exp": NOW + 3600, "iat": NOW - 10, "sub": "ada",
        "channels": ["user.ada", "room.*"], "publish": ["room.*"]
    })
}

/// Microseconds per verification of `token` with `key`, over one round.
fn round(key: &TokenKey, token: &[u8]) -> f64 {
    let started = Instant::now();
    for _ in 0..PER_ROUND {
        let grant = verify(key, black_box(token), NOW).expect("a valid token");
        black_box(grant);
    }
    started.elapsed().as_secs_f64() * 1e6 / PER_ROUND as f64
}

fn summary(name: &str, mut samples: Vec<f64>) {
    samples.sort_by(f64::total_cmp);
    println!(
        "{name}: {:.2} µs per verification (median of {ROUNDS} rounds of {PER_ROUND}; {:.2}–{:.2})",
        samples[samples.len() / 2],
        samples[0],
        samples[samples.len() - 1]
    );
}

fn main() {
    let secret = b"a secret of thirty-two bytes or more, for the bench";
    let hs_key = TokenKey::from_file_content(secret).unwrap();
    let hs_token = encode(
        &Header::new(Algorithm::HS256),
        &claims(),
        &EncodingKey::from_secret(secret).unwrap(),
    )
    .unwrap();
    let signing = p256::ecdsa::SigningKey::random(&mut p256::elliptic_curve::rand_core::OsRng);
    let private = signing.to_pkcs8_pem(LineEnding::LF).unwrap();
    let public = signing
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap();
    let es_key = TokenKey::from_file_content(public.as_bytes()).unwrap();
    let es_token = encode(
        &Header::new(Algorithm::ES256),
        &claims(),
        &EncodingKey::from_ec_pem(private.as_bytes()).unwrap(),
    )
    .unwrap();
    // Warm up (caches, the allocator), then alternate which goes first.
    round(&hs_key, hs_token.as_bytes());
    round(&es_key, es_token.as_bytes());
    let (mut hs, mut es) = (Vec::new(), Vec::new());
    for r in 0..ROUNDS {
        if r % 2 == 0 {
            hs.push(round(&hs_key, hs_token.as_bytes()));
            es.push(round(&es_key, es_token.as_bytes()));
        } else {
            es.push(round(&es_key, es_token.as_bytes()));
            hs.push(round(&hs_key, hs_token.as_bytes()));
        }
    }
    summary("HS256", hs);
    summary("ES256", es);
}
