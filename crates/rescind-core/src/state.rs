//! [`State`]: the whole revocation CRDT of one node, with its digest.
//!
//! # Laws (tested with proptest in `tests/laws.rs`)
//! - `merge` is commutative, associative and idempotent;
//! - any interleaving, duplication or reordering of the same ops gives the same
//!   state, clock and digest;
//! - merging a peer's full state is a join: nothing revoked before is allowed after.

use std::sync::Arc;

use crdts::{CmRDT, CvRDT};

use crate::check::{self, CheckQuery, Decision};
use crate::clock::{Observed, VersionVector};
use crate::cutoff::{Cutoff, CutoffMap, PrincipalKind};
use crate::deny::{DenyEntry, DenyMeta, DenySet, NeverFails, Upsert};
use crate::digest::Digest;
use crate::op::{Op, Payload};
use crate::origin::OriginId;

/// What applying an op or merging an entry changed, for the store to persist.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Nothing observable changed.
    None,
    /// This id's winning entry is now `entry`.
    Deny {
        /// The token id.
        id: String,
        /// Its new winning entry.
        entry: DenyEntry,
    },
    /// This principal's cutoff is now `cutoff`.
    Cutoff {
        /// Kind of principal.
        kind: PrincipalKind,
        /// The principal's id.
        principal: String,
        /// The joined value.
        cutoff: Cutoff,
    },
}

/// Deny set, cutoffs, version vector and digest of one node.
#[derive(Clone, Debug, Default)]
pub struct State {
    deny: DenySet,
    cutoffs: CutoffMap,
    clock: VersionVector,
    digest: Digest,
    /// Entries are dropped once `expires_at + grace` has passed; grace must be at
    /// least the clock skew allowed between nodes.
    expiry_grace_ms: u64,
    /// Entries dropped by expiry since this value was created.
    pruned: u64,
}

impl PartialEq for State {
    fn eq(&self, other: &Self) -> bool {
        self.deny == other.deny
            && self.cutoffs == other.cutoffs
            && self.clock == other.clock
            && self.digest == other.digest
    }
}

impl State {
    /// An empty state that prunes entries `expiry_grace_ms` after they expire.
    pub fn new(expiry_grace_ms: u64) -> Self {
        Self {
            expiry_grace_ms,
            ..Self::default()
        }
    }

    fn intern(&mut self, origin: &OriginId) -> Arc<OriginId> {
        self.deny.intern(origin, || origin.clone())
    }

    /// Apply one op at local time `now_ms`. Returns `(fresh, effect)`: `fresh` is
    /// false when the op was applied before (duplicates change nothing).
    pub fn apply_op(&mut self, op: &Op, now_ms: u64) -> (bool, Effect) {
        if self.clock.observe(&op.origin, op.seq) == Observed::Duplicate {
            return (false, Effect::None);
        }
        let effect = match &op.payload {
            Payload::Token { .. } => match op.deny_entry() {
                Some((id, entry)) => self.merge_deny(id, &entry, now_ms),
                None => Effect::None,
            },
            Payload::Cutoff {
                kind,
                principal,
                cutoff,
                ..
            } => self.merge_cutoff(*kind, principal, *cutoff),
        };
        (true, effect)
    }

    /// Merge one deny entry (from an op, a snapshot or the store). An entry that
    /// has already expired past the grace period is dropped on arrival.
    pub fn merge_deny(&mut self, id: &str, entry: &DenyEntry, now_ms: u64) -> Effect {
        let meta = DenyMeta {
            expires_at_ms: entry.expires_at_ms,
            revoked_at_ms: entry.revoked_at_ms,
            origin: self.intern(&entry.origin),
        };
        if meta.is_expired(now_ms, self.expiry_grace_ms) {
            return Effect::None;
        }
        match self.merge_meta(id, meta) {
            Some(joined) => Effect::Deny {
                id: id.to_owned(),
                entry: joined.to_entry(),
            },
            None => Effect::None,
        }
    }

    /// Join `meta` into the deny set; the new entry when something changed.
    fn merge_meta(&mut self, id: &str, meta: DenyMeta) -> Option<DenyMeta> {
        let joined = match self.deny.upsert(id, meta.clone()) {
            Upsert::Inserted => meta,
            Upsert::Replaced(old) => {
                self.digest.remove(old.hash(id));
                old.join(&meta)
            }
            Upsert::Unchanged => return None,
        };
        self.digest.add(joined.hash(id));
        Some(joined)
    }

