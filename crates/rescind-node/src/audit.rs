//! The audit trail: what a revocation's record holds, how ops reach the
//! audit files (just before compaction drops them), and `ListRevocations`
//! over the audit files and the op-log tail (together, every revocation this
//! node received within the retention).
//!
//! Token ids are kept as written, or as `h:` + a keyed blake3 hash (first 16
//! bytes, hex) when an audit key is configured, so the trail can prove a
//! given id was revoked without holding the ids themselves.

use std::collections::BTreeMap;
use std::time::Duration;

use rescind_core::codec::{self, AUDIT_CURSOR_V1, meta};
use rescind_core::{Op, OriginId, Payload, PrincipalKind, scope};
use rescind_store::{
    AuditEntry, AuditGap, AuditPosition, AuditRecord, AuditTarget, Store, StoreError, meta_keys,
};
use serde::{Deserialize, Serialize};

/// Ops read from the log per call while copying or listing.
const CHUNK: usize = 4096;
/// Most records one `ListRevocations` page returns.
pub const MAX_PAGE: usize = 1000;

/// How the audit trail is kept.
#[derive(Clone, Debug)]
pub struct AuditPolicy {
    /// Records older than this are dropped (whole days).
    pub retention: Duration,
    /// Key of the token-id hash; None: ids are kept as written.
    pub token_key: Option<[u8; 32]>,
}

impl Default for AuditPolicy {
    fn default() -> Self {
        Self {
            retention: Duration::from_secs(90 * 24 * 3600),
            token_key: None,
        }
    }
}

impl AuditPolicy {
    /// The oldest time a record may carry at `now_ms`.
    pub fn oldest_kept_ms(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.retention.as_millis() as u64)
    }

    fn token_id(&self, id: &str) -> String {
        match &self.token_key {
            Some(key) => {
                let hash = blake3::keyed_hash(key, id.as_bytes());
                format!("h:{}", &hash.to_hex()[..32])
            }
            None => id.to_owned(),
        }
    }

    /// The audit record of `op`.
    pub fn record_of(&self, op: &Op) -> AuditRecord {
        let (at_ms, actor, reason, issuer, target) = match &op.payload {
            Payload::Token {
                token_id,
                expires_at_ms,
                revoked_at_ms,
                reason,
                actor,
            } => {
                let (issuer, id) = scope::split(token_id);
                let target = AuditTarget::Token {
                    id: self.token_id(id),
                    expires_at_ms: *expires_at_ms,
                };
                (*revoked_at_ms, actor, reason, issuer, target)
            }
            Payload::Cutoff {
                kind,
                principal,
                cutoff,
                revoked_at_ms,
                reason,
                actor,
            } => {
                let (issuer, principal) = scope::split(principal);
                let target = AuditTarget::Cutoff {
                    kind: *kind,
                    principal: principal.to_owned(),
                    issued_before_ms: cutoff.issued_before_ms,
                    min_version: cutoff.min_version,
                };
                (*revoked_at_ms, actor, reason, issuer, target)
            }
        };
        AuditRecord {
            origin: op.origin.clone(),
            seq: op.seq,
            at_ms,
            actor: actor.clone(),
            reason: reason.clone(),
            issuer: issuer.to_owned(),
            target,
        }
    }
}

fn map_of(pairs: Vec<(OriginId, u64)>) -> BTreeMap<OriginId, u64> {
    pairs.into_iter().collect()
}

fn audited(store: &dyn Store) -> Result<BTreeMap<OriginId, u64>, StoreError> {
    match store.meta_get(meta_keys::AUDITED)? {
        Some(bytes) => meta::decode_value("audited vector", &bytes)
            .map(map_of)
            .map_err(|e| StoreError::Corrupt {
                what: "audited vector",
                detail: e.to_string(),
            }),
        None => Ok(BTreeMap::new()),
    }
}

/// Before the log drops ops up to `upto`: write the audit records of those
/// not audited yet, make them durable, and remember how far the trail goes.
/// Then drop the days past retention.
pub(crate) fn copy_before_truncation(
    store: &dyn Store,
    policy: &AuditPolicy,
    upto: &[(OriginId, u64)],
    now_ms: u64,
) -> Result<(), StoreError> {
    let floor = map_of(store.log_floor()?);
    let mut done = audited(store)?;
    for (origin, top) in upto {
        let mut after = floor
            .get(origin)
            .copied()
            .unwrap_or(0)
            .max(done.get(origin).copied().unwrap_or(0));
        while after < *top {
            let ops = store.ops_after(origin, after, CHUNK)?;
            let within: Vec<AuditEntry> = ops
                .iter()
                .take_while(|op| op.seq <= *top)
                .map(|op| AuditEntry::Revocation(policy.record_of(op)))
                .collect();
            let Some(last) = ops.iter().take_while(|op| op.seq <= *top).last() else {
                break;
            };
            after = last.seq;
            store.audit().append(&within, now_ms)?;
        }
        done.insert(origin.clone(), (*top).max(done.get(origin).copied().unwrap_or(0)));
    }
    store.audit().sync(now_ms)?;
    let pairs: Vec<(OriginId, u64)> = done.into_iter().collect();
    store.meta_put(meta_keys::AUDITED, &meta::encode(&pairs))?;
    store.audit().drop_before(policy.oldest_kept_ms(now_ms))?;
    Ok(())
}

