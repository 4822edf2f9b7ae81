//! # rescind-jwt
//!
//! Bearer-token handling shared by every Rescind gateway adapter (HTTP forward-auth, Envoy
//! `ext_authz`, RFC 7662 introspection, RFC 7009 revocation): parse the `Authorization`
//! header, verify a JWT's signature against configured keys, check its claims, and map them
//! to the fields of a revocation check ([`Claims`]). The revocation check itself is the
//! caller's business, run on every request (the verified-token cache only skips signature
//! verification and parsing, never the check, and re-runs `exp`/`nbf` on each hit).
//!
//! Algorithms: RS256/384/512, PS256/384/512, ES256/384 and EdDSA (Ed25519) from a JWKS; HS256
//! only from an explicitly configured secret, and never while a JWKS is configured
//! (algorithm-confusion defence). `alg: none`, in any case, is always refused.
//!
//! Secrets and tokens are never logged: log lines carry at most a `kid`, an algorithm or a
//! config field name. Opaque tokens are identified by [`opaque_id`], a keyed hash.
//!
//! ```no_run
//! use rescind_jwt::{JwtConfig, Verifier, bearer};
//! # fn now_ms() -> u64 { 0 }
//! let cfg = JwtConfig { jwks_file: Some("/etc/rescind/jwks.json".into()), ..JwtConfig::default() };
//! let verifier = Verifier::new(&cfg)?;
//! if let Some(token) = bearer("Bearer eyJ...") {
//!     match verifier.verify(token, now_ms()) {
//!         Ok(claims) => { /* run the revocation check with claims.token_id, claims.subject, ... */ }
//!         Err(rejection) => { /* 401, error_description = rejection.to_string() */ }
//!     }
//! }
//! # Ok::<(), rescind_jwt::JwtError>(())
//! ```
//!
//! ## Layout
//! - [`config`]: [`JwtConfig`], its defaults and validation.
//! - [`error`]: [`Rejection`] (why a token was refused) and [`JwtError`] (config/IO/fetch).
//! - [`keys`]: JWKS parsing, the file, URL and HS256-secret sources.
//! - [`claims`]: [`Claims`], the claims-to-check mapping and the claim checks.
//! - `cache`: the bounded `blake3(token)` → claims cache, stamped with the key generation.
//! - [`verify`]: [`Verifier`], the key store, reloading and verification.
//! - [`opaque`]: [`bearer`], [`looks_like_jwt`], [`opaque_id`].
//! - `testing` (feature `testing`): token minting from the committed test-only fixtures.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod cache;
pub mod claims;
pub mod config;
pub mod error;
pub mod keys;
pub mod opaque;
#[cfg(feature = "testing")]
pub mod testing;
pub mod verify;

pub use claims::Claims;
pub use config::JwtConfig;
pub use error::{JwtError, Rejection};
pub use jsonwebtoken::Algorithm;
pub use jsonwebtoken::jwk::{Jwk, JwkSet};
pub use opaque::{bearer, looks_like_jwt, opaque_id};
pub use verify::Verifier;

/// The current time in unix milliseconds, for [`Verifier::verify`].
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
