//! [`Claims`]: a verified token's claims mapped to the fields of a revocation check, and the
//! claim checks (`iss`, `aud`, `exp`, `nbf`).

use serde_json::{Map, Value};

use crate::config::JwtConfig;
use crate::error::Rejection;

/// A verified token, mapped to what a revocation check needs. Produced by
/// [`crate::Verifier::verify`]; callers then run the revocation check on every request.
///
/// A claim of the wrong type is a [`Rejection::InvalidClaim`], never silently dropped, so a
/// token cannot dodge a revocation by carrying e.g. a numeric `jti`.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Claims {
    /// `iss`; `""` when absent (allowed only when no `issuers` are configured).
    pub issuer: String,
    /// `jti`.
    pub token_id: Option<String>,
    /// `sub`.
    pub subject: Option<String>,
    /// `client_id`, else `azp`.
    pub client_id: Option<String>,
    /// The header's `kid`.
    pub key_id: Option<String>,
    /// `sid`.
    pub session_id: Option<String>,
    /// The configured `tenant_claim` (a string, or a number rendered in decimal).
    pub tenant: Option<String>,
    /// The configured `version_claim` (a non-negative integer or a string of decimal digits).
    pub token_version: Option<u64>,
    /// `iat` in unix milliseconds; `0` (unknown) when absent, which any time cutoff revokes.
    pub issued_at_ms: u64,
    /// `exp` in unix milliseconds.
    pub expires_at_ms: Option<u64>,
    /// `nbf` in unix milliseconds.
    pub not_before_ms: Option<u64>,
    /// Every claim of the payload, for introspection responses.
    pub raw: Map<String, Value>,
}

/// The claim rules of a [`JwtConfig`], kept by the verifier.
#[derive(Clone, Debug)]
pub(crate) struct ClaimRules {
    pub issuers: Vec<String>,
    pub audiences: Vec<String>,
    pub require_exp: bool,
    pub tenant_claim: Option<String>,
    pub version_claim: Option<String>,
    pub leeway_ms: u64,
}

impl ClaimRules {
    pub fn from_config(cfg: &JwtConfig) -> Self {
        Self {
            issuers: cfg.issuers.clone(),
            audiences: cfg.audiences.clone(),
            require_exp: cfg.require_exp,
            tenant_claim: cfg.tenant_claim.clone(),
            version_claim: cfg.version_claim.clone(),
            leeway_ms: cfg.leeway_ms(),
        }
    }
}

impl Claims {
    /// Maps a verified payload, running the time-independent checks (`iss`, `aud`, presence
    /// of `exp`, claim types). The time checks are [`Claims::check_time`].
    pub(crate) fn from_raw(
        raw: Map<String, Value>,
        key_id: Option<String>,
        rules: &ClaimRules,
    ) -> Result<Self, Rejection> {
        let issuer = string(&raw, "iss")?;
        match &issuer {
            None if !rules.issuers.is_empty() => return Err(Rejection::MissingClaim("iss")),
            Some(iss) if !rules.issuers.is_empty() && !rules.issuers.contains(iss) => {
                return Err(Rejection::WrongIssuer);
            }
            _ => {}
        }
        if !rules.audiences.is_empty() {
            let aud = audiences(&raw)?;
            if aud.is_empty() {
                return Err(Rejection::MissingClaim("aud"));
            }
            if !aud.iter().any(|a| rules.audiences.iter().any(|c| c == a)) {
                return Err(Rejection::WrongAudience);
            }
        } else {
            audiences(&raw)?;
        }
        let expires_at_ms = numeric_date_ms(&raw, "exp")?;
        if expires_at_ms.is_none() && rules.require_exp {
            return Err(Rejection::MissingClaim("exp"));
        }
        let not_before_ms = numeric_date_ms(&raw, "nbf")?;
        let issued_at_ms = numeric_date_ms(&raw, "iat")?.unwrap_or(0);
        let client_id = match string(&raw, "client_id")? {
            Some(c) => Some(c),
            None => string(&raw, "azp")?,
        };
        let tenant = match &rules.tenant_claim {
            Some(name) => tenant(raw.get(name))?,
            None => None,
        };
        let token_version = match &rules.version_claim {
            Some(name) => version(raw.get(name))?,
            None => None,
        };
        Ok(Self {
            issuer: issuer.unwrap_or_default(),
            token_id: string(&raw, "jti")?,
            subject: string(&raw, "sub")?,
            client_id,
            key_id,
            session_id: string(&raw, "sid")?,
            tenant,
            token_version,
            issued_at_ms,
            expires_at_ms,
            not_before_ms,
            raw,
        })
    }

    /// The time checks, run on every verification including cache hits: expired when
    /// `now_ms >= exp + leeway`, not yet valid when `now_ms + leeway < nbf`.
    pub fn check_time(&self, now_ms: u64, leeway_ms: u64) -> Result<(), Rejection> {
        if let Some(exp) = self.expires_at_ms
            && now_ms >= exp.saturating_add(leeway_ms)
        {
            return Err(Rejection::Expired);
        }
        if let Some(nbf) = self.not_before_ms
            && now_ms.saturating_add(leeway_ms) < nbf
        {
            return Err(Rejection::NotYetValid);
        }
        Ok(())
    }

