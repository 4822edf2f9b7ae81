//! `/v1/authz`: forward-auth for nginx `auth_request`, Caddy `forward_auth`
//! and Traefik `ForwardAuth`. 200 with identity headers, or 401 with
//! `WWW-Authenticate` (503 when the node cannot vouch for its state and the
//! route fails closed). A thin adapter over [`crate::gateway::Gateway::decide`].
//!
//! Query parameters (set in the proxy's config, never by the client):
//! `on_stale=open|closed` and `max_staleness_ms=N` override `[gateway]`.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::HttpState;
use super::error::ApiError;
use crate::gateway::{Allowed, Credential, Decision, RoutePolicy, StalePolicy};

/// The route's overrides.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct AuthzQuery {
    on_stale: Option<String>,
    max_staleness_ms: Option<u64>,
}

/// The route policy: `[gateway]` with the query's overrides.
pub fn route_policy(
    default: RoutePolicy,
    on_stale: Option<&str>,
    max_staleness_ms: Option<u64>,
) -> Result<RoutePolicy, String> {
    let on_stale = match on_stale {
        None => default.on_stale,
        Some(v) => {
            StalePolicy::parse(v).ok_or_else(|| format!("on_stale must be open or closed (got {v:?})"))?
        }
    };
    Ok(RoutePolicy {
        on_stale,
        max_staleness_ms: max_staleness_ms.unwrap_or(default.max_staleness_ms),
    })
}

/// The bearer token of an `Authorization` header, if it has one.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(rescind_jwt::bearer)
}

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

/// `/v1/authz`.
pub(super) async fn authz(
    State(s): State<HttpState>,
    query: Result<Query<AuthzQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::field("query", e.body_text()))?;
    let route = route_policy(
        s.gateway.default_policy(),
        q.on_stale.as_deref(),
        q.max_staleness_ms,
    )
    .map_err(|e| ApiError::field("on_stale", e))?;
    let credential = bearer(&headers).map(Credential::Bearer);
    match s.gateway.decide(credential, route) {
        Decision::Allow(a) => {
            let mut resp = StatusCode::OK.into_response();
            for (name, value) in identity_headers(&a) {
                if let Ok(v) = HeaderValue::try_from(value) {
                    resp.headers_mut().insert(HeaderName::from_static(name), v);
                }
            }
            resp.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            Ok(resp)
        }
        Decision::Deny(d) => {
            tracing::debug!(reason = %d.refusal.description(), "forward-auth denied");
            let status = StatusCode::from_u16(d.status()).unwrap_or(StatusCode::UNAUTHORIZED);
            let mut e = ApiError::new(status, d.refusal.description())
                .with_header(header::WWW_AUTHENTICATE, d.www_authenticate())
                .with_header(header::CACHE_CONTROL, "no-store")
                .with_header(
                    HeaderName::from_static("x-rescind-staleness-ms"),
                    staleness_text(d.staleness_ms),
                );
            if status == StatusCode::SERVICE_UNAVAILABLE {
                e = e.with_header(header::RETRY_AFTER, "1");
            }
            Err(e)
        }
    }
}
