//! The JSON API: `POST /v1/revocations`, `POST /v1/revocations:batch`,
//! `POST /v1/check`, `GET /v1/status`. Bodies mirror the gRPC messages field
//! for field with the proto's names (bytes as base64, enums by name); every
//! request goes through the same validation and auth as over gRPC.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use rescind_proto::v1 as pb;
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::ApiError;
use super::{HttpState, body, metadata};
use crate::convert;
use crate::engine::RevokeOutcome;
use crate::metrics::{Api, CheckOutcome};

/// `TokenRevocation`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenJson {
    token_id: String,
    #[serde(default)]
    expires_at_ms: i64,
    #[serde(default)]
    issuer: String,
}

/// `CutoffRevocation`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CutoffJson {
    principal_kind: Value,
    principal_id: String,
    #[serde(default)]
    issued_before_ms: i64,
    #[serde(default)]
    min_version: u64,
    #[serde(default)]
    issuer: String,
    #[serde(default)]
    version_only: bool,
}

/// `RevokeRequest`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RevokeJson {
    #[serde(default)]
    token: Option<TokenJson>,
    #[serde(default)]
    cutoff: Option<CutoffJson>,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    actor: String,
}

/// `RevokeBatchRequest`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeBatchJson {
    revocations: Vec<RevokeJson>,
}

/// `CheckRequest`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct CheckJson {
    token_id: Option<String>,
    subject: Option<String>,
    client_id: Option<String>,
    tenant: Option<String>,
    key_id: Option<String>,
    session_id: Option<String>,
    #[serde(default)]
    issued_at_ms: i64,
    token_version: Option<u64>,
    consistency_token: Option<String>,
    issuer: Option<String>,
}

/// A principal kind by its proto name (`PRINCIPAL_KIND_SUBJECT`), short
/// name (`SUBJECT`, `subject`) or number.
fn principal_kind(field: &str, v: &Value) -> Result<i32, ApiError> {
    if let Some(n) = v.as_i64() {
        return i32::try_from(n).map_err(|_| ApiError::field(field, "out of range"));
    }
    let name = v.as_str().unwrap_or_default().to_ascii_uppercase();
    let short = name.strip_prefix("PRINCIPAL_KIND_").unwrap_or(&name);
    pb::PrincipalKind::from_str_name(&format!("PRINCIPAL_KIND_{short}"))
        .map(|k| k as i32)
        .ok_or_else(|| {
            ApiError::field(
                field,
                "must be one of SUBJECT, CLIENT, TENANT, KEY_ID, SESSION (or PRINCIPAL_KIND_...)",
            )
        })
}

impl RevokeJson {
    fn into_pb(self, prefix: &str) -> Result<pb::RevokeRequest, ApiError> {
        let target = match (self.token, self.cutoff) {
            (Some(t), None) => Some(pb::revoke_request::Target::Token(pb::TokenRevocation {
                token_id: t.token_id,
                expires_at_ms: t.expires_at_ms,
                issuer: t.issuer,
            })),
            (None, Some(c)) => Some(pb::revoke_request::Target::Cutoff(pb::CutoffRevocation {
                principal_kind: principal_kind(&format!("{prefix}cutoff.principal_kind"), &c.principal_kind)?,
                principal_id: c.principal_id,
                issued_before_ms: c.issued_before_ms,
                min_version: c.min_version,
                issuer: c.issuer,
                version_only: c.version_only,
            })),
            (Some(_), Some(_)) => {
                return Err(ApiError::field(
                    format!("{prefix}target"),
                    "set exactly one of `token` or `cutoff`, not both",
                ));
            }
            (None, None) => None,
        };
        Ok(pb::RevokeRequest {
            target,
            reason: self.reason,
            actor: self.actor,
        })
    }
}

fn outcome_json(out: &RevokeOutcome, node_id: &str) -> Value {
    json!({
        "consistency_token": B64.encode(out.token.encode()),
        "already_revoked": out.already_revoked,
        "node_id": node_id,
        "seq": out.seq,
    })
}

impl CheckJson {
    fn into_pb(self) -> Result<pb::CheckRequest, ApiError> {
        let c = self;
        let consistency_token = match &c.consistency_token {
            Some(t) => Some(
                B64.decode(t)
                    .map_err(|e| ApiError::field("consistency_token", format!("not base64: {e}")))?,
            ),
            None => None,
        };
        Ok(pb::CheckRequest {
            token_id: c.token_id,
            subject: c.subject,
            client_id: c.client_id,
            tenant: c.tenant,
            key_id: c.key_id,
            session_id: c.session_id,
            issued_at_ms: c.issued_at_ms,
            token_version: c.token_version,
            consistency_token,
            issuer: c.issuer,
        })
    }
}

/// The bytes-to-command path of a `POST /v1/revocations` body (what the
/// handler runs after reading the body), for fuzzing and tests.
pub fn decode_revoke(bytes: &[u8]) -> Result<crate::engine::RevokeCommand, ApiError> {
    let json: RevokeJson = body::parse_json(bytes)?;
    Ok(convert::revoke(json.into_pb("")?)?)
}

/// The bytes-to-commands path of a `POST /v1/revocations:batch` body.
pub fn decode_revoke_batch(bytes: &[u8]) -> Result<Vec<crate::engine::RevokeCommand>, ApiError> {
    batch_commands(body::parse_json(bytes)?)
}

