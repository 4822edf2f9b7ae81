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
use crate::gateway::headers::{identity_headers, staleness_text};
use crate::gateway::{Credential, Decision};

/// The route's overrides.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct AuthzQuery {
    on_stale: Option<String>,
    max_staleness_ms: Option<u64>,
}

/// The bearer token of an `Authorization` header, if it has one.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(rescind_jwt::bearer)
}

/// `/v1/authz`.
pub(super) async fn authz(
    State(s): State<HttpState>,
    query: Result<Query<AuthzQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::field("query", e.body_text()))?;
    let route = s
        .gateway
        .default_policy()
        .with_overrides(q.on_stale.as_deref(), q.max_staleness_ms)
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
