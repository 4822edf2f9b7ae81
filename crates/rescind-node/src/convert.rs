//! Validation of requests (docs/design.md §7) and conversion between the wire types
//! and the engine's. Every error names the field and the limit.

use rescind_core::check::{CheckQuery, Rule};
use rescind_core::limits::{self, FieldError, MAX_BATCH, MAX_REVOKE_BATCH};
use rescind_core::{ConsistencyToken, Cutoff, Decision, PrincipalKind, scope};
use rescind_proto::v1 as pb;

use crate::engine::{RevokeCommand, RevokeOutcome, RevokeTarget};

/// A validated check: the query borrows the request's strings.
pub struct ValidCheck<'a> {
    /// The query.
    pub query: CheckQuery<'a>,
    /// The consistency token, when one was passed.
    pub consistency: Option<ConsistencyToken>,
}

fn opt_id<'a>(field: &str, v: Option<&'a str>) -> Result<Option<&'a str>, FieldError> {
    match v {
        Some(s) => limits::id(field, s).map(|()| Some(s)),
        None => Ok(None),
    }
}

/// Validate one `CheckRequest` (owned, `(&request).into()`, or one check of
/// a batch).
pub fn check(req: pb::CheckRequestRef<'_>) -> Result<ValidCheck<'_>, FieldError> {
    let mut query = CheckQuery {
        token_id: opt_id("token_id", req.token_id)?,
        issued_at_ms: limits::time_ms("issued_at_ms", req.issued_at_ms)?,
        token_version: req.token_version.unwrap_or(0),
        issuer: issuer("issuer", req.issuer.unwrap_or(""))?,
        ..CheckQuery::default()
    };
    let principals = [
        (PrincipalKind::Subject, "subject", req.subject),
        (PrincipalKind::Client, "client_id", req.client_id),
        (PrincipalKind::Tenant, "tenant", req.tenant),
        (PrincipalKind::KeyId, "key_id", req.key_id),
        (PrincipalKind::Session, "session_id", req.session_id),
    ];
    for (kind, field, value) in principals {
        query.principals[kind.index()] = opt_id(field, value)?;
    }
    let consistency = match req.consistency_token {
        Some(bytes) => Some(
            ConsistencyToken::decode(bytes)
                .map_err(|e| FieldError::new("consistency_token", e.to_string()))?,
        ),
        None => None,
    };
    if !query.names_something() {
        return Err(FieldError::new(
            "token_id",
            "a check names nothing: set token_id or at least one of subject, client_id, tenant, key_id, session_id",
        ));
    }
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

/// A validated `CheckBatchRequest`: its queries, in order, ready for
/// `check_many`, and the consistency tokens some of them carried.
#[derive(Debug)]
pub struct ValidBatch<'a> {
    /// One query per check, in the request's order.
    pub queries: Vec<CheckQuery<'a>>,
    /// Every consistency token passed (a batch is answered once all are met).
    pub consistency: Vec<ConsistencyToken>,
}

/// Validate a whole `CheckBatchRequest`: its size, then every check (errors
/// name `checks[i].field`). The queries borrow the ids from the request's
/// buffer and go straight into one vector sized for the batch.
pub fn check_batch(request: &pb::CheckBatchRequest) -> Result<ValidBatch<'_>, FieldError> {
    batch_size(request.len())?;
    let mut batch = ValidBatch {
        queries: Vec::with_capacity(request.len()),
        consistency: Vec::new(),
    };
    for (i, c) in request.checks().enumerate() {
        let c = c.map_err(|e| in_batch(i, FieldError::new(e.field, "must be UTF-8")))?;
        let valid = check(c).map_err(|e| in_batch(i, e))?;
        batch.queries.push(valid.query);
        batch.consistency.extend(valid.consistency);
    }
    Ok(batch)
}

/// An issuer: empty (the issuer-less namespace) or a valid id.
pub fn issuer<'a>(field: &str, value: &'a str) -> Result<&'a str, FieldError> {
    if !value.is_empty() {
        limits::id(field, value)?;
    }
    Ok(value)
}

/// Validate a whole `RevokeBatchRequest`: its size, then every revocation
/// (errors name `revocations[i].field`).
pub fn revoke_batch(reqs: Vec<pb::RevokeRequest>) -> Result<Vec<RevokeCommand>, FieldError> {
    if reqs.is_empty() || reqs.len() > MAX_REVOKE_BATCH {
        return Err(FieldError::new(
            "revocations",
            format!(
                "1 to {MAX_REVOKE_BATCH} revocations per batch (got {})",
                reqs.len()
            ),
        ));
    }
    reqs.into_iter()
        .enumerate()
        .map(|(i, r)| {
            revoke(r).map_err(|e| FieldError::new(format!("revocations[{i}].{}", e.field), e.problem))
        })
        .collect()
}