fn batch_commands(json: RevokeBatchJson) -> Result<Vec<crate::engine::RevokeCommand>, ApiError> {
    let reqs = json
        .revocations
        .into_iter()
        .enumerate()
        .map(|(i, r)| r.into_pb(&format!("revocations[{i}].")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(convert::revoke_batch(reqs)?)
}

/// The bytes-to-query path of a `POST /v1/check` body.
pub fn decode_check(bytes: &[u8]) -> Result<(), ApiError> {
    let c: CheckJson = body::parse_json(bytes)?;
    let message = c.into_pb()?;
    convert::check((&message).into())?;
    Ok(())
}

/// `POST /v1/revocations`.
pub(super) async fn revoke(
    State(s): State<HttpState>,
    headers: HeaderMap,
    req: Body,
) -> Result<Json<Value>, ApiError> {
    let who = s.auth.require_admin(&metadata(&headers)?)?;
    let json: RevokeJson = body::json(&headers, req, s.max_body).await?;
    let mut cmd = convert::revoke(json.into_pb("")?)?;
    cmd.actor = who.actor(&cmd.actor);
    let out = s.engine.revoke(cmd).await?;
    tracing::info!(
        already = out.already_revoked,
        seq = out.seq,
        "revocation durable (http)"
    );
    Ok(Json(outcome_json(&out, s.engine.node_id())))
}

/// `POST /v1/revocations:batch`.
pub(super) async fn revoke_batch(
    State(s): State<HttpState>,
    headers: HeaderMap,
    req: Body,
) -> Result<Json<Value>, ApiError> {
    let who = s.auth.require_admin(&metadata(&headers)?)?;
    let json: RevokeBatchJson = body::json(&headers, req, s.max_body).await?;
    let mut cmds = batch_commands(json)?;
    for cmd in &mut cmds {
        cmd.actor = who.actor(&cmd.actor);
    }
    let outs = s.engine.revoke_many(cmds).await?;
    let answer = convert::revoke_batch_answer(&outs, s.engine.node_id());
    tracing::info!(
        revoked = answer.revoked,
        already = answer.already_revoked,
        "revocation batch durable (http)"
    );
    Ok(Json(json!({
        "results": answer.results.iter().map(|r| json!({"already_revoked": r.already_revoked, "seq": r.seq})).collect::<Vec<_>>(),
        "consistency_token": B64.encode(&answer.consistency_token),
        "node_id": answer.node_id,
        "revoked": answer.revoked,
        "already_revoked": answer.already_revoked,
    })))
}

/// `POST /v1/check`.
pub(super) async fn check(
    State(s): State<HttpState>,
    headers: HeaderMap,
    req: Body,
) -> Result<Json<Value>, ApiError> {
    s.auth.require_reader(&metadata(&headers)?)?;
    let c: CheckJson = body::json(&headers, req, s.max_body).await?;
    let message = c.into_pb()?;
    let valid = convert::check((&message).into())?;
    let failed = |e| {
        crate::service::count_failed(&s.engine, Api::Http, 1, e);
    };
    if let Some(token) = &valid.consistency {
        s.engine
            .wait_for(token, s.max_consistency_wait)
            .await
            .inspect_err(|e| failed(e.clone()))?;
    }
    s.engine.serving().inspect_err(|e| failed(e.clone()))?;
    let d = s.engine.check(&valid.query);
    s.engine.metrics().checks.one(Api::Http, CheckOutcome::of(&d));
    let r = convert::decision(d, s.engine.node_id(), s.engine.staleness_ms());
    Ok(Json(json!({
        "revoked": r.revoked,
        "reason": pb::Reason::try_from(r.reason).unwrap_or(pb::Reason::None).as_str_name(),
        "revoked_at_ms": r.revoked_at_ms,
        "node_id": r.node_id,
        "staleness_ms": r.staleness_ms,
    })))
}

/// `GET /v1/status`.
pub(super) async fn status(State(s): State<HttpState>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    s.auth.require_reader(&metadata(&headers)?)?;
    let r = crate::service::status_response(&s.engine, &s.watch);
    let clock = |v: &[pb::ClockEntry]| {
        v.iter()
            .map(|e| json!({"origin_node": e.origin_node, "incarnation": e.incarnation, "seq": e.seq}))
            .collect::<Vec<_>>()
    };
    Ok(Json(json!({
        "node_id": r.node_id,
        "node_name": r.node_name,
        "incarnation": r.incarnation,
        "region": r.region,
        "deny_entries": r.deny_entries,
        "cutoffs": r.cutoffs,
        "digest": r.digest,
        "version_vector": r.version_vector.iter().map(|o| json!({"origin": o.origin, "seq": o.seq})).collect::<Vec<_>>(),
        "staleness_ms": r.staleness_ms,
        "expired_pruned": r.expired_pruned,
        "uptime_ms": r.uptime_ms,
        "peer_lag": r.peer_lag.iter().map(|p| json!({"node": p.node, "region": p.region, "staleness_ms": p.staleness_ms})).collect::<Vec<_>>(),
        "gc_last_before": r.gc_last_before,
        "gc_last_after": r.gc_last_after,
        "clock": clock(&r.clock),
        "cluster_id": r.cluster_id,
        "watchers": r.watchers,
        "watchers_cut_off": r.watchers_cut_off,
        "upstream": r.upstream,
        "deny_bytes": r.deny_bytes,
    })))
}
