//! The version vector: per origin, the highest seq up to which every op is applied.

use std::collections::{BTreeMap, BTreeSet};

use crdts::{CmRDT, Dot, VClock};

use crate::origin::OriginId;

/// Highest *contiguous* applied seq per origin, on top of crdts' [`VClock`].
///
/// Ops of one origin may arrive out of order (gossip from several peers); a seq
/// above the contiguous one is held in `pending` until the gap fills, so the
/// vector only ever claims ops that were really applied. This is what makes a
/// consistency token safe to honour and what anti-entropy compares.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VersionVector {
    clock: VClock<OriginId>,
    /// Seqs applied above the contiguous prefix, per origin.
    pending: BTreeMap<OriginId, BTreeSet<u64>>,
}

/// What observing one op's seq did to the vector.
#[derive(Debug, PartialEq, Eq)]
pub enum Observed {
    /// Already applied before.
    Duplicate,
    /// The contiguous seq rose to this value.
    Advanced(u64),
    /// Applied, but a gap below it keeps the contiguous seq where it was.
    Pending,
}

impl VersionVector {
    /// An empty vector.
    pub fn new() -> Self {
        Self::default()
    }

    /// Highest contiguous seq of `origin` (0 when none).
    pub fn get(&self, origin: &OriginId) -> u64 {
        self.clock.get(origin)
    }

    /// Has the op `(origin, seq)` been applied?
    pub fn contains(&self, origin: &OriginId, seq: u64) -> bool {
        seq <= self.get(origin) || self.pending.get(origin).is_some_and(|p| p.contains(&seq))
    }

    /// Record that `(origin, seq)` was applied.
    pub fn observe(&mut self, origin: &OriginId, seq: u64) -> Observed {
        if self.contains(origin, seq) {
            return Observed::Duplicate;
        }
        let current = self.get(origin);
        if seq != current + 1 {
            self.pending.entry(origin.clone()).or_default().insert(seq);
            return Observed::Pending;
        }
        Observed::Advanced(self.raise_to(origin, seq))
    }

    /// Raise `origin`'s contiguous seq to at least `seq` (after a snapshot that
    /// covers every op up to it), then absorb any pending seqs that now follow.
    /// Returns the new contiguous seq.
    pub fn raise_to(&mut self, origin: &OriginId, seq: u64) -> u64 {
        let mut top = self.get(origin).max(seq);
        if let Some(pending) = self.pending.get_mut(origin) {
            pending.retain(|&s| s > top);
            while pending.remove(&(top + 1)) {
                top += 1;
            }
            if pending.is_empty() {
                self.pending.remove(origin);
            }
        }
        self.clock.apply(Dot::new(origin.clone(), top));
        top
    }

    /// Join another vector into this one: contiguous seqs by max, pending seqs by union.
    pub fn merge(&mut self, other: &VersionVector) {
        for (origin, seq) in other.iter() {
            self.raise_to(origin, seq);
        }
        for (origin, seqs) in &other.pending {
            for &seq in seqs {
                self.observe(origin, seq);
            }
        }
    }

    /// Every origin and its contiguous seq, ordered by origin.
    pub fn iter(&self) -> impl Iterator<Item = (&OriginId, u64)> {
        self.clock.dots.iter().map(|(o, s)| (o, *s))
    }

    /// True when every `(origin, seq)` listed has been applied.
    pub fn covers<'a>(&self, dots: impl IntoIterator<Item = (&'a OriginId, u64)>) -> bool {
        dots.into_iter().all(|(o, s)| self.contains(o, s))
    }

    /// Number of origins known.
    pub fn len(&self) -> usize {
        self.clock.dots.len()
    }

    /// True when no op was ever applied.
    pub fn is_empty(&self) -> bool {
        self.clock.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contiguous_only() {
        let a = OriginId::new("a", 1);
        let mut v = VersionVector::new();
        assert_eq!(v.observe(&a, 2), Observed::Pending);
        assert_eq!(v.get(&a), 0);
        assert!(v.contains(&a, 2));
        assert_eq!(v.observe(&a, 2), Observed::Duplicate);
        assert_eq!(v.observe(&a, 1), Observed::Advanced(2));
        assert_eq!(v.observe(&a, 3), Observed::Advanced(3));
        assert_eq!(v.observe(&a, 5), Observed::Pending);
        assert_eq!(v.raise_to(&a, 4), 5);
        assert_eq!(v.get(&a), 5);
    }
}
