//! An in-memory node for the tests of this crate: a [`State`], an op log in
//! a map, a [`Cluster`] and the durable version vector, applied the way the
//! node's writer applies them (`rescind-node/src/writer.rs`).

use std::collections::BTreeMap;

use rescind_core::{Cutoff, DenyEntry, Op, OriginId, Payload, PrincipalKind, State, VersionVector};

use crate::members::{Cluster, NodeInfo};
use crate::snapshot::Merge;
use crate::source::{OpLog, SnapshotSource, SourceEntries, SourceError};

/// An op log: every op a node applied, by (origin, seq).
pub type Log = BTreeMap<(OriginId, u64), Op>;

impl OpLog for Log {
    fn ops_after(&self, origin: &OriginId, after_seq: u64, limit: usize) -> Result<Vec<Op>, SourceError> {
        let from = (origin.clone(), after_seq.saturating_add(1));
        Ok(self
            .range(from..)
            .take_while(|((o, _), _)| o == origin)
            .take(limit)
            .map(|(_, op)| op.clone())
            .collect())
    }
}

/// A token op of `origin`.
pub fn token_op(origin: &OriginId, seq: u64, id: &str) -> Op {
    Op {
        origin: origin.clone(),
        seq,
        payload: Payload::Token {
            token_id: id.into(),
            expires_at_ms: 0,
            revoked_at_ms: seq,
            reason: String::new(),
            actor: String::new(),
        },
    }
}

/// A cutoff op of `origin` for a subject.
pub fn cutoff_op(origin: &OriginId, seq: u64, principal: &str, issued_before_ms: u64) -> Op {
    Op {
        origin: origin.clone(),
        seq,
        payload: Payload::Cutoff {
            kind: PrincipalKind::Subject,
            principal: principal.into(),
            cutoff: Cutoff {
                issued_before_ms,
                min_version: 0,
            },
            revoked_at_ms: seq,
            reason: String::new(),
            actor: String::new(),
        },
    }
}

/// How node `name` describes itself (its address is `name:1`).
pub fn info(name: &str, region: &str) -> NodeInfo {
    NodeInfo {
        name: name.into(),
        incarnation: 1,
        region: region.into(),
        addr: format!("{name}:1"),
    }
}

/// A node in memory.
pub struct MemNode {
    /// What checks would see.
    pub state: State,
    /// Every op applied (a snapshot merge adds none).
    pub log: Log,
    /// Membership and freshness.
    pub cluster: Cluster,
    /// The version vector as of the last flush: what may be shipped.
    pub durable: VersionVector,
    /// This node's origin.
    pub origin: OriginId,
    /// Local ops applied but not yet flushed.
    unflushed: Vec<Op>,
}

impl MemNode {
    /// A node named `name` in `region` that knows the nodes `seeds` by address.
    pub fn new(name: &str, region: &str, seeds: &[&str]) -> Self {
        Self {
            state: State::new(0),
            log: Log::new(),
            cluster: Cluster::new(info(name, region), seeds.iter().map(|s| format!("{s}:1"))),
            durable: VersionVector::new(),
            origin: OriginId::new(name, 1),
            unflushed: Vec::new(),
        }
    }

    fn local(&mut self, op: Op) -> Op {
        self.state.apply_op(&op, 0);
        self.log.insert((op.origin.clone(), op.seq), op.clone());
        self.unflushed.push(op.clone());
        op
    }

    fn next_seq(&self) -> u64 {
        self.state.clock().get(&self.origin) + 1
    }

    /// Revoke a token id (in memory; durable at the next [`MemNode::flush`]).
    pub fn revoke_token(&mut self, id: &str) -> Op {
        self.local(token_op(&self.origin.clone(), self.next_seq(), id))
    }

    /// Raise a subject's cutoff (in memory; durable at the next flush).
    pub fn revoke_cutoff(&mut self, principal: &str, issued_before_ms: u64) -> Op {
        self.local(cutoff_op(
            &self.origin.clone(),
            self.next_seq(),
            principal,
            issued_before_ms,
        ))
    }

    /// Everything in memory becomes durable; returns the local ops that just
    /// did (what the eager pusher gets).
    pub fn flush(&mut self) -> Vec<Op> {
        self.durable = self.state.clock().clone();
        std::mem::take(&mut self.unflushed)
    }

