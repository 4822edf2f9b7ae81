//! The deny set's index: an open-addressing hash table of record offsets.
//!
//! A slot is 5 bytes, a tag then a u32 LE record offset (in
//! [`super::record::ALIGN`] units):
//!
//! ```text
//! tag   offset
//! 1 B   4 B      tag 0 = empty; else the hash's top byte (0 mapped to 1)
//! ```
//!
//! Tag and offset share a slot so that a hit costs two memory reads (slot,
//! record) and a miss usually one; a table with tags apart from offsets
//! (like `hashbrown`'s) reads three for a hit. At 10M ids every one of
//! those reads is a DRAM access, so this is what a lookup costs.
//!
//! Probing is linear from `hash & mask`; the table doubles past 4/5 full, so
//! a probe always ends on an empty slot. Removal shifts the entries after
//! it back (no tombstones), which needs their hashes: the caller supplies a
//! `rehash` that reads the record, as it does when the table grows.

/// Bytes per slot.
const SLOT: usize = 5;
/// Slots of the smallest table.
const MIN_SLOTS: usize = 16;

/// The tag a hash gives its slot (never 0, which marks an empty slot).
fn tag(hash: u64) -> u8 {
    ((hash >> 56) as u8).max(1)
}

/// An open-addressing table of u32 record offsets keyed by 64-bit hashes;
/// comparing keys is left to the caller (see the module doc).
#[derive(Clone, Default)]
pub(super) struct OffsetIndex {
    /// `capacity * SLOT` bytes; empty until the first insert.
    slots: Vec<u8>,
    /// Capacity - 1 (capacity is a power of two); 0 while `slots` is empty.
    mask: usize,
    /// Occupied slots.
    len: usize,
}

impl OffsetIndex {
    /// Offsets held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Bytes allocated.
    pub fn allocation_size(&self) -> usize {
        self.slots.capacity()
    }

    fn capacity(&self) -> usize {
        self.slots.len() / SLOT
    }

    fn read(&self, i: usize) -> (u8, u32) {
        let s = &self.slots[i * SLOT..i * SLOT + SLOT];
        (s[0], u32::from_le_bytes([s[1], s[2], s[3], s[4]]))
    }

    fn write(&mut self, i: usize, tag: u8, unit: u32) {
        let s = &mut self.slots[i * SLOT..i * SLOT + SLOT];
        s[0] = tag;
        s[1..].copy_from_slice(&unit.to_le_bytes());
    }

    /// The slot of the offset with `hash` for which `eq` holds.
    pub fn find(&self, hash: u64, mut eq: impl FnMut(u32) -> bool) -> Option<usize> {
        if self.len == 0 {
            return None;
        }
        let want = tag(hash);
        let mut i = hash as usize & self.mask;
        loop {
            match self.read(i) {
                (0, _) => return None,
                (t, unit) if t == want && eq(unit) => return Some(i),
                _ => i = (i + 1) & self.mask,
            }
        }
    }

    /// The offset in slot `i` (from [`OffsetIndex::find`]).
    pub fn unit(&self, i: usize) -> u32 {
        self.read(i).1
    }

    /// Read the slot `hash` starts probing at, and return its offset if
    /// the tag matches: the first read of a lookup, issued early so that
    /// several lookups' reads overlap (see `DenySet::revoked_at_each`).
    pub fn first_candidate(&self, hash: u64) -> Option<u32> {
        if self.len == 0 {
            return None;
        }
        let home = hash as usize & self.mask;
        match self.read(home) {
            (t, unit) if t == tag(hash) => Some(unit),
            _ => None,
        }
    }

    /// Add `unit` under `hash`; the caller has checked it is not there.
    pub fn insert(&mut self, hash: u64, unit: u32, rehash: impl Fn(u32) -> u64) {
        self.reserve(1, rehash);
        self.place(hash, unit);
        self.len += 1;
    }

    /// Write `unit` into the first empty slot of `hash`'s probe run.
    fn place(&mut self, hash: u64, unit: u32) {
        let mut i = hash as usize & self.mask;
        while self.read(i).0 != 0 {
            i = (i + 1) & self.mask;
        }
        self.write(i, tag(hash), unit);
    }