/// The answer to a durable batch: one result per revocation, and one
/// consistency token covering them all (each origin's ops are dense, so the
/// highest seq covers the rest).
pub fn revoke_batch_answer(outs: &[RevokeOutcome], node_id: &str) -> pb::RevokeBatchResponse {
    let newest = outs.iter().filter(|o| !o.already_revoked).max_by_key(|o| o.seq);
    let token = match newest {
        Some(o) => o.token.clone(),
        None => outs
            .iter()
            .map(|o| o.token.clone())
            .next()
            .unwrap_or(ConsistencyToken { dots: Vec::new() }),
    };
    let revoked = outs.iter().filter(|o| !o.already_revoked).count() as u64;
    pb::RevokeBatchResponse {
        results: outs
            .iter()
            .map(|o| pb::RevokeResult {
                already_revoked: o.already_revoked,
                seq: o.seq,
            })
            .collect(),
        consistency_token: token.encode(),
        node_id: node_id.to_owned(),
        revoked,
        already_revoked: outs.len() as u64 - revoked,
    }
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
            let issuer = issuer("token.issuer", &t.issuer)?;
            RevokeTarget::Token {
                expires_at_ms: limits::time_ms("token.expires_at_ms", t.expires_at_ms)?,
                token_id: scope::key(issuer, &t.token_id).into_owned(),
            }
        }
        Some(pb::revoke_request::Target::Cutoff(c)) => {
            let kind = principal_kind(c.principal_kind)?;
            limits::id("cutoff.principal_id", &c.principal_id)?;
            let issuer = issuer("cutoff.issuer", &c.issuer)?;
            let issued_before_ms = limits::time_ms("cutoff.issued_before_ms", c.issued_before_ms)?;
            if c.version_only && c.min_version == 0 {
                return Err(FieldError::new(
                    "cutoff.min_version",
                    "must be at least 1 with version_only (there is nothing else to raise)",
                ));
            }
            if c.version_only && issued_before_ms != 0 {
                return Err(FieldError::new(
                    "cutoff.issued_before_ms",
                    "must be 0 with version_only (version_only leaves the time as it is)",
                ));
            }
            RevokeTarget::Cutoff {
                kind,
                cutoff: Cutoff {
                    issued_before_ms,
                    min_version: c.min_version,
                },
                version_only: c.version_only,
                principal: scope::key(issuer, &c.principal_id).into_owned(),
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
    fn a_batch_keeps_its_order_and_every_consistency_token() {
        let token = ConsistencyToken::for_op(rescind_core::OriginId::new("a", 1), 3);
        let checks = vec![
            pb::CheckRequest {
                token_id: Some("t0".into()),
                ..Default::default()
            },
            pb::CheckRequest {
                subject: Some("alice".into()),
                consistency_token: Some(token.encode()),
                ..Default::default()
            },
            pb::CheckRequest {
                token_id: Some("t2".into()),
                ..Default::default()
            },
        ];
        let request = pb::CheckBatchRequest::new(&checks);
        let batch = check_batch(&request).unwrap();
        assert_eq!(batch.queries.len(), 3);
        assert_eq!(batch.queries[0].token_id, Some("t0"));
        assert_eq!(
            batch.queries[1].principals[PrincipalKind::Subject.index()],
            Some("alice")
        );
        assert_eq!(batch.queries[2].token_id, Some("t2"));
        assert_eq!(batch.consistency, vec![token]);
        let mut bad = checks.clone();
        bad[2].token_id = Some(String::new());
        assert_eq!(check_batch(&bad.into()).unwrap_err().field, "checks[2].token_id");
        assert!(
            check_batch(&pb::CheckBatchRequest::default())
                .unwrap()
                .queries
                .is_empty(),
            "an empty batch answers nothing"
        );
        let too_many = vec![checks[0].clone(); MAX_BATCH + 1];
        assert_eq!(check_batch(&too_many.into()).unwrap_err().field, "checks");
    }

    #[test]
    fn a_batch_string_that_is_not_utf8_is_named_with_its_index() {
        use prost::Message;
        let mut second = Vec::new();
        prost::encoding::bytes::encode(3, &vec![b'c', 0xc3], &mut second);
        let mut bytes = pb::CheckBatchRequest::new(&[pb::CheckRequest {
            token_id: Some("t".into()),
            ..Default::default()
        }])
        .encode_to_vec();
        prost::encoding::bytes::encode(1, &second, &mut bytes);
        let request = pb::CheckBatchRequest::decode(bytes.as_slice()).unwrap();
        let e = check_batch(&request).unwrap_err();
        assert_eq!(
            (e.field.as_str(), e.problem.as_str()),
            ("checks[1].client_id", "must be UTF-8")
        );
    }

    #[test]
    fn batch_fields_are_named_with_their_index() {
        let req = pb::CheckRequest {
            subject: Some("a\u{0}b".into()),
            ..Default::default()
        };
        let err = in_batch(7, check((&req).into()).err().unwrap());
        assert_eq!(err.field, "checks[7].subject");
        let neg = pb::CheckRequest {
            issued_at_ms: -5,
            ..Default::default()
        };
        assert_eq!(check((&neg).into()).err().unwrap().field, "issued_at_ms");
        let bad_token = pb::CheckRequest {
            consistency_token: Some(vec![9, 9, 9]),
            ..Default::default()
        };
        assert_eq!(
            check((&bad_token).into()).err().unwrap().field,
            "consistency_token"
        );
    }

    #[test]
    fn a_check_that_names_nothing_is_refused() {
        let empty = check((&pb::CheckRequest::default()).into()).err().unwrap();
        assert_eq!(empty.field, "token_id");
        assert!(empty.problem.contains("names nothing"), "{empty}");
        let issuer_only = pb::CheckRequest {
            issuer: Some("https://idp".into()),
            issued_at_ms: 5,
            ..Default::default()
        };
        assert!(check((&issuer_only).into()).is_err());
        let subject_only = pb::CheckRequest {
            subject: Some("alice".into()),
            ..Default::default()
        };
        assert!(check((&subject_only).into()).is_ok());
    }

    #[test]
    fn issuers_namespace_revocations_and_checks() {
        let token = |issuer: &str| pb::RevokeRequest {
            target: Some(pb::revoke_request::Target::Token(pb::TokenRevocation {
                token_id: "jti-1".into(),
                expires_at_ms: 0,
                issuer: issuer.into(),
            })),
            ..Default::default()
        };
        let key = |cmd: RevokeCommand| match cmd.target {
            RevokeTarget::Token { token_id, .. } => token_id,
            other => panic!("{other:?}"),
        };
        assert_eq!(key(revoke(token("")).unwrap()), "jti-1");
        assert_eq!(
            key(revoke(token("https://a")).unwrap()),
            scope::key("https://a", "jti-1")
        );
        assert_eq!(revoke(token("bad\nissuer")).unwrap_err().field, "token.issuer");
        let req = pb::CheckRequest {
            token_id: Some("jti-1".into()),
            issuer: Some("https://a".into()),
            ..Default::default()
        };
        assert_eq!(check((&req).into()).unwrap().query.issuer, "https://a");
    }

    #[test]
    fn version_only_cutoffs_need_a_version_and_no_time() {
        let cutoff = |before: i64, min_version: u64| pb::RevokeRequest {
            target: Some(pb::revoke_request::Target::Cutoff(pb::CutoffRevocation {
                principal_kind: 1,
                principal_id: "alice".into(),
                issued_before_ms: before,
                min_version,
                version_only: true,
                ..Default::default()
            })),
            ..Default::default()
        };
        match revoke(cutoff(0, 3)).unwrap().target {
            RevokeTarget::Cutoff {
                cutoff, version_only, ..
            } => {
                assert!(version_only);
                assert_eq!(
                    cutoff,
                    Cutoff {
                        issued_before_ms: 0,
                        min_version: 3
                    }
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(revoke(cutoff(0, 0)).unwrap_err().field, "cutoff.min_version");
        assert_eq!(revoke(cutoff(5, 3)).unwrap_err().field, "cutoff.issued_before_ms");
    }

    #[test]
    fn revoke_batches_are_bounded_and_name_the_entry() {
        assert_eq!(revoke_batch(Vec::new()).unwrap_err().field, "revocations");
        let good = pb::RevokeRequest {
            target: Some(pb::revoke_request::Target::Token(pb::TokenRevocation {
                token_id: "t".into(),
                ..Default::default()
            })),
            ..Default::default()
        };
        let too_many = vec![good.clone(); MAX_REVOKE_BATCH + 1];
        assert!(revoke_batch(too_many).unwrap_err().problem.contains("10000"));
        let mixed = vec![good.clone(), good, pb::RevokeRequest::default()];
        assert_eq!(revoke_batch(mixed).unwrap_err().field, "revocations[2].target");
    }

    #[test]
    fn revoke_requests_are_checked_field_by_field() {
        let cutoff = |kind: i32| pb::RevokeRequest {
            target: Some(pb::revoke_request::Target::Cutoff(pb::CutoffRevocation {
                principal_kind: kind,
                principal_id: "alice".into(),
                issued_before_ms: 0,
                min_version: 0,
                ..Default::default()
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
            if let Ok(v) = check((&req).into()) {
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
                    ..Default::default()
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
