//! Verification keys: JWKS parsing and validation, the JWKS file and URL sources, the HS256
//! secret. Keys that cannot be used (encryption keys, symmetric JWKs, unknown curves, short RSA
//! moduli) are skipped with a warning naming only their `kid`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyOperations, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};

use crate::config::MIN_HS256_SECRET_LEN;
use crate::error::JwtError;

/// Largest JWKS document read from a file or a URL.
pub const MAX_JWKS_BYTES: usize = 1024 * 1024;

/// Shortest RSA modulus accepted, in bytes (2048 bits).
const MIN_RSA_MODULUS_BYTES: usize = 256;

/// The asymmetric algorithms accepted from a JWKS.
pub(crate) const ASYMMETRIC: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// One usable verification key (its `Debug` redacts the key material).
#[derive(Debug)]
pub(crate) struct KeyEntry {
    /// The JWK's `kid`, if any.
    pub kid: Option<String>,
    /// The token algorithms this key verifies.
    pub algs: Vec<Algorithm>,
    /// The key itself.
    pub key: DecodingKey,
}

impl KeyEntry {
    /// Whether a token signed with `alg` may be checked against this key.
    pub fn accepts(&self, alg: Algorithm) -> bool {
        self.algs.contains(&alg)
    }
}

/// The keys in use at one moment, with the generation that stamps cache entries.
pub(crate) struct KeySet {
    /// Bumped on every change; a cache entry of another generation is ignored.
    pub generation: u64,
    /// The keys.
    pub entries: Vec<Arc<KeyEntry>>,
}

/// Makes sure `jsonwebtoken` has a process-wide crypto provider, installing the RustCrypto one
/// when none is selected (as happens if another crate also enables its `aws_lc_rs` feature),
/// so that verification can never hit the library's "no provider" panic.
pub(crate) fn ensure_crypto_provider() {
    use jsonwebtoken::crypto::CryptoProvider;
    if CryptoProvider::try_get_default().is_none() {
        // Losing a race to another installer is fine: a provider is then installed.
        let _ = jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER.install_default();
    }
}

/// The HS256 key from `hs256_secret_file`: raw bytes, trailing `\r`/`\n` dropped.
pub(crate) fn load_secret(path: &Path) -> Result<KeyEntry, JwtError> {
    let field = "hs256_secret_file";
    let mut bytes = std::fs::read(path).map_err(|source| JwtError::Io {
        field,
        path: path.to_owned(),
        source,
    })?;
    while matches!(bytes.last(), Some(b'\n' | b'\r')) {
        bytes.pop();
    }
    if bytes.len() < MIN_HS256_SECRET_LEN {
        return Err(JwtError::config(
            field,
            format!(
                "secret is {} bytes, at least {MIN_HS256_SECRET_LEN} are required",
                bytes.len()
            ),
        ));
    }
    let key = DecodingKey::from_secret(&bytes).map_err(|_| JwtError::config(field, "unusable secret"))?;
    Ok(KeyEntry {
        kid: None,
        algs: vec![Algorithm::HS256],
        key,
    })
}

/// Reads a JWKS file (at most [`MAX_JWKS_BYTES`]).
pub(crate) fn read_jwks_file(path: &Path) -> Result<Vec<u8>, JwtError> {
    let field = "jwks_file";
    let bytes = std::fs::read(path).map_err(|source| JwtError::Io {
        field,
        path: path.to_owned(),
        source,
    })?;
    if bytes.len() > MAX_JWKS_BYTES {
        return Err(JwtError::jwks(
            field,
            format!("larger than {MAX_JWKS_BYTES} bytes"),
        ));
    }
    Ok(bytes)
}