    /// Empty slot `i` (from [`OffsetIndex::find`]) and return its offset.
    /// Later entries of the probe run move back so none is cut off from its
    /// home slot by the new gap.
    pub fn remove(&mut self, i: usize, rehash: impl Fn(u32) -> u64) -> u32 {
        let removed = self.unit(i);
        let mut hole = i;
        let mut j = (i + 1) & self.mask;
        loop {
            let (t, unit) = self.read(j);
            if t == 0 {
                break;
            }
            let home = rehash(unit) as usize & self.mask;
            // The entry at j may fill the hole unless its home lies
            // cyclically within (hole, j].
            if (j.wrapping_sub(home) & self.mask) >= (j.wrapping_sub(hole) & self.mask) {
                self.write(hole, t, unit);
                hole = j;
            }
            j = (j + 1) & self.mask;
        }
        self.write(hole, 0, 0);
        self.len -= 1;
        removed
    }

    /// Make room for `additional` more offsets without growing again.
    pub fn reserve(&mut self, additional: usize, rehash: impl Fn(u32) -> u64) {
        let need = self.len.saturating_add(additional);
        let mut cap = self.capacity().max(MIN_SLOTS);
        while need.saturating_mul(5) > cap.saturating_mul(4) {
            cap = cap.saturating_mul(2);
        }
        if cap == self.capacity() {
            return;
        }
        let old = std::mem::replace(
            self,
            Self {
                slots: vec![0; cap * SLOT],
                mask: cap - 1,
                len: 0,
            },
        );
        for unit in old.units() {
            self.place(rehash(unit), unit);
        }
        self.len = old.len;
    }

    /// Every offset, in slot order.
    pub fn units(&self) -> impl Iterator<Item = u32> + '_ {
        self.slots
            .chunks_exact(SLOT)
            .filter(|s| s[0] != 0)
            .map(|s| u32::from_le_bytes([s[1], s[2], s[3], s[4]]))
    }

    /// Replace every offset by `f(offset)`, in slot order.
    pub fn map_units(&mut self, mut f: impl FnMut(u32) -> u32) {
        for s in self.slots.chunks_exact_mut(SLOT).filter(|s| s[0] != 0) {
            let unit = f(u32::from_le_bytes([s[1], s[2], s[3], s[4]]));
            s[1..].copy_from_slice(&unit.to_le_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    /// Hashes chosen to collide: few home slots and few tags, so probe runs
    /// are long, wrap around the end, and the backward shift is exercised.
    fn hash_of(unit: u32) -> u64 {
        let h = (u64::from(unit % 7) << 56) | u64::from(unit.wrapping_mul(2_654_435_761) % 5);
        h.wrapping_add(u64::MAX - 2) // homes near the table's end: runs wrap
    }

    proptest! {
        #[test]
        fn behaves_like_a_set(ops in prop::collection::vec((any::<bool>(), 0u32..300), 0..600)) {
            let mut index = OffsetIndex::default();
            let mut model: HashMap<u32, ()> = HashMap::new();
            for (add, unit) in ops {
                let found = index.find(hash_of(unit), |u| u == unit);
                prop_assert_eq!(found.is_some(), model.contains_key(&unit));
                match (add, found) {
                    (true, None) => {
                        index.insert(hash_of(unit), unit, hash_of);
                        model.insert(unit, ());
                    }
                    (false, Some(slot)) => {
                        prop_assert_eq!(index.remove(slot, hash_of), unit);
                        model.remove(&unit);
                    }
                    _ => {}
                }
                prop_assert_eq!(index.len(), model.len());
            }
            for unit in 0..300 {
                prop_assert_eq!(index.find(hash_of(unit), |u| u == unit).is_some(), model.contains_key(&unit));
            }
            let mut listed: Vec<u32> = index.units().collect();
            listed.sort();
            let mut want: Vec<u32> = model.keys().copied().collect();
            want.sort();
            prop_assert_eq!(listed, want);
        }
    }

    #[test]
    fn grows_past_four_fifths_and_keeps_every_offset() {
        let hash = |u: u32| u64::from(u).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let mut index = OffsetIndex::default();
        for unit in 0..13 {
            index.insert(hash(unit), unit, hash);
        }
        assert_eq!(index.capacity(), 32, "13 > 4/5 of 16");
        index.map_units(|u| u + 100);
        for unit in 0..13u32 {
            assert!(index.find(hash(unit), |u| u == unit + 100).is_some());
        }
        assert_eq!(index.first_candidate(0), Some(100));
    }
}