    /// Join a cutoff into a principal's.
    pub fn merge_cutoff(&mut self, kind: PrincipalKind, principal: &str, cutoff: Cutoff) -> Effect {
        match self.cutoffs.raise(kind, principal, cutoff) {
            None => Effect::None,
            Some((old, new)) => {
                if let Some(old) = old {
                    self.digest.remove(old.hash(kind, principal));
                }
                self.digest.add(new.hash(kind, principal));
                Effect::Cutoff {
                    kind,
                    principal: principal.to_owned(),
                    cutoff: new,
                }
            }
        }
    }

    /// Raise an origin's contiguous seq (after loading or merging a snapshot
    /// that holds every op of it up to `seq`).
    pub fn raise_clock(&mut self, origin: &OriginId, seq: u64) -> u64 {
        self.clock.raise_to(origin, seq)
    }

    /// Drop every entry whose expiry plus grace has passed at `now_ms`; returns
    /// the ids dropped so the store can delete them too.
    pub fn prune_expired(&mut self, now_ms: u64) -> Vec<Box<str>> {
        let ids = self.deny.expired(now_ms, self.expiry_grace_ms);
        for id in &ids {
            if let Some(meta) = self.deny.remove(id) {
                self.digest.remove(meta.hash(id));
            }
        }
        self.pruned += ids.len() as u64;
        ids
    }

    /// Decide one query from memory.
    pub fn check(&self, q: &CheckQuery<'_>) -> Decision {
        check::decide(&self.deny, &self.cutoffs, q)
    }

    /// Decide a batch of queries from memory, the same as one by one but
    /// with their lookups overlapped.
    pub fn check_many(&self, qs: &[CheckQuery<'_>]) -> Vec<Decision> {
        check::decide_many(&self.deny, &self.cutoffs, qs)
    }

    /// The deny set.
    pub fn deny(&self) -> &DenySet {
        &self.deny
    }

    /// The cutoffs.
    pub fn cutoffs(&self) -> &CutoffMap {
        &self.cutoffs
    }

    /// The version vector.
    pub fn clock(&self) -> &VersionVector {
        &self.clock
    }

    /// The digest of the observable state.
    pub fn digest(&self) -> Digest {
        self.digest
    }

    /// The configured expiry grace.
    pub fn expiry_grace_ms(&self) -> u64 {
        self.expiry_grace_ms
    }

    /// Entries dropped by expiry so far.
    pub fn pruned(&self) -> u64 {
        self.pruned
    }

    /// The deny entries' share of the digest (what a checkpoint records).
    pub fn deny_digest(&self) -> u128 {
        self.cutoffs
            .iter()
            .fold(self.digest.0, |d, (kind, principal, c)| {
                d.wrapping_sub(c.hash(kind, principal))
            })
    }

    /// Reserve room for `additional` more deny entries.
    pub fn reserve_deny(&mut self, additional: usize) {
        self.deny.reserve(additional);
    }

    /// A state read back from a checkpoint: its deny set (whose share of
    /// the digest is `deny_digest`), cutoffs and contiguous vector.
    pub fn restore(
        deny: DenySet,
        deny_digest: u128,
        cutoffs: CutoffMap,
        clock: &[(OriginId, u64)],
        expiry_grace_ms: u64,
    ) -> Self {
        let mut state = State::new(expiry_grace_ms);
        state.deny = deny;
        state.digest.add(deny_digest);
        for (kind, principal, c) in cutoffs.iter() {
            state.merge_cutoff(kind, principal, c);
        }
        for (origin, seq) in clock {
            state.raise_clock(origin, *seq);
        }
        state
    }
}

/// Ops apply with no expiry pruning (time 0); the node uses
/// [`State::apply_op`] with its clock.
impl CmRDT for State {
    type Op = Op;
    type Validation = NeverFails;

    fn validate_op(&self, _op: &Op) -> Result<(), NeverFails> {
        Ok(())
    }

    fn apply(&mut self, op: Op) {
        self.apply_op(&op, 0);
    }
}

impl CvRDT for State {
    type Validation = NeverFails;

    fn validate_merge(&self, _other: &Self) -> Result<(), NeverFails> {
        Ok(())
    }

    fn merge(&mut self, other: Self) {
        for (id, meta) in other.deny.iter() {
            let meta = DenyMeta {
                origin: self.intern(&meta.origin),
                ..meta
            };
            self.merge_meta(&id, meta);
        }
        for (kind, principal, cutoff) in other.cutoffs.iter() {
            self.merge_cutoff(kind, principal, cutoff);
        }
        self.clock.merge(&other.clock);
    }
}
