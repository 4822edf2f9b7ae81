//! Envoy `ext_authz` v3 (`envoy.service.auth.v3.Authorization/Check`) on the
//! gRPC port: a thin adapter over [`Gateway::decide`].
//!
//! The credential is the request's `authorization` header, or the payload
//! Envoy's `jwt_authn` filter verified (`metadata_context.filter_metadata
//! ["envoy.filters.http.jwt_authn"]`, its first struct field) when the
//! header is absent. Allowed: OK, with `x-rescind-*` identity and staleness
//! headers for the upstream. Revoked or invalid: a denied HTTP response 401
//! with `WWW-Authenticate: Bearer error="invalid_token", ...`. Stale beyond
//! the bound: the route's `context_extensions` decide (`rescind_on_stale`
//! = `open` | `closed`, `rescind_max_staleness_ms`), closed by default.

use envoy_types::ext_authz::v3::pb::{
    Authorization, CheckRequest, CheckResponse, HeaderAppendAction, HttpStatusCode,
};
use envoy_types::ext_authz::v3::{CheckResponseExt, DeniedHttpResponseBuilder, OkHttpResponseBuilder};
use envoy_types::pb::google::protobuf::{Struct, Value as PbValue, value::Kind};
use tonic::{Request, Response, Status};

use crate::gateway::headers::{IDENTITY_HEADERS, identity_headers, staleness_text};
use crate::gateway::{Credential, Decision, Gateway, RoutePolicy, StalePolicy};

/// The metadata namespace of Envoy's JWT filter.
pub const JWT_AUTHN: &str = "envoy.filters.http.jwt_authn";

/// The Envoy authorization service.
#[derive(Clone)]
pub struct ExtAuthz {
    gateway: Gateway,
}

impl ExtAuthz {
    /// A service deciding with `gateway`.
    pub fn new(gateway: Gateway) -> Self {
        Self { gateway }
    }

    /// Decide one Envoy check request.
    pub fn answer(&self, req: &CheckRequest) -> CheckResponse {
        let attrs = req.attributes.as_ref();
        let ext = attrs.map(|a| &a.context_extensions);
        // A malformed override fails closed: a typo must not open a route.
        let closed = RoutePolicy {
            on_stale: StalePolicy::Closed,
            max_staleness_ms: 0,
        };
        let max = ext
            .and_then(|e| e.get("rescind_max_staleness_ms"))
            .map(|v| v.parse::<u64>());
        let route = match max {
            Some(Err(_)) => closed,
            max => self
                .gateway
                .default_policy()
                .with_overrides(
                    ext.and_then(|e| e.get("rescind_on_stale")).map(String::as_str),
                    max.and_then(Result::ok),
                )
                .unwrap_or(closed),
        };
        let header = attrs
            .and_then(|a| a.request.as_ref())
            .and_then(|r| r.http.as_ref())
            .and_then(|h| h.headers.get("authorization"))
            .and_then(|v| rescind_jwt::bearer(v));
        let credential = match header {
            Some(token) => Some(Credential::Bearer(token)),
            None => attrs
                .and_then(|a| a.metadata_context.as_ref())
                .and_then(|m| m.filter_metadata.get(JWT_AUTHN))
                .and_then(first_payload)
                .map(Credential::Verified),
        };
        match self.gateway.decide(credential, route) {
            Decision::Allow(a) => {
                let mut ok = OkHttpResponseBuilder::new();
                let headers = identity_headers(&a);
                for (name, value) in &headers {
                    ok.add_header(
                        *name,
                        value.clone(),
                        Some(HeaderAppendAction::OverwriteIfExistsOrAdd),
                        false,
                    );
                }
                // A client must not pass its own identity headers upstream.
                for name in IDENTITY_HEADERS {
                    if !headers.iter().any(|(n, _)| n == name) {
                        ok.remove_header(*name);
                    }
                }
                let mut resp = CheckResponse::with_status(Status::ok("allowed"));
                resp.set_http_response(ok);
                resp
            }
            Decision::Deny(d) => {
                let mut denied = DeniedHttpResponseBuilder::new();
                let status = if d.status() == 503 {
                    HttpStatusCode::ServiceUnavailable
                } else {
                    HttpStatusCode::Unauthorized
                };
                denied
                    .set_http_status(status)
                    .add_header("www-authenticate", d.www_authenticate(), None, false)
                    .add_header(
                        "x-rescind-staleness-ms",
                        staleness_text(d.staleness_ms),
                        None,
                        false,
                    )
                    .set_body(d.refusal.description());
                let code = if d.status() == 503 {
                    Status::unavailable(d.refusal.description())
                } else {
                    Status::unauthenticated(d.refusal.description())
                };
                let mut resp = CheckResponse::with_status(code);
                resp.set_http_response(denied);
                resp
            }
        }
    }
}

#[tonic::async_trait]
impl Authorization for ExtAuthz {
    async fn check(&self, request: Request<CheckRequest>) -> Result<Response<CheckResponse>, Status> {
        let _span = tracing::debug_span!("rpc.ext_authz").entered();
        Ok(Response::new(self.answer(request.get_ref())))
    }
}

/// The first struct-valued field of the `jwt_authn` metadata: the payload
/// under the provider's `payload_in_metadata` name.
fn first_payload(s: &Struct) -> Option<serde_json::Map<String, serde_json::Value>> {
    let mut keys: Vec<&String> = s.fields.keys().collect();
    keys.sort();
    keys.into_iter().find_map(|k| match s.fields[k].kind.as_ref() {
        Some(Kind::StructValue(inner)) => Some(to_json_map(inner, 0)),
        _ => None,
    })
}

fn to_json_map(s: &Struct, depth: usize) -> serde_json::Map<String, serde_json::Value> {
    s.fields
        .iter()
        .map(|(k, v)| (k.clone(), to_json(v, depth + 1)))
        .collect()
}

/// A protobuf `Value` as JSON; integral numbers (claims like `exp`) as
/// integers. Nesting beyond 32 levels is cut (null).
fn to_json(v: &PbValue, depth: usize) -> serde_json::Value {
    use serde_json::Value as J;
    if depth > 32 {
        return J::Null;
    }
    match v.kind.as_ref() {
        None | Some(Kind::NullValue(_)) => J::Null,
        Some(Kind::BoolValue(b)) => J::Bool(*b),
        Some(Kind::StringValue(s)) => J::String(s.clone()),
        Some(Kind::NumberValue(n)) => {
            if n.fract() == 0.0 && n.abs() < 9.0e15 {
                J::from(*n as i64)
            } else {
                serde_json::Number::from_f64(*n).map_or(J::Null, J::Number)
            }
        }
        Some(Kind::StructValue(s)) => J::Object(to_json_map(s, depth)),
        Some(Kind::ListValue(l)) => J::Array(l.values.iter().map(|x| to_json(x, depth + 1)).collect()),
    }
}
