//! [`Rejection`] (why a token was refused) and [`JwtError`] (a config, file or fetch problem).

use std::fmt;
use std::path::PathBuf;

/// Why a token was refused. `Display` is a short, ASCII, quote-free `error_description`
/// suitable for a `WWW-Authenticate: Bearer error="invalid_token"` header; it never contains
/// token content (an algorithm name is reduced to at most 16 `[A-Za-z0-9_-]` characters).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// Not a well-formed JWS compact token (segments, base64url, JSON header or payload).
    Malformed,
    /// The header's `alg` is not accepted here (`none`, HMAC while a JWKS is configured, an
    /// asymmetric algorithm while only an HS256 secret is, or one the matched key does not use).
    AlgorithmNotAllowed(String),
    /// No configured key has the token's `kid` (or, without `kid`, not exactly one key fits).
    UnknownKey,
    /// The signature does not verify against the selected key.
    BadSignature,
    /// `exp` (plus leeway) is in the past.
    Expired,
    /// `nbf` (minus leeway) is in the future.
    NotYetValid,
    /// `iss` is not one of the configured issuers.
    WrongIssuer,
    /// `aud` contains none of the configured audiences.
    WrongAudience,
    /// A required claim is absent.
    MissingClaim(&'static str),
    /// A claim has the wrong type or an out-of-range value.
    InvalidClaim(&'static str),
    /// No verification key is loaded yet (e.g. the JWKS URL was never fetched).
    NoKeys,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed => f.write_str("malformed token"),
            Self::AlgorithmNotAllowed(alg) => {
                let alg = sanitize_alg(alg);
                if alg.is_empty() {
                    f.write_str("algorithm not allowed")
                } else {
                    write!(f, "algorithm {alg} not allowed")
                }
            }
            Self::UnknownKey => f.write_str("unknown signing key"),
            Self::BadSignature => f.write_str("signature invalid"),
            Self::Expired => f.write_str("token expired"),
            Self::NotYetValid => f.write_str("token not yet valid"),
            Self::WrongIssuer => f.write_str("issuer not accepted"),
            Self::WrongAudience => f.write_str("audience not accepted"),
            Self::MissingClaim(c) => write!(f, "missing claim {}", sanitize_alg(c)),
            Self::InvalidClaim(c) => write!(f, "invalid claim {}", sanitize_alg(c)),
            Self::NoKeys => f.write_str("no verification keys available"),
        }
    }
}

impl std::error::Error for Rejection {}

/// Keeps at most 16 characters of `[A-Za-z0-9_-]`: what may be echoed from a header.
pub(crate) fn sanitize_alg(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .take(16)
        .collect()
}

/// A configuration, file or fetch problem; each names the config field at fault. It never
/// contains a secret or a token.
#[derive(Debug, thiserror::Error)]
pub enum JwtError {
    /// A field has an invalid value or conflicts with another.
    #[error("invalid jwt config `{field}`: {reason}")]
    Config {
        /// The config field at fault.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A configured file could not be read.
    #[error("jwt config `{field}`: cannot read {path}: {source}")]
    Io {
        /// The config field naming the file.
        field: &'static str,
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A key set (file, URL or argument) is not a usable JWKS.
    #[error("jwt config `{field}`: bad JWKS: {reason}")]
    Jwks {
        /// The config field the set came from (`jwks_file`, `jwks_url` or `replace_keys`).
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// Fetching `jwks_url` failed (connection, timeout, HTTP status, size).
    #[error("jwt config `jwks_url`: fetch failed: {reason}")]
    Fetch {
        /// What went wrong.
        reason: String,
    },
}

impl JwtError {
    pub(crate) fn config(field: &'static str, reason: impl Into<String>) -> Self {
        Self::Config {
            field,
            reason: reason.into(),
        }
    }

    pub(crate) fn jwks(field: &'static str, reason: impl Into<String>) -> Self {
        Self::Jwks {
            field,
            reason: reason.into(),
        }
    }

    /// The config field this error is about.
    pub fn field(&self) -> &'static str {
        match self {
            Self::Config { field, .. } | Self::Io { field, .. } | Self::Jwks { field, .. } => field,
            Self::Fetch { .. } => "jwks_url",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_short_ascii_and_quote_free() {
        let all = [
            Rejection::Malformed,
            Rejection::AlgorithmNotAllowed("none\"<script>".into()),
            Rejection::UnknownKey,
            Rejection::BadSignature,
            Rejection::Expired,
            Rejection::NotYetValid,
            Rejection::WrongIssuer,
            Rejection::WrongAudience,
            Rejection::MissingClaim("exp"),
            Rejection::InvalidClaim("iat"),
            Rejection::NoKeys,
        ];
        for r in all {
            let s = r.to_string();
            assert!(
                s.is_ascii() && !s.contains('"') && !s.contains('\\') && s.len() < 48,
                "{s}"
            );
        }
        assert_eq!(Rejection::Expired.to_string(), "token expired");
        assert_eq!(Rejection::BadSignature.to_string(), "signature invalid");
        assert_eq!(
            Rejection::AlgorithmNotAllowed("none\"<script>".into()).to_string(),
            "algorithm nonescript not allowed"
        );
    }
}
