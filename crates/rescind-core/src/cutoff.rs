//! Cutoffs: "every token of this principal issued at or before T, or with a
//! version below V, is revoked".
//!
//! # Laws (tested with proptest)
//! [`Cutoff::join`] and [`CutoffMap::merge`] are field-wise max: commutative,
//! associative and idempotent. Cutoffs only ever rise.

use crdts::CvRDT;
use hashbrown::HashMap;
use serde::{Deserialize, Serialize};

use crate::deny::NeverFails;
use crate::digest::EntryHasher;

/// The kind of principal a cutoff applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum PrincipalKind {
    /// The token's subject (`sub`).
    Subject,
    /// The OAuth client the token was issued to.
    Client,
    /// The tenant / organisation.
    Tenant,
    /// The signing key (`kid`).
    KeyId,
    /// The login session.
    Session,
}

impl PrincipalKind {
    /// Every kind, in the order checks consult them.
    pub const ALL: [PrincipalKind; 5] = [
        PrincipalKind::Subject,
        PrincipalKind::Client,
        PrincipalKind::Tenant,
        PrincipalKind::KeyId,
        PrincipalKind::Session,
    ];

    /// Position in [`PrincipalKind::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The lower-case name used by the CLI and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            PrincipalKind::Subject => "subject",
            PrincipalKind::Client => "client",
            PrincipalKind::Tenant => "tenant",
            PrincipalKind::KeyId => "key_id",
            PrincipalKind::Session => "session",
        }
    }
}

/// A max-wins pair of bounds. 0 in a field means "no rule of that kind".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cutoff {
    /// Tokens with `issued_at_ms <= issued_before_ms` are revoked (ties revoke).
    pub issued_before_ms: u64,
    /// Tokens with `version < min_version` are revoked.
    pub min_version: u64,
}

impl Cutoff {
    /// Field-wise max.
    pub fn join(self, other: Cutoff) -> Cutoff {
        Cutoff {
            issued_before_ms: self.issued_before_ms.max(other.issued_before_ms),
            min_version: self.min_version.max(other.min_version),
        }
    }

    /// True when joining `other` would not change `self`.
    pub fn covers(self, other: Cutoff) -> bool {
        self.join(other) == self
    }

    /// Does this cutoff revoke a token issued at `issued_at_ms` with `version`?
    pub fn revokes(self, issued_at_ms: u64, version: u64) -> bool {
        (self.issued_before_ms != 0 && issued_at_ms <= self.issued_before_ms) || version < self.min_version
    }

    /// This cutoff's share of the state digest.
    pub fn hash(self, kind: PrincipalKind, principal: &str) -> u128 {
        EntryHasher::new(b'C')
            .u64(kind as u64)
            .str(principal)
            .u64(self.issued_before_ms)
            .u64(self.min_version)
            .finish()
    }
}

/// Cutoffs per principal, one map per [`PrincipalKind`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CutoffMap {
    by_kind: [HashMap<Box<str>, Cutoff>; 5],
}

impl CutoffMap {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// The cutoff of one principal.
    pub fn get(&self, kind: PrincipalKind, principal: &str) -> Option<Cutoff> {
        self.by_kind[kind.index()].get(principal).copied()
    }

    /// Join `cutoff` into the principal's; returns the previous value (if any)
    /// and the new one when something rose, `None` when nothing changed.
    pub fn raise(
        &mut self,
        kind: PrincipalKind,
        principal: &str,
        cutoff: Cutoff,
    ) -> Option<(Option<Cutoff>, Cutoff)> {
        let map = &mut self.by_kind[kind.index()];
        match map.get_mut(principal) {
            Some(existing) if existing.covers(cutoff) => None,
            Some(existing) => {
                let old = *existing;
                *existing = old.join(cutoff);
                Some((Some(old), *existing))
            }
            None => {
                map.insert(principal.into(), cutoff);
                Some((None, cutoff))
            }
        }
    }

    /// Number of principals with a cutoff.
    pub fn len(&self) -> usize {
        self.by_kind.iter().map(HashMap::len).sum()
    }

    /// True when no principal has a cutoff.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every cutoff, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (PrincipalKind, &str, Cutoff)> {
        PrincipalKind::ALL.into_iter().flat_map(move |kind| {
            self.by_kind[kind.index()]
                .iter()
                .map(move |(p, c)| (kind, &**p, *c))
        })
    }
}

impl CvRDT for CutoffMap {
    type Validation = NeverFails;

    fn validate_merge(&self, _other: &Self) -> Result<(), Self::Validation> {
        Ok(())
    }

    fn merge(&mut self, other: Self) {
        for (kind, principal, cutoff) in other.iter() {
            self.raise(kind, principal, cutoff);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ties_revoke_and_zero_means_no_rule() {
        let c = Cutoff {
            issued_before_ms: 1000,
            min_version: 0,
        };
        assert!(c.revokes(1000, 0));
        assert!(c.revokes(999, 0));
        assert!(!c.revokes(1001, 0));
        let v = Cutoff {
            issued_before_ms: 0,
            min_version: 3,
        };
        assert!(!v.revokes(5, 3));
        assert!(v.revokes(5, 2));
    }

    #[test]
    fn raise_only_rises() {
        let mut m = CutoffMap::new();
        let hi = Cutoff {
            issued_before_ms: 10,
            min_version: 1,
        };
        assert_eq!(m.raise(PrincipalKind::Subject, "alice", hi), Some((None, hi)));
        let lower = Cutoff {
            issued_before_ms: 5,
            min_version: 1,
        };
        assert_eq!(m.raise(PrincipalKind::Subject, "alice", lower), None);
        let mixed = Cutoff {
            issued_before_ms: 5,
            min_version: 7,
        };
        let joined = Cutoff {
            issued_before_ms: 10,
            min_version: 7,
        };
        assert_eq!(
            m.raise(PrincipalKind::Subject, "alice", mixed),
            Some((Some(hi), joined))
        );
        assert_eq!(m.get(PrincipalKind::Client, "alice"), None);
    }
}