/// Fetches a JWKS document (at most [`MAX_JWKS_BYTES`]). Error texts carry no URL (it may hold
/// credentials).
pub(crate) async fn fetch_jwks(client: &reqwest::Client, url: &str) -> Result<Vec<u8>, JwtError> {
    let fetch = |e: reqwest::Error| JwtError::Fetch {
        reason: e.without_url().to_string(),
    };
    let mut resp = client
        .get(url)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(fetch)?;
    let status = resp.status();
    if !status.is_success() {
        return Err(JwtError::Fetch {
            reason: format!("HTTP status {}", status.as_u16()),
        });
    }
    if resp.content_length().is_some_and(|n| n > MAX_JWKS_BYTES as u64) {
        return Err(JwtError::Fetch {
            reason: format!("body larger than {MAX_JWKS_BYTES} bytes"),
        });
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(fetch)? {
        if body.len() + chunk.len() > MAX_JWKS_BYTES {
            return Err(JwtError::Fetch {
                reason: format!("body larger than {MAX_JWKS_BYTES} bytes"),
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The HTTP client for `jwks_url`: rustls, a total timeout, no cookies.
pub(crate) fn http_client(timeout: Duration) -> Result<reqwest::Client, JwtError> {
    // reqwest is built without a crypto provider of its own: ring, process-wide
    // (a provider installed earlier by someone else is kept).
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(concat!("rescind-jwt/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| JwtError::config("jwks_url", format!("cannot build HTTP client: {e}")))
}

/// Parses a JWKS document leniently: a JWK that does not parse is skipped (with a warning),
/// so one odd entry published by an identity provider does not hide the others.
pub(crate) fn parse_jwks(field: &'static str, bytes: &[u8]) -> Result<JwkSet, JwtError> {
    #[derive(serde::Deserialize)]
    struct Raw {
        keys: Vec<serde_json::Value>,
    }
    let raw: Raw = serde_json::from_slice(bytes)
        .map_err(|e| JwtError::jwks(field, format!("not a JWKS document: {e}")))?;
    let mut keys = Vec::with_capacity(raw.keys.len());
    for value in raw.keys {
        let kid = value.get("kid").and_then(|k| k.as_str()).map(str::to_owned);
        match serde_json::from_value::<Jwk>(value) {
            Ok(jwk) => keys.push(jwk),
            Err(e) => tracing::warn!(field, kid = ?kid, error = %e, "skipping unparsable JWK"),
        }
    }
    Ok(JwkSet { keys })
}

/// Turns a JWKS into usable keys, skipping unusable ones with a warning. An empty result from
/// a non-empty set, or from any set when `allow_empty` is false, is an error.
pub(crate) fn build_entries(
    field: &'static str,
    set: &JwkSet,
    allow_empty: bool,
) -> Result<Vec<Arc<KeyEntry>>, JwtError> {
    let mut out = Vec::with_capacity(set.keys.len());
    for jwk in &set.keys {
        match entry_from_jwk(jwk) {
            Ok(e) => out.push(Arc::new(e)),
            Err(reason) => {
                tracing::warn!(field, kid = ?jwk.common.key_id, reason, "skipping unusable JWK");
            }
        }
    }
    if out.is_empty() && (!allow_empty || !set.keys.is_empty()) {
        return Err(JwtError::jwks(
            field,
            format!("no usable signing key ({} skipped)", set.keys.len()),
        ));
    }
    Ok(out)
}

fn b64(s: &str) -> Result<Vec<u8>, &'static str> {
    URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| "key material is not base64url")
}

/// One JWK as a [`KeyEntry`], or why it is skipped.
pub(crate) fn entry_from_jwk(jwk: &Jwk) -> Result<KeyEntry, &'static str> {
    match &jwk.common.public_key_use {
        None | Some(PublicKeyUse::Signature) => {}
        Some(_) => return Err("key use is not sig"),
    }
    if let Some(ops) = &jwk.common.key_operations
        && !ops.contains(&KeyOperations::Verify)
    {
        return Err("key_ops lacks verify");
    }
    let declared = match jwk.common.key_algorithm {
        None => None,
        Some(ka) => {
            let alg = Algorithm::try_from(ka).map_err(|_| "unsupported alg")?;
            if !ASYMMETRIC.contains(&alg) {
                return Err("alg is not an accepted asymmetric algorithm");
            }
            Some(alg)
        }
    };
    let (family, default_algs): (AlgorithmFamily, Vec<Algorithm>) = match &jwk.algorithm {
        AlgorithmParameters::RSA(p) => {
            let n = b64(&p.n)?;
            let significant = n.iter().skip_while(|b| **b == 0).count();
            if significant < MIN_RSA_MODULUS_BYTES {
                return Err("RSA modulus shorter than 2048 bits");
            }
            b64(&p.e)?;
            let algs = ASYMMETRIC
                .iter()
                .copied()
                .filter(|a| a.family() == AlgorithmFamily::Rsa);
            (AlgorithmFamily::Rsa, algs.collect())
        }
        AlgorithmParameters::EllipticCurve(p) => {
            let (alg, len) = match p.curve {
                EllipticCurve::P256 => (Algorithm::ES256, 32),
                EllipticCurve::P384 => (Algorithm::ES384, 48),
                _ => return Err("unsupported EC curve"),
            };
            if b64(&p.x)?.len() != len || b64(&p.y)?.len() != len {
                return Err("EC coordinates have the wrong length");
            }
            (AlgorithmFamily::Ec, vec![alg])
        }
        AlgorithmParameters::OctetKeyPair(p) => {
            if p.curve != EllipticCurve::Ed25519 {
                return Err("unsupported OKP curve");
            }
            if b64(&p.x)?.len() != 32 {
                return Err("Ed25519 key has the wrong length");
            }
            (AlgorithmFamily::Ed, vec![Algorithm::EdDSA])
        }
        AlgorithmParameters::OctetKey(_) => {
            return Err("symmetric keys are not accepted from a JWKS (use hs256_secret_file)");
        }
        _ => return Err("unsupported key type"),
    };
    let algs = match declared {
        Some(alg) if default_algs.contains(&alg) => vec![alg],
        Some(_) => return Err("alg does not match the key type"),
        None => default_algs,
    };
    let key = DecodingKey::from_jwk(jwk).map_err(|_| "invalid key material")?;
    if key.family() != family {
        return Err("key family mismatch");
    }
    Ok(KeyEntry {
        kid: jwk.common.key_id.clone(),
        algs,
        key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwk(v: serde_json::Value) -> Jwk {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn unusable_keys_are_skipped_with_a_reason() {
        let oct = jwk(serde_json::json!({"kty": "oct", "kid": "h", "k": "c2VjcmV0c2VjcmV0"}));
        assert!(entry_from_jwk(&oct).unwrap_err().contains("symmetric"));
        let enc = jwk(serde_json::json!({
            "kty": "OKP", "use": "enc", "crv": "Ed25519",
            "x": "UMG5JuHKJD6ZPfpOHYOrqn5OLTumqVPTUZCoOyHL3yA"
        }));
        assert_eq!(entry_from_jwk(&enc).unwrap_err(), "key use is not sig");
        let short_rsa = jwk(serde_json::json!({"kty": "RSA", "n": "AQAB", "e": "AQAB"}));
        assert!(entry_from_jwk(&short_rsa).unwrap_err().contains("2048"));
        let wrong_alg = jwk(serde_json::json!({
            "kty": "OKP", "alg": "ES256", "crv": "Ed25519",
            "x": "UMG5JuHKJD6ZPfpOHYOrqn5OLTumqVPTUZCoOyHL3yA"
        }));
        assert_eq!(
            entry_from_jwk(&wrong_alg).unwrap_err(),
            "alg does not match the key type"
        );
    }

    #[test]
    fn lenient_parse_and_empty_rules() {
        let set = parse_jwks(
            "jwks_file",
            br#"{"keys": [{"kid": 5}, {"kty": "oct", "k": "AAAA"}]}"#,
        )
        .unwrap();
        assert_eq!(set.keys.len(), 1);
        assert!(build_entries("jwks_file", &set, true).is_err());
        assert!(build_entries("jwks_file", &JwkSet::default(), false).is_err());
        assert!(
            build_entries("replace_keys", &JwkSet::default(), true)
                .unwrap()
                .is_empty()
        );
        assert!(parse_jwks("jwks_file", b"[]").is_err());
    }
}
