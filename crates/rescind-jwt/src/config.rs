//! [`JwtConfig`]: where the keys come from and which claims are accepted.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::error::JwtError;

/// Default [`JwtConfig::leeway`]: 30 seconds.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(30);
/// Default [`JwtConfig::cache_entries`]: 100 000 verified tokens.
pub const DEFAULT_CACHE_ENTRIES: usize = 100_000;
/// Default [`JwtConfig::fetch_timeout`]: 10 seconds.
pub const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// Default [`JwtConfig::refresh_interval`]: 60 seconds.
pub const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_secs(60);
/// Shortest HS256 secret accepted (RFC 7518 §3.2: at least the hash size, 256 bits).
pub const MIN_HS256_SECRET_LEN: usize = 32;

/// How tokens are verified. Every field has a default (see [`JwtConfig::default`]), and unknown
/// fields are refused when deserializing, so a typo in a config file is an error, not a no-op.
///
/// Keys come either from a JWKS (`jwks_file` and/or `jwks_url`, asymmetric algorithms only)
/// or from a shared HS256 secret (`hs256_secret_file`), never both: mixing them would let a
/// token signed with HMAC over a public key be accepted (algorithm confusion).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JwtConfig {
    /// A JWKS file (`{"keys": [...]}`), loaded by [`crate::Verifier::new`] and re-read by
    /// [`crate::Verifier::reload_if_changed`] when its content changes.
    pub jwks_file: Option<PathBuf>,
    /// A JWKS URL (`http://` or `https://`), fetched by [`crate::Verifier::refresh_from_url`];
    /// until the first successful fetch its keys are absent.
    pub jwks_url: Option<String>,
    /// A file holding the HS256 shared secret (raw bytes; trailing `\r`/`\n` are dropped; at
    /// least [`MIN_HS256_SECRET_LEN`] bytes). Excludes `jwks_file` and `jwks_url`.
    pub hs256_secret_file: Option<PathBuf>,
    /// Accepted `iss` values; empty: any issuer (and a token without `iss` maps to issuer `""`).
    pub issuers: Vec<String>,
    /// Accepted audiences; when non-empty the token's `aud` (string or array) must contain one.
    pub audiences: Vec<String>,
    /// Clock skew allowed on `exp` and `nbf`. Default [`DEFAULT_LEEWAY`] (30 s).
    #[serde(with = "humantime_serde")]
    pub leeway: Duration,
    /// Refuse tokens without `exp`. Default `true`.
    pub require_exp: bool,
    /// Claim holding the tenant (string or number), if any. Default none.
    pub tenant_claim: Option<String>,
    /// Claim holding the token version (number or numeric string), if any. Default none.
    pub version_claim: Option<String>,
    /// Capacity of the verified-token cache; `0` disables it. Default [`DEFAULT_CACHE_ENTRIES`].
    pub cache_entries: usize,
    /// Timeout of one `jwks_url` fetch. Default [`DEFAULT_FETCH_TIMEOUT`] (10 s).
    #[serde(with = "humantime_serde")]
    pub fetch_timeout: Duration,
    /// Period of the background task of [`crate::Verifier::spawn_refresh`]. Default
    /// [`DEFAULT_REFRESH_INTERVAL`] (60 s).
    #[serde(with = "humantime_serde")]
    pub refresh_interval: Duration,
}

impl Default for JwtConfig {
    /// No key source, no issuer or audience restriction, leeway 30 s, `exp` required, no tenant
    /// or version claim, a 100 000-entry cache, a 10 s fetch timeout, a 60 s refresh interval.
    fn default() -> Self {
        Self {
            jwks_file: None,
            jwks_url: None,
            hs256_secret_file: None,
            issuers: Vec::new(),
            audiences: Vec::new(),
            leeway: DEFAULT_LEEWAY,
            require_exp: true,
            tenant_claim: None,
            version_claim: None,
            cache_entries: DEFAULT_CACHE_ENTRIES,
            fetch_timeout: DEFAULT_FETCH_TIMEOUT,
            refresh_interval: DEFAULT_REFRESH_INTERVAL,
        }
    }
}

