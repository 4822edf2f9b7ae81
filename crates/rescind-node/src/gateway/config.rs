//! `[gateway]`: how the enforcement adapters (forward-auth, Envoy
//! `ext_authz`, OAuth introspection and revocation) decide.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// What to answer when the node's staleness is unknown or above the bound.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StalePolicy {
    /// Deny (503 / an Envoy denial): a revocation the node may be missing
    /// cannot let a token through. The default.
    #[default]
    Closed,
    /// Allow, and tell the upstream the staleness (availability first).
    Open,
}

impl StalePolicy {
    /// `open` / `closed` (query parameters, Envoy context extensions, flags).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "open" => Some(Self::Open),
            "closed" => Some(Self::Closed),
            _ => None,
        }
    }
}

/// The `[gateway]` table. Missing keys take their defaults.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewayConfig {
    /// Staleness above which `on_stale` decides (an unknown staleness is
    /// always above). A route may ask for less (`max_staleness_ms`).
    #[serde(with = "humantime_serde")]
    pub max_staleness: Duration,
    /// `closed` (deny) or `open` (allow) when stale; a route may override it.
    pub on_stale: StalePolicy,
    /// Accept opaque (non-JWT) bearer tokens at forward-auth and ext_authz:
    /// they are allowed unless revoked, so use this only behind another
    /// authenticating layer. Needs `token_hash_key_file`.
    pub opaque_tokens: bool,
    /// A file with the key (64 hex digits, the same on every node) opaque
    /// tokens and JWTs without `jti` are identified by: Rescind stores only
    /// `opaque-` + a keyed hash, never the token. Changing it orphans every
    /// opaque revocation made under the old key. Unset: such tokens cannot
    /// be revoked (RFC 7009 answers `unsupported_token_type`).
    pub token_hash_key_file: Option<PathBuf>,
    /// OAuth clients allowed to call `/oauth2/revoke` and
    /// `/oauth2/introspect` by HTTP Basic: one `client_id:secret` per line
    /// (`#` comments). The admin bearer token is always accepted too.
    pub oauth_clients_file: Option<PathBuf>,
    /// ext_authz: with no `authorization` header, take the claims Envoy's
    /// `jwt_authn` filter verified from `metadata_context` (its first struct
    /// under `envoy.filters.http.jwt_authn`). Only when nothing but Envoy can
    /// reach the gRPC port: the claims are believed as sent. Key-id cutoffs
    /// do not apply to them (the payload carries no `kid`).
    pub trust_jwt_authn: bool,
    /// Largest HTTP request body, bytes (a 10,000-entry batch is ~1.5 MiB).
    pub max_body_bytes: usize,
    /// Most HTTP requests in flight; one more gets 429.
    pub max_http_requests: usize,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            max_staleness: Duration::from_secs(30),
            on_stale: StalePolicy::Closed,
            opaque_tokens: false,
            token_hash_key_file: None,
            oauth_clients_file: None,
            trust_jwt_authn: false,
            max_body_bytes: 4 * 1024 * 1024,
            max_http_requests: 1024,
        }
    }
}

/// Why the gateway cannot start.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// A file could not be read.
    #[error("{field} {path}: {source}")]
    File {
        /// The config key.
        field: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A value is unusable.
    #[error("{field}: {problem}")]
    Invalid {
        /// The config key.
        field: &'static str,
        /// What is wrong.
        problem: String,
    },
    /// The JWT keys could not be loaded.
    #[error(transparent)]
    Jwt(#[from] rescind_jwt::JwtError),
}

impl GatewayConfig {
    /// Check ranges.
    pub fn validate(&self) -> Result<(), GatewayError> {
        let invalid = |field, problem: &str| GatewayError::Invalid {
            field,
            problem: problem.into(),
        };
        if self.max_body_bytes < 1024 || self.max_body_bytes > 64 * 1024 * 1024 {
            return Err(invalid("gateway.max_body_bytes", "must be 1024..=67108864"));
        }
        if self.max_http_requests == 0 {
            return Err(invalid("gateway.max_http_requests", "must be at least 1"));
        }
        if self.opaque_tokens && self.token_hash_key_file.is_none() {
            return Err(invalid(
                "gateway.opaque_tokens",
                "needs gateway.token_hash_key_file (the key opaque tokens are hashed with)",
            ));
        }
        Ok(())
    }

    /// Read `token_hash_key_file`: 64 hex digits.
    pub fn token_hash_key(&self) -> Result<Option<[u8; 32]>, GatewayError> {
        let Some(path) = &self.token_hash_key_file else {
            return Ok(None);
        };
        let field = "gateway.token_hash_key_file";
        let text = std::fs::read_to_string(path).map_err(|source| GatewayError::File {
            field,
            path: path.clone(),
            source,
        })?;
        let hex = text.trim();
        let bad = || GatewayError::Invalid {
            field,
            problem: format!("{} must hold 64 hex digits (32 bytes)", path.display()),
        };
        if hex.len() != 64 {
            return Err(bad());
        }
        let mut key = [0u8; 32];
        for (i, byte) in key.iter_mut().enumerate() {
            *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2).ok_or_else(bad)?, 16).map_err(|_| bad())?;
        }
        Ok(Some(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opaque_tokens_need_a_hash_key_and_keys_are_hex() {
        let c = GatewayConfig {
            opaque_tokens: true,
            ..GatewayConfig::default()
        };
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("token_hash_key_file")
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        std::fs::write(&path, format!("{}\n", "ab".repeat(32))).unwrap();
        let c = GatewayConfig {
            token_hash_key_file: Some(path.clone()),
            ..c
        };
        assert_eq!(c.token_hash_key().unwrap(), Some([0xab; 32]));
        std::fs::write(&path, "zz").unwrap();
        assert!(c.token_hash_key().unwrap_err().to_string().contains("64 hex"));
        assert_eq!(StalePolicy::parse("open"), Some(StalePolicy::Open));
        assert_eq!(StalePolicy::parse("maybe"), None);
    }
}
