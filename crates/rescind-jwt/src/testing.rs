//! Test helpers (feature `testing`): mint tokens with the committed, TEST-ONLY key fixtures so
//! the adapters' integration tests can exercise real verification. Never use in production.
//!
//! The fixtures (see `tests/fixtures/README.md`): `rsa-1.pem`, `ec-1.pem`, `ed-1.pem` (public
//! halves in `jwks.json` under kids `rsa-1`, `ec-1`, `ed-1`), `ed-2.pem` (public half in
//! `jwks-ed-2.json`, not in `jwks.json`), `rogue-rsa.pem` (in no JWKS) and `hs256.secret`.

use std::path::PathBuf;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};

use crate::config::JwtConfig;

/// The fixture directory.
pub const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
/// RSA 2048 private key (PKCS#8 PEM), kid `rsa-1`, RS256.
pub const RSA_PEM: &str = "rsa-1.pem";
/// EC P-256 private key (PKCS#8 PEM), kid `ec-1`, ES256.
pub const EC_PEM: &str = "ec-1.pem";
/// Ed25519 private key (PKCS#8 PEM), kid `ed-1`, EdDSA.
pub const ED_PEM: &str = "ed-1.pem";
/// A second Ed25519 private key, kid `ed-2`, published only in [`ED2_JWK`].
pub const ED2_PEM: &str = "ed-2.pem";
/// An RSA private key published in no JWKS.
pub const ROGUE_RSA_PEM: &str = "rogue-rsa.pem";
/// The public JWKS of `rsa-1`, `ec-1` and `ed-1`.
pub const JWKS: &str = "jwks.json";
/// The public JWK (a single key object) of `ed-2`.
pub const ED2_JWK: &str = "jwks-ed-2.json";
/// A 64-byte HS256 secret.
pub const HS256_SECRET: &str = "hs256.secret";

/// The path of fixture `name`.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(FIXTURES).join(name)
}

/// The bytes of fixture `name`. Panics if it cannot be read.
pub fn read_fixture(name: &str) -> Vec<u8> {
    let path = fixture(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

/// A config using the fixture JWKS (`jwks.json`) and otherwise the defaults.
pub fn jwks_config() -> JwtConfig {
    JwtConfig {
        jwks_file: Some(fixture(JWKS)),
        ..JwtConfig::default()
    }
}

/// A config using the fixture HS256 secret and otherwise the defaults.
pub fn hs256_config() -> JwtConfig {
    JwtConfig {
        hs256_secret_file: Some(fixture(HS256_SECRET)),
        ..JwtConfig::default()
    }
}

/// Signs `claims` with `alg`, putting `kid` in the header (none when `kid` is empty). `pem`
/// is a PKCS#8 private key PEM for RS*/PS*/ES*/EdDSA, or the raw secret for HS*. Panics on a
/// key that does not fit `alg`.
pub fn sign(alg: Algorithm, kid: &str, pem: &[u8], claims: &serde_json::Value) -> String {
    crate::keys::ensure_crypto_provider();
    let key = match alg {
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => EncodingKey::from_secret(pem),
        Algorithm::ES256 | Algorithm::ES384 => EncodingKey::from_ec_pem(pem),
        Algorithm::EdDSA => EncodingKey::from_ed_pem(pem),
        _ => EncodingKey::from_rsa_pem(pem),
    }
    .expect("test key does not fit the algorithm");
    let mut header = Header::new(alg);
    if !kid.is_empty() {
        header.kid = Some(kid.to_owned());
    }
    jsonwebtoken::encode(&header, claims, &key).expect("signing failed")
}

/// Signs `claims` with fixture key file `pem_name` (e.g. [`RSA_PEM`]).
pub fn sign_with_fixture(alg: Algorithm, kid: &str, pem_name: &str, claims: &serde_json::Value) -> String {
    sign(alg, kid, &read_fixture(pem_name), claims)
}

/// An unsigned token `base64url(header).base64url(claims).` with the given header, e.g.
/// `{"alg": "none"}`: what an attacker would send.
pub fn unsigned(header: &serde_json::Value, claims: &serde_json::Value) -> String {
    format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

/// The current time in unix seconds (for `iat`/`exp` claims).
pub fn now_secs() -> u64 {
    crate::now_ms() / 1000
}
