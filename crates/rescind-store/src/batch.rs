//! [`WriteBatch`]: what one commit writes.

use rescind_core::{Cutoff, DenyEntry, Effect, Op, OriginId, PrincipalKind};

/// Op-log entries plus the state entries they changed, written atomically.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriteBatch {
    /// Ops to append to the log.
    pub ops: Vec<Op>,
    /// Deny entries that are new or replaced.
    pub deny_put: Vec<(String, DenyEntry)>,
    /// Deny entries dropped by expiry GC.
    pub deny_delete: Vec<String>,
    /// Cutoffs that rose (the joined value).
    pub cutoff_put: Vec<(PrincipalKind, String, Cutoff)>,
    /// New contiguous seqs of origins.
    pub clock: Vec<(OriginId, u64)>,
    /// How many deny entries the state holds after this batch, when known:
    /// lets a restart size its memory exactly instead of growing it (and
    /// leaving freed copies behind) while it reads 10M entries.
    pub deny_count: Option<u64>,
}

impl WriteBatch {
    /// Record what applying an op changed.
    pub fn add_effect(&mut self, effect: Effect) {
        match effect {
            Effect::None => {}
            Effect::Deny { id, entry } => self.deny_put.push((id, entry)),
            Effect::Cutoff {
                kind,
                principal,
                cutoff,
            } => self.cutoff_put.push((kind, principal, cutoff)),
        }
    }

    /// True when there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
            && self.deny_put.is_empty()
            && self.deny_delete.is_empty()
            && self.cutoff_put.is_empty()
            && self.clock.is_empty()
    }
}