/// Record, durably, that a snapshot covered these ranges of ops this node
/// never received.
pub(crate) fn note_gaps(store: &dyn Store, gaps: Vec<AuditGap>, now_ms: u64) -> Result<(), StoreError> {
    if gaps.is_empty() {
        return Ok(());
    }
    let entries: Vec<AuditEntry> = gaps.into_iter().map(AuditEntry::Gap).collect();
    store.audit().append(&entries, now_ms)?;
    store.audit().sync(now_ms)
}

/// What to list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Accepted at or after (unix ms; 0: no bound).
    pub since_ms: u64,
    /// Accepted at or before (unix ms; 0: no bound).
    pub until_ms: u64,
    /// Exactly this actor.
    pub actor: Option<String>,
    /// Exactly this token id (as the trail keeps it) or principal.
    pub principal: Option<String>,
    /// Only tokens (None) or only this kind of principal (Some).
    pub target: Option<Option<PrincipalKind>>,
}

impl AuditFilter {
    /// True when `r` is listed.
    pub fn keeps(&self, r: &AuditRecord) -> bool {
        let (id, kind) = match &r.target {
            AuditTarget::Token { id, .. } => (id, None),
            AuditTarget::Cutoff { kind, principal, .. } => (principal, Some(*kind)),
        };
        r.at_ms >= self.since_ms
            && (self.until_ms == 0 || r.at_ms <= self.until_ms)
            && self.actor.as_ref().is_none_or(|a| *a == r.actor)
            && self.principal.as_ref().is_none_or(|p| p == id)
            && self.target.is_none_or(|t| t == kind)
    }
}

/// Where a listing continues: the audit files, then the log tail.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum Cursor {
    Files(AuditPosition),
    Tail { origin: usize, after: u64 },
}

/// One page of `ListRevocations`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Listing {
    /// Revocations, audit files first, then the log tail.
    pub records: Vec<AuditRecord>,
    /// Ranges this node never received (it adopted a snapshot instead).
    pub gaps: Vec<AuditGap>,
    /// The cursor of the next page (empty: done).
    pub next_cursor: Vec<u8>,
}

/// Why a listing cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    /// The cursor is not one this node made.
    #[error("cursor: not from this node")]
    Cursor,
    /// Reading failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One page of the trail from `cursor` (empty: the start), at most `limit`.