    /// Apply ops from a peer (the writer's `Remote` job, flushed): how many were new.
    pub fn apply(&mut self, ops: &[Op]) -> usize {
        let mut fresh = 0;
        for op in ops {
            if self.state.apply_op(op, 0).0 {
                fresh += 1;
                self.log.insert((op.origin.clone(), op.seq), op.clone());
            }
        }
        fresh
    }

    /// Merge one snapshot page (the writer's `Snapshot` job).
    pub fn merge(&mut self, page: &Merge) {
        for (id, entry) in &page.deny {
            self.state.merge_deny(id, entry, 0);
        }
        for (kind, principal, cutoff) in &page.cutoffs {
            self.state.merge_cutoff(*kind, principal, *cutoff);
        }
        for (origin, seq) in page.clock.iter().flat_map(VersionVector::iter) {
            self.state.raise_clock(origin, seq);
        }
    }

    /// Forget the op log (as if compacted): only a snapshot can then serve it.
    pub fn truncate_log(&mut self) {
        self.log.clear();
    }
}

impl OpLog for MemNode {
    fn ops_after(&self, origin: &OriginId, after_seq: u64, limit: usize) -> Result<Vec<Op>, SourceError> {
        self.log.ops_after(origin, after_seq, limit)
    }
}

/// Serves the entries in memory and, as covered, the durable vector: every
/// op it covers is reflected in the entries (nothing is lost in a test). A
/// position is `(section, last key served)`, postcard: deny entries in id
/// order, then cutoffs in (kind, principal) order.
impl SnapshotSource for MemNode {
    fn start(&self) -> Result<(VersionVector, Vec<u8>), SourceError> {
        let first: (u8, Option<(PrincipalKind, String)>) = (0, None);
        Ok((
            self.durable.clone(),
            postcard::to_stdvec(&first).unwrap_or_default(),
        ))
    }

    fn entries(&self, at: &[u8], limit: usize) -> Result<Option<SourceEntries>, SourceError> {
        let Ok(((section, after), [])) =
            postcard::take_from_bytes::<(u8, Option<(PrincipalKind, String)>)>(at)
        else {
            return Ok(None);
        };
        let mut deny: Vec<(String, DenyEntry)> = self
            .state
            .deny()
            .iter()
            .filter(|(id, _)| section == 0 && after.as_ref().is_none_or(|(_, a)| &**id > a.as_str()))
            .map(|(id, meta)| (id.into_owned(), meta.to_entry()))
            .collect();
        deny.sort_by(|a, b| a.0.cmp(&b.0));
        deny.truncate(limit);
        let mut cutoffs: Vec<(PrincipalKind, String, Cutoff)> = self
            .state
            .cutoffs()
            .iter()
            .filter(|(k, p, _)| {
                section == 0
                    || after
                        .as_ref()
                        .is_none_or(|(ak, ap)| (*k, *p) > (*ak, ap.as_str()))
            })
            .map(|(k, p, c)| (k, p.to_owned(), c))
            .collect();
        cutoffs.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        cutoffs.truncate(limit - deny.len());
        let total_left = if section == 0 {
            self.state
                .deny()
                .iter()
                .filter(|(id, _)| after.as_ref().is_none_or(|(_, a)| &**id > a.as_str()))
                .count()
                + self.state.cutoffs().len()
        } else {
            self.state
                .cutoffs()
                .iter()
                .filter(|(k, p, _)| {
                    after
                        .as_ref()
                        .is_none_or(|(ak, ap)| (*k, *p) > (*ak, ap.as_str()))
                })
                .count()
        };
        let served = deny.len() + cutoffs.len();
        let next = (served < total_left).then(|| {
            let last = match cutoffs.last() {
                Some((k, p, _)) => (1u8, Some((*k, p.clone()))),
                None => (
                    0u8,
                    deny.last().map(|(id, _)| (PrincipalKind::Subject, id.clone())),
                ),
            };
            postcard::to_stdvec(&last).unwrap_or_default()
        });
        Ok(Some(SourceEntries { deny, cutoffs, next }))
    }
}
