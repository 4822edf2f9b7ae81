//! Validation of requests (DESIGN.md §7) and conversion between the wire types
//! and the engine's. Every error names the field and the limit.

use rescind_core::check::{CheckQuery, Rule};
use rescind_core::limits::{self, FieldError, MAX_BATCH};
use rescind_core::{ConsistencyToken, Cutoff, Decision, PrincipalKind};
use rescind_proto::v1 as pb;

use crate::engine::{RevokeCommand, RevokeTarget};

/// A validated check: the query borrows the request's strings.
pub struct ValidCheck<'a> {
    /// The query.
    pub query: CheckQuery<'a>,
    /// The consistency token, when one was passed.
    pub consistency: Option<ConsistencyToken>,
}

fn opt_id<'a>(field: &str, v: &'a Option<String>) -> Result<Option<&'a str>, FieldError> {
    match v {
        Some(s) => limits::id(field, s).map(|()| Some(s.as_str())),
        None => Ok(None),
    }
}

/// Validate one `CheckRequest`.
pub fn check(req: &pb::CheckRequest) -> Result<ValidCheck<'_>, FieldError> {
    let mut query = CheckQuery {
        token_id: opt_id("token_id", &req.token_id)?,
        issued_at_ms: limits::time_ms("issued_at_ms", req.issued_at_ms)?,
        token_version: req.token_version.unwrap_or(0),
        ..CheckQuery::default()
    };
    let principals = [
        (PrincipalKind::Subject, "subject", &req.subject),
        (PrincipalKind::Client, "client_id", &req.client_id),
        (PrincipalKind::Tenant, "tenant", &req.tenant),
        (PrincipalKind::KeyId, "key_id", &req.key_id),
        (PrincipalKind::Session, "session_id", &req.session_id),
    ];
    for (kind, field, value) in principals {
        query.principals[kind.index()] = opt_id(field, value)?;
    }
    let consistency = match &req.consistency_token {
        Some(bytes) => Some(
            ConsistencyToken::decode(bytes)
                .map_err(|e| FieldError::new("consistency_token", e.to_string()))?,
        ),
        None => None,
    };
    Ok(ValidCheck { query, consistency })
}

/// Name a field of the `i`-th check of a batch (`checks[3].token_id`); built
/// only on error, so valid batches allocate nothing for names.
pub fn in_batch(i: usize, e: FieldError) -> FieldError {
    FieldError::new(format!("checks[{i}].{}", e.field), e.problem)
}

/// A field error as the gRPC status a caller sees.
pub fn invalid(e: FieldError) -> tonic::Status {
    tonic::Status::invalid_argument(e.to_string())
}

/// Validate a batch's size.
pub fn batch_size(n: usize) -> Result<(), FieldError> {
    if n > MAX_BATCH {
        return Err(FieldError::new(
            "checks",
            format!("at most {MAX_BATCH} checks per batch (got {n})"),
        ));
    }
    Ok(())
}

/// Validate a whole `CheckBatchRequest`: its size, then every check (errors
/// name `checks[i].field`).
pub fn check_batch(checks: &[pb::CheckRequest]) -> Result<Vec<ValidCheck<'_>>, FieldError> {
    batch_size(checks.len())?;
    checks
        .iter()
        .enumerate()
        .map(|(i, c)| check(c).map_err(|e| in_batch(i, e)))
        .collect()
}

/// Validate a `RevokeRequest`.
pub fn revoke(req: pb::RevokeRequest) -> Result<RevokeCommand, FieldError> {
    limits::text("reason", &req.reason)?;
    limits::text("actor", &req.actor)?;
    let target = match req.target {
        None => {
            return Err(FieldError::new(
                "target",
                "set exactly one of `token` or `cutoff`",
            ));
        }
        Some(pb::revoke_request::Target::Token(t)) => {
            limits::id("token.token_id", &t.token_id)?;
            RevokeTarget::Token {
                expires_at_ms: limits::time_ms("token.expires_at_ms", t.expires_at_ms)?,
                token_id: t.token_id,
            }
        }
        Some(pb::revoke_request::Target::Cutoff(c)) => {
            let kind = principal_kind(c.principal_kind)?;
            limits::id("cutoff.principal_id", &c.principal_id)?;
            RevokeTarget::Cutoff {
                kind,
                cutoff: Cutoff {
                    issued_before_ms: limits::time_ms("cutoff.issued_before_ms", c.issued_before_ms)?,
                    min_version: c.min_version,
                },
                principal: c.principal_id,
            }
        }
    };
    Ok(RevokeCommand {
        target,
        reason: req.reason,
        actor: req.actor,
    })
}

fn principal_kind(raw: i32) -> Result<PrincipalKind, FieldError> {
    let field = "cutoff.principal_kind";
    match pb::PrincipalKind::try_from(raw) {
        Ok(pb::PrincipalKind::Subject) => Ok(PrincipalKind::Subject),
        Ok(pb::PrincipalKind::Client) => Ok(PrincipalKind::Client),
        Ok(pb::PrincipalKind::Tenant) => Ok(PrincipalKind::Tenant),
        Ok(pb::PrincipalKind::KeyId) => Ok(PrincipalKind::KeyId),
        Ok(pb::PrincipalKind::Session) => Ok(PrincipalKind::Session),
        Ok(pb::PrincipalKind::Unspecified) => Err(FieldError::new(
            field,
            "must be set to SUBJECT, CLIENT, TENANT, KEY_ID or SESSION",
        )),
        Err(_) => Err(FieldError::new(
            field,
            format!("unknown value {raw}; expected 1..=5 (SUBJECT, CLIENT, TENANT, KEY_ID, SESSION)"),
        )),
    }
}

