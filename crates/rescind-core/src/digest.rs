//! An order-independent hash of the observable state.

use std::fmt;

/// The wrapping sum of one 128-bit hash per entry (deny entries and cutoffs).
///
/// Kept incrementally — add an entry's hash when it appears, subtract it when it
/// is replaced or pruned — so reading it costs nothing even at 10M entries. Two
/// nodes holding the same revocations have equal digests whatever order they
/// learned them in; a difference means they still disagree.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Digest(pub u128);

impl Digest {
    /// Account for an entry that appeared.
    pub fn add(&mut self, entry_hash: u128) {
        self.0 = self.0.wrapping_add(entry_hash);
    }

    /// Account for an entry that went away.
    pub fn remove(&mut self, entry_hash: u128) {
        self.0 = self.0.wrapping_sub(entry_hash);
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

/// Builds one entry's hash from its fields, each length-prefixed so that field
/// boundaries cannot be shifted to forge an equal hash.
pub(crate) struct EntryHasher(blake3::Hasher);

impl EntryHasher {
    pub(crate) fn new(tag: u8) -> Self {
        let mut h = blake3::Hasher::new();
        h.update(&[tag]);
        Self(h)
    }

    pub(crate) fn str(mut self, s: &str) -> Self {
        self.0.update(&(s.len() as u64).to_le_bytes());
        self.0.update(s.as_bytes());
        self
    }

    pub(crate) fn u64(mut self, v: u64) -> Self {
        self.0.update(&v.to_le_bytes());
        self
    }

    pub(crate) fn finish(self) -> u128 {
        let bytes = self.0.finalize();
        let mut first = [0u8; 16];
        first.copy_from_slice(&bytes.as_bytes()[..16]);
        u128::from_le_bytes(first)
    }
}