impl JwtConfig {
    /// Checks the combination of fields (not the files themselves), naming the faulty field.
    pub fn validate(&self) -> Result<(), JwtError> {
        let has_jwks = self.jwks_file.is_some() || self.jwks_url.is_some();
        if self.hs256_secret_file.is_some() && has_jwks {
            let other = if self.jwks_file.is_some() {
                "jwks_file"
            } else {
                "jwks_url"
            };
            return Err(JwtError::config(
                "hs256_secret_file",
                format!(
                    "cannot be combined with {other}: HS256 is refused while asymmetric keys are \
                     configured (algorithm confusion); set either hs256_secret_file or \
                     jwks_file/jwks_url"
                ),
            ));
        }
        if self.hs256_secret_file.is_none() && !has_jwks {
            return Err(JwtError::config(
                "jwks_file",
                "no key source: set jwks_file, jwks_url or hs256_secret_file",
            ));
        }
        if let Some(url) = &self.jwks_url {
            let parsed = reqwest::Url::parse(url)
                .map_err(|e| JwtError::config("jwks_url", format!("not a URL: {e}")))?;
            match parsed.scheme() {
                "https" => {}
                "http" if is_loopback(&parsed) => {}
                "http" => {
                    return Err(JwtError::config(
                        "jwks_url",
                        "must be https (plain http only to a loopback address): keys fetched in the clear can be replaced on the way",
                    ));
                }
                _ => return Err(JwtError::config("jwks_url", "scheme must be https")),
            }
        }
        if self.issuers.iter().any(String::is_empty) {
            return Err(JwtError::config("issuers", "contains an empty string"));
        }
        if self.audiences.iter().any(String::is_empty) {
            return Err(JwtError::config("audiences", "contains an empty string"));
        }
        if self.tenant_claim.as_deref() == Some("") {
            return Err(JwtError::config("tenant_claim", "is empty"));
        }
        if self.version_claim.as_deref() == Some("") {
            return Err(JwtError::config("version_claim", "is empty"));
        }
        if self.fetch_timeout.is_zero() {
            return Err(JwtError::config("fetch_timeout", "must be greater than zero"));
        }
        if self.refresh_interval.is_zero() {
            return Err(JwtError::config("refresh_interval", "must be greater than zero"));
        }
        Ok(())
    }

    /// [`Self::leeway`] in milliseconds (saturating).
    pub(crate) fn leeway_ms(&self) -> u64 {
        u64::try_from(self.leeway.as_millis()).unwrap_or(u64::MAX)
    }
}

/// True when `url`'s host is a loopback address or `localhost`.
fn is_loopback(url: &reqwest::Url) -> bool {
    let host = url.host_str().unwrap_or("");
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || bare.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_documented_values() {
        let c = JwtConfig::default();
        assert_eq!(c.leeway, Duration::from_secs(30));
        assert_eq!(c.cache_entries, 100_000);
        assert!(c.require_exp);
        assert!(c.issuers.is_empty() && c.audiences.is_empty());
    }

    #[test]
    fn secret_and_jwks_is_an_error_naming_both_fields() {
        let c = JwtConfig {
            hs256_secret_file: Some("s".into()),
            jwks_file: Some("j".into()),
            ..JwtConfig::default()
        };
        let msg = c.validate().unwrap_err().to_string();
        assert!(
            msg.contains("hs256_secret_file") && msg.contains("jwks_file"),
            "{msg}"
        );
        let c = JwtConfig {
            hs256_secret_file: Some("s".into()),
            jwks_url: Some("https://idp.example/jwks".into()),
            ..JwtConfig::default()
        };
        let msg = c.validate().unwrap_err().to_string();
        assert!(
            msg.contains("hs256_secret_file") && msg.contains("jwks_url"),
            "{msg}"
        );
    }

    #[test]
    fn url_scheme_and_empty_source_checked() {
        let c = JwtConfig {
            jwks_url: Some("ftp://x/jwks".into()),
            ..JwtConfig::default()
        };
        assert!(c.validate().unwrap_err().to_string().contains("jwks_url"));
        assert!(JwtConfig::default().validate().is_err());
        let c = JwtConfig {
            jwks_url: Some("http://127.0.0.1:8080/jwks".into()),
            ..JwtConfig::default()
        };
        c.validate().unwrap();
    }
}
