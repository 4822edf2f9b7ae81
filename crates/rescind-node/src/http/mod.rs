//! The HTTP API (axum) on its own port (`http_listen`, default
//! 127.0.0.1:7480): the JSON API, OAuth revocation and introspection, and
//! forward-auth. Every error is JSON `{error, field, limit}` with 400, 401,
//! 403, 413, 415, 429 or 503; no input panics.
//!
//! ## Layout
//! - [`api`]: `/v1/revocations`, `/v1/revocations:batch`, `/v1/check`, `/v1/status`.
//! - [`authz`]: `/v1/authz`, forward-auth for nginx, Caddy and Traefik.
//! - [`oauth`]: RFC 7009 `/oauth2/revoke`, RFC 7662 `/oauth2/introspect`.
//! - [`probes`]: `/metrics`, `/healthz`, `/readyz` (no token: for Prometheus
//!   and orchestrators).
//! - [`body`]: body size, content type and parsing, each failure named.
//! - [`error`]: the `ApiError` every handler answers with.
//! - [`serve`](mod@serve): the accept loop and its bounds (`[limits]`, `[tls]`).
//! - `openapi.json`: the OpenAPI 3 document served at `/v1/openapi.json`.

// Errors are the cold path of a handler, and axum moves them by value anyway.
#![allow(clippy::result_large_err)]

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{any, get, post};
use tonic::metadata::{MetadataMap, MetadataValue};
use tower::ServiceBuilder;

use crate::auth::Auth;
use crate::engine::Engine;
use crate::gateway::Gateway;
use crate::watch::WatchHub;

pub mod api;
pub mod authz;
pub mod body;
pub mod error;
pub mod oauth;
pub mod probes;
pub mod serve;

pub use error::ApiError;
pub use serve::{HttpLimits, serve};

/// The OpenAPI 3 document of this API (checked in beside this file).
pub const OPENAPI: &str = include_str!("openapi.json");

/// What every handler reads.
#[derive(Clone)]
pub struct HttpState {
    /// The node.
    pub engine: Engine,
    /// The same tokens as gRPC.
    pub auth: Auth,
    /// The decision function.
    pub gateway: Gateway,
    /// For `/v1/status`.
    pub watch: Arc<WatchHub>,
    /// Largest request body.
    pub max_body: usize,
    /// Longest consistency-token wait.
    pub max_consistency_wait: Duration,
    /// What `/readyz` answers.
    pub readiness: crate::health::Readiness,
    /// The data dir (for its file system's free space).
    pub data_dir: std::path::PathBuf,
}

/// The `authorization` header as gRPC metadata, for the shared auth checks.
fn metadata(headers: &HeaderMap) -> Result<MetadataMap, ApiError> {
    let mut md = MetadataMap::new();
    if let Some(v) = headers.get(header::AUTHORIZATION) {
        let value = MetadataValue::try_from(v.as_bytes())
            .map_err(|_| ApiError::unauthenticated("authorization: not visible ASCII"))?;
        md.insert("authorization", value);
    }
    // Set by the server from the connection (see `serve`).
    if let Some(v) = headers.get(crate::auth::SOURCE_HEADER)
        && let Ok(value) = MetadataValue::try_from(v.as_bytes())
    {
        md.insert(crate::auth::SOURCE_HEADER, value);
    }
    Ok(md)
}

/// Every route, with the body limit, the in-flight bound (429 beyond it) and
/// `request_timeout`, the longest a request may hold an in-flight slot
/// (reading its body and a consistency-token wait included; then 408).
pub fn router(state: HttpState, max_in_flight: usize, request_timeout: Duration) -> Router {
    let overload = ServiceBuilder::new()
        .layer(HandleErrorLayer::new(move |e: tower::BoxError| async move {
            if e.is::<tower::timeout::error::Elapsed>() {
                ApiError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    format!(
                        "the request took more than {} (limits.request_timeout)",
                        humantime::format_duration(request_timeout)
                    ),
                )
            } else {
                ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too many HTTP requests in flight; retry shortly",
                )
                .with_header(header::RETRY_AFTER, "1")
            }
        }))
        .load_shed()
        // One semaphore for the whole router (a per-route limit would let
        // each route have max_in_flight).
        .layer(tower::limit::GlobalConcurrencyLimitLayer::new(max_in_flight))
        // A client trickling its body cannot hold a slot for longer.
        .timeout(request_timeout);
    Router::new()
        .route("/v1/revocations", post(api::revoke))
        .route("/v1/revocations:batch", post(api::revoke_batch))
        .route("/v1/check", post(api::check))
        .route("/v1/status", get(api::status))
        .route("/v1/authz", any(authz::authz))
        .route("/oauth2/revoke", post(oauth::revoke))
        .route("/oauth2/introspect", post(oauth::introspect))
        .route("/metrics", get(probes::metrics))
        .route("/healthz", get(crate::health::healthz))
        .route("/readyz", get(probes::readyz))
        .route(
            "/v1/openapi.json",
            get(|| async { ([(header::CONTENT_TYPE, "application/json")], OPENAPI) }),
        )
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such endpoint; see /v1/openapi.json") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method not allowed; see /v1/openapi.json",
            )
            .into_response()
        })
        .layer(overload)
        .with_state(state)
}
