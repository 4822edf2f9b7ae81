//! `ListRevocations`: the request validated into an [`AuditFilter`], a
//! [`Listing`] into the response.

use rescind_core::PrincipalKind;
use rescind_core::limits::{self, FieldError};
use rescind_proto::v1 as pb;
use rescind_store::AuditTarget;

use crate::audit::{AuditFilter, Listing, MAX_PAGE};

/// Records per page when the request does not say.
pub const DEFAULT_PAGE: usize = 100;

/// The filter and page size of a request, or the first bad field.
pub fn filter_of(r: &pb::ListRevocationsRequest) -> Result<(AuditFilter, usize), FieldError> {
    let page = match r.page_size as usize {
        0 => DEFAULT_PAGE,
        n if n > MAX_PAGE => {
            return Err(FieldError::new(
                "page_size",
                format!("must be at most {MAX_PAGE} (got {n})"),
            ));
        }
        n => n,
    };
    if r.until_ms != 0 && r.until_ms < r.since_ms {
        return Err(FieldError::new("until_ms", "must not be before since_ms"));
    }
    let text = |field: &str, v: &str| -> Result<Option<String>, FieldError> {
        if v.is_empty() {
            return Ok(None);
        }
        limits::text(field, v)?;
        Ok(Some(v.to_owned()))
    };
    let actor = text("actor", &r.actor)?;
    let principal = match r.principal.as_str() {
        "" => None,
        p => {
            limits::id("principal", p)?;
            Some(p.to_owned())
        }
    };
    let target = match r.target.as_str() {
        "" => None,
        "token" => Some(None),
        name => Some(Some(
            PrincipalKind::ALL
                .into_iter()
                .find(|k| k.name() == name)
                .ok_or_else(|| {
                    FieldError::new(
                        "target",
                        format!("must be token, subject, client, tenant, key_id or session (got {name:?})"),
                    )
                })?,
        )),
    };
    Ok((
        AuditFilter {
            since_ms: r.since_ms,
            until_ms: r.until_ms,
            actor,
            principal,
            target,
        },
        page,
    ))
}

/// The response carrying `listing`.
pub fn response_of(listing: Listing, node_id: &str) -> pb::ListRevocationsResponse {
    let records = listing
        .records
        .into_iter()
        .map(|r| {
            let mut out = pb::AuditRecord {
                origin: r.origin.to_string(),
                seq: r.seq,
                at_ms: r.at_ms,
                actor: r.actor,
                reason: r.reason,
                issuer: r.issuer,
                ..Default::default()
            };
            match r.target {
                AuditTarget::Token { id, expires_at_ms } => {
                    out.target = "token".into();
                    out.id = id;
                    out.expires_at_ms = expires_at_ms;
                }
                AuditTarget::Cutoff {
                    kind,
                    principal,
                    issued_before_ms,
                    min_version,
                } => {
                    out.target = kind.name().into();
                    out.id = principal;
                    out.issued_before_ms = issued_before_ms;
                    out.min_version = min_version;
                }
            }
            out
        })
        .collect();
    let gaps = listing
        .gaps
        .into_iter()
        .map(|g| pb::AuditGap {
            origin: g.origin.to_string(),
            from_seq: g.from_seq,
            to_seq: g.to_seq,
            noted_at_ms: g.noted_at_ms,
        })
        .collect();
    pb::ListRevocationsResponse {
        records,
        gaps,
        next_cursor: listing.next_cursor,
        node_id: node_id.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_requests_name_the_field_and_the_limit() {
        let bad = |r: pb::ListRevocationsRequest| filter_of(&r).unwrap_err();
        let e = bad(pb::ListRevocationsRequest {
            page_size: 5000,
            ..Default::default()
        });
        assert_eq!(e.field, "page_size");
        assert!(e.problem.contains("1000"), "{e}");
        let e = bad(pb::ListRevocationsRequest {
            target: "users".into(),
            ..Default::default()
        });
        assert_eq!(e.field, "target");
        let e = bad(pb::ListRevocationsRequest {
            since_ms: 10,
            until_ms: 5,
            ..Default::default()
        });
        assert_eq!(e.field, "until_ms");
        let e = bad(pb::ListRevocationsRequest {
            actor: "a\u{7}".into(),
            ..Default::default()
        });
        assert_eq!(e.field, "actor");
        let (f, page) = filter_of(&pb::ListRevocationsRequest {
            target: "subject".into(),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            (f.target, page),
            (Some(Some(PrincipalKind::Subject)), DEFAULT_PAGE)
        );
    }
}