    /// The `aud` claim as a list (a single string becomes one element; absent: empty).
    pub fn audiences(&self) -> Vec<String> {
        audiences(&self.raw).unwrap_or_default()
    }
}

/// An optional string claim; `null` counts as absent, any other non-string is invalid.
fn string(raw: &Map<String, Value>, name: &'static str) -> Result<Option<String>, Rejection> {
    match raw.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(Rejection::InvalidClaim(name)),
    }
}

/// `aud`: a string or an array of strings.
fn audiences(raw: &Map<String, Value>) -> Result<Vec<String>, Rejection> {
    match raw.get("aud") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or(Rejection::InvalidClaim("aud"))
            })
            .collect(),
        Some(_) => Err(Rejection::InvalidClaim("aud")),
    }
}

/// A NumericDate (seconds since the epoch, possibly fractional) as unix milliseconds.
fn numeric_date_ms(raw: &Map<String, Value>, name: &'static str) -> Result<Option<u64>, Rejection> {
    match raw.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => {
            if let Some(secs) = n.as_u64() {
                Ok(Some(secs.saturating_mul(1000)))
            } else if let Some(f) = n.as_f64()
                && f.is_finite()
                && f >= 0.0
            {
                // `as` saturates on overflow.
                Ok(Some((f * 1000.0) as u64))
            } else {
                Err(Rejection::InvalidClaim(name))
            }
        }
        Some(_) => Err(Rejection::InvalidClaim(name)),
    }
}

fn tenant(v: Option<&Value>) -> Result<Option<String>, Rejection> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(Rejection::InvalidClaim("tenant")),
    }
}

fn version(v: Option<&Value>) -> Result<Option<u64>, Rejection> {
    let bad = Rejection::InvalidClaim("version");
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(v) => Ok(Some(v)),
            None => match n.as_f64() {
                Some(f) if f.fract() == 0.0 && (0.0..=u64::MAX as f64).contains(&f) => Ok(Some(f as u64)),
                _ => Err(bad),
            },
        },
        Some(Value::String(s)) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse().map(Some).map_err(|_| bad)
        }
        Some(_) => Err(bad),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn rules() -> ClaimRules {
        ClaimRules {
            issuers: vec![],
            audiences: vec![],
            require_exp: true,
            tenant_claim: Some("tid".into()),
            version_claim: Some("ver".into()),
            leeway_ms: 0,
        }
    }

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn types_are_enforced() {
        let r = rules();
        let bad = |v: Value| Claims::from_raw(map(v), None, &r).unwrap_err();
        assert_eq!(bad(json!({"exp": 10, "jti": 5})), Rejection::InvalidClaim("jti"));
        assert_eq!(bad(json!({"exp": "10"})), Rejection::InvalidClaim("exp"));
        assert_eq!(bad(json!({"exp": -1})), Rejection::InvalidClaim("exp"));
        assert_eq!(
            bad(json!({"exp": 10, "aud": [1]})),
            Rejection::InvalidClaim("aud")
        );
        assert_eq!(
            bad(json!({"exp": 10, "ver": "1.5"})),
            Rejection::InvalidClaim("version")
        );
        assert_eq!(
            bad(json!({"exp": 10, "ver": -3})),
            Rejection::InvalidClaim("version")
        );
        assert_eq!(
            bad(json!({"exp": 10, "tid": {}})),
            Rejection::InvalidClaim("tenant")
        );
        assert_eq!(bad(json!({})), Rejection::MissingClaim("exp"));
    }

    #[test]
    fn numeric_forms() {
        let c = Claims::from_raw(
            map(json!({"exp": 1.5, "iat": 2, "tid": 42, "ver": "7", "sub": null})),
            Some("k".into()),
            &rules(),
        )
        .unwrap();
        assert_eq!(c.expires_at_ms, Some(1500));
        assert_eq!(c.issued_at_ms, 2000);
        assert_eq!(c.tenant.as_deref(), Some("42"));
        assert_eq!(c.token_version, Some(7));
        assert_eq!(c.subject, None);
        assert_eq!(c.issuer, "");
        let c = Claims::from_raw(map(json!({"exp": 1, "ver": 9.0})), None, &rules()).unwrap();
        assert_eq!(c.token_version, Some(9));
        assert_eq!(c.issued_at_ms, 0);
    }

    #[test]
    fn time_checks_with_leeway() {
        let c = Claims::from_raw(map(json!({"exp": 100, "nbf": 50})), None, &rules()).unwrap();
        assert_eq!(c.check_time(99_999, 0), Ok(()));
        assert_eq!(c.check_time(100_000, 0), Err(Rejection::Expired));
        assert_eq!(c.check_time(100_000, 1), Ok(()));
        assert_eq!(c.check_time(49_999, 0), Err(Rejection::NotYetValid));
        assert_eq!(c.check_time(49_000, 1000), Ok(()));
        assert_eq!(c.check_time(u64::MAX, u64::MAX), Err(Rejection::Expired));
    }
}