pub fn list(
    store: &dyn Store,
    policy: &AuditPolicy,
    filter: &AuditFilter,
    cursor: &[u8],
    limit: usize,
    now_ms: u64,
) -> Result<Listing, ListError> {
    let limit = limit.clamp(1, MAX_PAGE);
    let mut cursor = if cursor.is_empty() {
        Cursor::Files(AuditPosition::default())
    } else {
        codec::decode::<Cursor>("audit cursor", AUDIT_CURSOR_V1, cursor).map_err(|_| ListError::Cursor)?
    };
    let oldest = policy.oldest_kept_ms(now_ms);
    let keep = |r: &AuditRecord| r.at_ms >= oldest && filter.keeps(r);
    let mut out = Listing::default();
    if let Cursor::Files(at) = cursor {
        let page = store.audit().page(at, limit, &keep)?;
        out.records = page.records;
        out.gaps = page.gaps;
        if let Some(next) = page.next {
            out.next_cursor = codec::frame(AUDIT_CURSOR_V1, &Cursor::Files(next));
            return Ok(out);
        }
        cursor = Cursor::Tail { origin: 0, after: 0 };
    }
    let Cursor::Tail { origin: first, after } = cursor else {
        return Ok(out);
    };
    let mut origins = store.log_origins()?;
    origins.sort();
    let floor = map_of(store.log_floor()?);
    let done = audited(store)?;
    for (i, origin) in origins.iter().enumerate().skip(first) {
        let start = floor
            .get(origin)
            .copied()
            .unwrap_or(0)
            .max(done.get(origin).copied().unwrap_or(0));
        let mut from = if i == first { after.max(start) } else { start };
        loop {
            let ops = store.ops_after(origin, from, CHUNK)?;
            let Some(last) = ops.last() else { break };
            for op in &ops {
                from = op.seq;
                let record = policy.record_of(op);
                if keep(&record) {
                    out.records.push(record);
                    if out.records.len() >= limit {
                        let next = Cursor::Tail {
                            origin: i,
                            after: from,
                        };
                        out.next_cursor = codec::frame(AUDIT_CURSOR_V1, &next);
                        return Ok(out);
                    }
                }
            }
            from = last.seq;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use rescind_core::Cutoff;
    use rescind_store::{Identity, MemStore};

    use super::*;

    fn op(origin: &OriginId, seq: u64, actor: &str) -> Op {
        Op {
            origin: origin.clone(),
            seq,
            payload: if seq.is_multiple_of(3) {
                Payload::Cutoff {
                    kind: PrincipalKind::Subject,
                    principal: scope::key("https://idp", &format!("user-{seq}")).into_owned(),
                    cutoff: Cutoff {
                        issued_before_ms: seq,
                        min_version: 0,
                    },
                    revoked_at_ms: 1_000 + seq,
                    reason: "offboarding".into(),
                    actor: actor.into(),
                }
            } else {
                Payload::Token {
                    token_id: format!("tok-{seq}"),
                    expires_at_ms: 0,
                    revoked_at_ms: 1_000 + seq,
                    reason: "leak".into(),
                    actor: actor.into(),
                }
            },
        }
    }

    fn all(store: &dyn Store, policy: &AuditPolicy, filter: &AuditFilter, now: u64) -> Vec<u64> {
        let (mut seqs, mut cursor) = (Vec::new(), Vec::new());
        for _ in 0..100 {
            let page = list(store, policy, filter, &cursor, 4, now).unwrap();
            seqs.extend(page.records.iter().map(|r| r.seq));
            if page.next_cursor.is_empty() {
                return seqs;
            }
            cursor = page.next_cursor;
        }
        panic!("a listing must end");
    }

    #[test]
    fn the_trail_spans_the_audit_files_and_the_log_tail_exactly_once() {
        let store = MemStore::with_identity(Identity {
            node_name: "a".into(),
            incarnation: 1,
        });
        let me = store.identity().origin();
        let ops: Vec<Op> = (1..=20)
            .map(|s| op(&me, s, if s % 2 == 0 { "bob" } else { "alice" }))
            .collect();
        store.append(&ops).unwrap();
        let policy = AuditPolicy::default();
        let now = 10_000;
        // Compaction of 1..=12: their records move to the audit files first.
        copy_before_truncation(&store, &policy, &[(me.clone(), 12)], now).unwrap();
        store.truncate_log(&[(me.clone(), 12)]).unwrap();
        let every = all(&store, &policy, &AuditFilter::default(), now);
        assert_eq!(every, (1..=20).collect::<Vec<_>>(), "files then tail, none twice");
        let alice = AuditFilter {
            actor: Some("alice".into()),
            ..AuditFilter::default()
        };
        assert_eq!(
            all(&store, &policy, &alice, now),
            (1..=20).step_by(2).collect::<Vec<_>>()
        );
        let subjects = AuditFilter {
            target: Some(Some(PrincipalKind::Subject)),
            ..AuditFilter::default()
        };
        assert_eq!(all(&store, &policy, &subjects, now), vec![3, 6, 9, 12, 15, 18]);
        let one = AuditFilter {
            principal: Some("user-9".into()),
            since_ms: 1_005,
            until_ms: 1_010,
            ..AuditFilter::default()
        };
        assert_eq!(all(&store, &policy, &one, now), vec![9]);
        // A second copy of the same range writes nothing twice.
        copy_before_truncation(&store, &policy, &[(me.clone(), 12)], now).unwrap();
        assert_eq!(all(&store, &policy, &AuditFilter::default(), now).len(), 20);
        assert!(matches!(
            list(&store, &policy, &AuditFilter::default(), &[9, 9], 4, now),
            Err(ListError::Cursor)
        ));
    }

    #[test]
    fn retention_drops_old_records_and_ids_can_be_hashed() {
        let store = MemStore::with_identity(Identity {
            node_name: "a".into(),
            incarnation: 1,
        });
        let me = store.identity().origin();
        store
            .append(&(1..=6).map(|s| op(&me, s, "ops")).collect::<Vec<_>>())
            .unwrap();
        let policy = AuditPolicy {
            retention: Duration::from_secs(24 * 3600),
            token_key: Some([7; 32]),
        };
        copy_before_truncation(&store, &policy, &[(me.clone(), 6)], 1_000).unwrap();
        store.truncate_log(&[(me.clone(), 6)]).unwrap();
        let page = list(&store, &policy, &AuditFilter::default(), &[], 100, 1_000).unwrap();
        let AuditTarget::Token { id, .. } = &page.records[0].target else {
            panic!()
        };
        assert!(id.starts_with("h:") && !id.contains("tok-1"), "{id}");
        assert_eq!(page.records[2].issuer, "https://idp");
        // Three days later: the day file is gone and nothing is listed.
        let later = 3 * rescind_store::audit::DAY_MS;
        copy_before_truncation(&store, &policy, &[], later).unwrap();
        assert!(
            list(&store, &policy, &AuditFilter::default(), &[], 100, later)
                .unwrap()
                .records
                .is_empty()
        );
        assert_eq!(store.audit().disk_bytes(), 0);
    }
}
