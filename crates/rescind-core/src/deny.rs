//! The deny set: revoked token ids.
//!
//! # Laws (tested with proptest in `state.rs` and `tests/laws.rs`)
//! [`DenySet::merge`] is a join: commutative, associative and idempotent. For an
//! id present on both sides, `(revoked_at_ms, origin)` is taken from the entry
//! smallest by that pair, and `expires_at_ms` from the longer-lived one (0 =
//! never). Both halves are joins, so their product is one, and replicas end
//! identical whatever order they merged in. Taking the longer expiry means a
//! second revocation with a later expiry extends the first: security first.

use std::sync::Arc;

use crdts::CvRDT;
use hashbrown::HashMap;
use serde::{Deserialize, Serialize};

use crate::digest::EntryHasher;
use crate::origin::OriginId;

/// A deny entry as stored and snapshotted. The operator's reason and actor
/// stay in the op log (the audit trail); the entry holds what the merge and
/// the check need.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DenyEntry {
    /// When the token expires on its own (unix ms); 0 = never. After this plus
    /// the grace period the entry is dropped: the token is dead anyway.
    pub expires_at_ms: u64,
    /// When the revocation was accepted, by its origin's clock.
    pub revoked_at_ms: u64,
    /// The node that accepted it.
    pub origin: OriginId,
}

/// What memory holds per revoked id: a [`DenyEntry`] whose origin is shared
/// with every other entry of the same origin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DenyMeta {
    /// See [`DenyEntry::expires_at_ms`].
    pub expires_at_ms: u64,
    /// See [`DenyEntry::revoked_at_ms`].
    pub revoked_at_ms: u64,
    /// Shared with every other entry of the same origin.
    pub origin: Arc<OriginId>,
}

impl DenyMeta {
    /// The join of two entries for the same id: identity fields from the one
    /// smallest by `(revoked_at, origin)`, expiry from the longer-lived one.
    pub fn join(&self, other: &DenyMeta) -> DenyMeta {
        let first = if (other.revoked_at_ms, &*other.origin) < (self.revoked_at_ms, &*self.origin) {
            other
        } else {
            self
        };
        DenyMeta {
            expires_at_ms: if lifetime(other.expires_at_ms) > lifetime(self.expires_at_ms) {
                other.expires_at_ms
            } else {
                self.expires_at_ms
            },
            revoked_at_ms: first.revoked_at_ms,
            origin: first.origin.clone(),
        }
    }

    /// True when this entry revokes at least as long as one expiring at `expires_at_ms`.
    pub fn outlives(&self, expires_at_ms: u64) -> bool {
        lifetime(self.expires_at_ms) >= lifetime(expires_at_ms)
    }

    /// The stored form.
    pub fn to_entry(&self) -> DenyEntry {
        DenyEntry {
            expires_at_ms: self.expires_at_ms,
            revoked_at_ms: self.revoked_at_ms,
            origin: (*self.origin).clone(),
        }
    }

    /// True when the entry may be dropped at `now_ms` given the grace period.
    pub fn is_expired(&self, now_ms: u64, grace_ms: u64) -> bool {
        self.expires_at_ms != 0 && self.expires_at_ms.saturating_add(grace_ms) < now_ms
    }

    /// This entry's share of the state digest.
    pub fn hash(&self, id: &str) -> u128 {
        EntryHasher::new(b'D')
            .str(id)
            .u64(self.expires_at_ms)
            .u64(self.revoked_at_ms)
            .str(&self.origin.node)
            .u64(self.origin.incarnation)
            .finish()
    }
}

/// Expiry as a lifetime: 0 (never expires) is the longest.
fn lifetime(expires_at_ms: u64) -> u64 {
    if expires_at_ms == 0 {
        u64::MAX
    } else {
        expires_at_ms
    }
}

/// What an upsert did.
#[derive(Debug, PartialEq, Eq)]
pub enum Upsert {
    /// The id was new.
    Inserted,
    /// The id was present and the join changed it; the old entry is returned.
    Replaced(DenyMeta),
    /// The id was present and the join left it as it was.
    Unchanged,
}

/// Revoked token ids and their entries.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DenySet {
    map: HashMap<Box<str>, DenyMeta>,
}

impl DenySet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// The entry of a revoked id.
    pub fn get(&self, id: &str) -> Option<&DenyMeta> {
        self.map.get(id)
    }

    /// Number of revoked ids held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when nothing is revoked by id.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Every id and its entry, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &DenyMeta)> {
        self.map.iter().map(|(k, v)| (&**k, v))
    }

    /// Join one entry in (see [`DenyMeta::join`]).
    pub fn upsert(&mut self, id: &str, meta: DenyMeta) -> Upsert {
        match self.map.get_mut(id) {
            None => {
                self.map.insert(id.into(), meta);
                Upsert::Inserted
            }
            Some(existing) => {
                let joined = existing.join(&meta);
                if joined == *existing {
                    Upsert::Unchanged
                } else {
                    Upsert::Replaced(std::mem::replace(existing, joined))
                }
            }
        }
    }

    /// Drop an id (expiry GC only; revocations are never undone otherwise).
    pub fn remove(&mut self, id: &str) -> Option<DenyMeta> {
        self.map.remove(id)
    }

    /// Ids whose entries may be dropped at `now_ms`.
    pub fn expired(&self, now_ms: u64, grace_ms: u64) -> Vec<Box<str>> {
        self.map
            .iter()
            .filter(|(_, m)| m.is_expired(now_ms, grace_ms))
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Reserve room for `additional` more ids (used when loading from disk).
    pub fn reserve(&mut self, additional: usize) {
        self.map.reserve(additional);
    }
}

/// Never fails: any two deny sets can be joined.
#[derive(Debug, thiserror::Error)]
#[error("deny sets always merge")]
pub struct NeverFails;

impl CvRDT for DenySet {
    type Validation = NeverFails;

    fn validate_merge(&self, _other: &Self) -> Result<(), Self::Validation> {
        Ok(())
    }

    fn merge(&mut self, other: Self) {
        for (id, meta) in other.map {
            self.upsert(&id, meta);
        }
    }
}