/// The wire form of a decision's rule.
pub fn reason(rule: Option<Rule>) -> pb::Reason {
    match rule {
        None => pb::Reason::None,
        Some(Rule::TokenId) => pb::Reason::TokenId,
        Some(Rule::Cutoff(PrincipalKind::Subject)) => pb::Reason::Subject,
        Some(Rule::Cutoff(PrincipalKind::Client)) => pb::Reason::Client,
        Some(Rule::Cutoff(PrincipalKind::Tenant)) => pb::Reason::Tenant,
        Some(Rule::Cutoff(PrincipalKind::KeyId)) => pb::Reason::KeyId,
        Some(Rule::Cutoff(PrincipalKind::Session)) => pb::Reason::Session,
    }
}

/// One result of a batch.
pub fn result(d: Decision) -> pb::CheckResult {
    pb::CheckResult {
        revoked: d.revoked(),
        reason: reason(d.rule) as i32,
        revoked_at_ms: d.revoked_at_ms,
    }
}

/// The wire form of a decision.
pub fn decision(d: Decision, node_id: &str, staleness_ms: u64) -> pb::CheckResponse {
    pb::CheckResponse {
        revoked: d.revoked(),
        reason: reason(d.rule) as i32,
        revoked_at_ms: d.revoked_at_ms,
        node_id: node_id.to_owned(),
        staleness_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_fields_are_named_with_their_index() {
        let req = pb::CheckRequest {
            subject: Some("a\u{0}b".into()),
            ..Default::default()
        };
        let err = in_batch(7, check(&req).err().unwrap());
        assert_eq!(err.field, "checks[7].subject");
        let neg = pb::CheckRequest {
            issued_at_ms: -5,
            ..Default::default()
        };
        assert_eq!(check(&neg).err().unwrap().field, "issued_at_ms");
        let bad_token = pb::CheckRequest {
            consistency_token: Some(vec![9, 9, 9]),
            ..Default::default()
        };
        assert_eq!(check(&bad_token).err().unwrap().field, "consistency_token");
    }

    #[test]
    fn revoke_requests_are_checked_field_by_field() {
        let cutoff = |kind: i32| pb::RevokeRequest {
            target: Some(pb::revoke_request::Target::Cutoff(pb::CutoffRevocation {
                principal_kind: kind,
                principal_id: "alice".into(),
                issued_before_ms: 0,
                min_version: 0,
            })),
            ..Default::default()
        };
        assert!(revoke(cutoff(1)).is_ok());
        assert!(revoke(cutoff(0)).unwrap_err().to_string().contains("must be set"));
        let unknown = revoke(cutoff(42)).unwrap_err();
        assert_eq!(unknown.field, "cutoff.principal_kind");
        assert!(unknown.problem.contains("42"));
        assert_eq!(revoke(pb::RevokeRequest::default()).unwrap_err().field, "target");
        let long_reason = pb::RevokeRequest {
            reason: "r".repeat(300),
            ..cutoff(1)
        };
        assert_eq!(revoke(long_reason).unwrap_err().field, "reason");
    }
}

#[cfg(test)]
mod fuzz {
    use proptest::prelude::*;

    use super::*;

    fn any_text() -> impl Strategy<Value = Option<String>> {
        prop::option::of(prop_oneof![".{0,8}", "[a-z]{500,600}", any::<String>()])
    }

    proptest! {
        /// Arbitrary requests never panic, and whatever passes respects the limits.
        #[test]
        fn any_request_is_answered_without_panic(
            token_id in any_text(), subject in any_text(), tenant in any_text(),
            issued_at_ms in any::<i64>(), token in prop::option::of(prop::collection::vec(any::<u8>(), 0..64)),
            kind in any::<i32>(), before in any::<i64>(), reason in ".{0,300}",
        ) {
            let req = pb::CheckRequest {
                token_id: token_id.clone(), subject, tenant, issued_at_ms,
                consistency_token: token, ..Default::default()
            };
            if let Ok(v) = check(&req) {
                for id in v.query.token_id.iter().chain(v.query.principals.iter().flatten()) {
                    prop_assert!(!id.is_empty() && id.len() <= limits::MAX_ID_BYTES);
                    prop_assert!(!id.chars().any(char::is_control));
                }
                prop_assert!(issued_at_ms >= 0);
            }
            let revoke_req = pb::RevokeRequest {
                target: Some(pb::revoke_request::Target::Cutoff(pb::CutoffRevocation {
                    principal_kind: kind,
                    principal_id: token_id.unwrap_or_default(),
                    issued_before_ms: before,
                    min_version: 0,
                })),
                reason,
                actor: String::new(),
            };
            if revoke(revoke_req).is_ok() {
                prop_assert!((1..=5).contains(&kind) && before >= 0);
            }
        }
    }
}
