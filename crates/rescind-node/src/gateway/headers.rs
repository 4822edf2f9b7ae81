//! What every adapter tells the upstream about an allowed request: the
//! `x-rescind-*` identity headers and the staleness, one spelling for
//! forward-auth and ext_authz alike.

use super::Allowed;

/// The staleness as a header value: milliseconds, or `unknown`.
pub fn staleness_text(ms: u64) -> String {
    if ms == u64::MAX {
        "unknown".into()
    } else {
        ms.to_string()
    }
}

/// Every header [`identity_headers`] may set.
pub const IDENTITY_HEADERS: &[&str] = &[
    "x-rescind-staleness-ms",
    "x-rescind-stale",
    "x-rescind-issuer",
    "x-rescind-subject",
    "x-rescind-client-id",
    "x-rescind-tenant",
    "x-rescind-session-id",
    "x-rescind-token-id",
    "x-rescind-token-kind",
];

/// Identity headers for the upstream: `(name, value)` for each claim the
/// token has, and the staleness.
pub fn identity_headers(a: &Allowed) -> Vec<(&'static str, String)> {
    let mut out = vec![("x-rescind-staleness-ms", staleness_text(a.staleness_ms))];
    if a.stale {
        out.push(("x-rescind-stale", "true".into()));
    }
    if let Some(c) = &a.claims {
        let fields = [
            ("x-rescind-issuer", Some(&c.issuer).filter(|s| !s.is_empty())),
            ("x-rescind-subject", c.subject.as_ref()),
            ("x-rescind-client-id", c.client_id.as_ref()),
            ("x-rescind-tenant", c.tenant.as_ref()),
            ("x-rescind-session-id", c.session_id.as_ref()),
            ("x-rescind-token-id", c.token_id.as_ref()),
        ];
        for (name, value) in fields {
            if let Some(v) = value {
                out.push((name, v.clone()));
            }
        }
    } else {
        out.push(("x-rescind-token-kind", "opaque".into()));
    }
    out
}
