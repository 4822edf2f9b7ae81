//! The deny set: revoked token ids.
//!
//! # Laws (tested with proptest in `state.rs` and `tests/laws.rs`)
//! [`DenySet::merge`] is a join: commutative, associative and idempotent. For an
//! id present on both sides, `(revoked_at_ms, origin)` is taken from the entry
//! smallest by that pair, and `expires_at_ms` from the longer-lived one (0 =
//! never). Both halves are joins, so their product is one, and replicas end
//! identical whatever order they merged in. Taking the longer expiry means a
//! second revocation with a later expiry extends the first: security first.

mod index;
mod record;

pub use record::{Fields as StoredFields, Key as StoredId};

use std::borrow::Cow;
use std::hash::BuildHasher;
use std::sync::Arc;

use crdts::CvRDT;
use hashbrown::{DefaultHashBuilder, HashMap};
use serde::{Deserialize, Serialize};

use index::OffsetIndex;
use record::{Fields, Key};

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

/// A [`DenyEntry`] decoded without copying its origin's name: loading 10M
/// entries at start-up would otherwise allocate 10M strings. Same postcard
/// layout as [`DenyEntry`] (tested).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub struct DenyEntryRef<'a> {
    /// See [`DenyEntry::expires_at_ms`].
    pub expires_at_ms: u64,
    /// See [`DenyEntry::revoked_at_ms`].
    pub revoked_at_ms: u64,
    /// See [`DenyEntry::origin`].
    #[serde(borrow)]
    pub origin: OriginRef<'a>,
}

/// An [`OriginId`] borrowing its name; hashes and compares like one, so it
/// can look one up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub struct OriginRef<'a> {
    /// See [`OriginId::node`].
    pub node: &'a str,
    /// See [`OriginId::incarnation`].
    pub incarnation: u64,
}

/// The same hash as `OriginId`'s derived one: name, then incarnation.
impl std::hash::Hash for OriginRef<'_> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.node.hash(state);
        self.incarnation.hash(state);
    }
}

impl hashbrown::Equivalent<OriginId> for OriginRef<'_> {
    fn equivalent(&self, key: &OriginId) -> bool {
        self.node == key.node && self.incarnation == key.incarnation
    }
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

/// Revoked token ids and their entries, in a compact layout: 10M UUID ids
/// take about 49 bytes each (a 40-byte record plus the index), against ~110
/// for a `HashMap<Box<str>, _>`.
///
/// - `arena`: the records, back to back (layout in `record`);
/// - `index`: a hash table of record offsets (5 bytes a slot, see
///   `index`), keyed by the hash of the id's stored form;
/// - `origins`: the origin table records refer to by number.
///
/// Replacing an entry rewrites its fields in place; removing one leaves a
/// hole that [`DenySet::remove`] reclaims by compacting once holes make up
/// half the arena. Should the arena ever outgrow what a u32 offset addresses
/// (16 GiB), further ids go to an ordinary map: slower, never lost.
#[derive(Clone)]
pub struct DenySet {
    arena: Vec<u8>,
    index: OffsetIndex,
    hasher: DefaultHashBuilder,
    origins: OriginTable,
    /// Bytes of removed records, reclaimed by compaction.
    holes: usize,
    /// Ids beyond the arena's reach (see above); empty in practice.
    overflow: HashMap<Box<str>, DenyMeta>,
    /// Most arena bytes (a u32 count of ALIGN units); lowered only in tests.
    arena_limit: usize,
    /// Compact once holes exceed half the arena and this many bytes.
    compact_after: usize,
}

impl Default for DenySet {
    fn default() -> Self {
        Self {
            arena: Vec::new(),
            index: OffsetIndex::default(),
            hasher: DefaultHashBuilder::default(),
            origins: OriginTable::default(),
            holes: 0,
            overflow: HashMap::new(),
            arena_limit: (u32::MAX as usize).saturating_mul(record::ALIGN),
            compact_after: 1 << 20,
        }
    }
}

impl std::fmt::Debug for DenySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DenySet")
            .field("len", &self.len())
            .field("arena_bytes", &self.arena.len())
            .field("holes", &self.holes)
            .finish()
    }
}

/// Equal when both hold the same ids with the same entries.
impl PartialEq for DenySet {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().all(|(id, m)| other.get(&id).as_ref() == Some(&m))
    }
}

impl Eq for DenySet {}

impl DenySet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    fn hash(&self, key: &Key<'_>) -> u64 {
        self.hasher.hash_one(key.hash_bytes())
    }

    /// The index slot of `key`'s record.
    fn find_slot(&self, key: &Key<'_>, hash: u64) -> Option<usize> {
        self.index.find(hash, |unit| {
            record::key_at(&self.arena, unit as usize * record::ALIGN).0 == *key
        })
    }

    /// The arena offset of `key`'s record.
    fn find(&self, key: &Key<'_>, hash: u64) -> Option<usize> {
        self.find_slot(key, hash)
            .map(|slot| self.index.unit(slot) as usize * record::ALIGN)
    }

    fn meta_of(&self, fields: Fields) -> DenyMeta {
        DenyMeta {
            expires_at_ms: fields.expires_at_ms,
            revoked_at_ms: fields.revoked_at_ms,
            origin: self.origins.arcs[fields.origin as usize].clone(),
        }
    }

    /// Where `id`'s entry is: its fields in the arena, or the overflow map.
    fn lookup(&self, id: &str) -> Option<Found<'_>> {
        let key = Key::of(id);
        self.lookup_key(id, &key, self.hash(&key))
    }

    /// [`DenySet::lookup`] with the key and its hash already computed.
    fn lookup_key(&self, id: &str, key: &Key<'_>, hash: u64) -> Option<Found<'_>> {
        match self.find(key, hash) {
            Some(at) => {
                let meta_at = record::key_at(&self.arena, at).1;
                Some(Found::Arena(record::read_fields(&self.arena, meta_at)))
            }
            None if self.overflow.is_empty() => None,
            None => self.overflow.get(id).map(Found::Overflow),
        }
    }

    /// The entry of a revoked id.
    pub fn get(&self, id: &str) -> Option<DenyMeta> {
        self.lookup(id).map(|found| match found {
            Found::Arena(fields) => self.meta_of(fields),
            Found::Overflow(meta) => meta.clone(),
        })
    }

    /// When `id` was revoked, if it is: the check's hot path, which needs
    /// no more than this (no origin `Arc` to clone and drop).
    pub fn revoked_at_ms(&self, id: &str) -> Option<u64> {
        self.lookup(id).map(Found::revoked_at_ms)
    }

    /// [`DenySet::revoked_at_ms`] of each id (`None` ids are not looked
    /// up), faster than one by one for a batch.
    ///
    /// With millions of ids, a lookup is two reads from DRAM (index slot,
    /// then record), each a few hundred ns; one lookup after another waits
    /// for each in turn. Here `OVERLAP` lookups first issue their slot
    /// reads together, then their record reads together, and only then
    /// compare, by which time the lines are in cache: the waits overlap.
    pub fn revoked_at_each(&self, ids: &[Option<&str>]) -> Vec<Option<u64>> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(OVERLAP) {
            let mut keys = [None; OVERLAP];
            for (id, k) in chunk.iter().zip(&mut keys) {
                *k = id.map(|id| {
                    let key = Key::of(id);
                    (key, self.hash(&key))
                });
            }
            let mut first = [None; OVERLAP];
            for (k, f) in keys.iter().zip(&mut first) {
                *f = k.and_then(|(_, hash)| self.index.first_candidate(hash));
            }
            for unit in first.iter().flatten() {
                // The value is unused: reading it is what brings the line in.
                std::hint::black_box(self.arena.get(*unit as usize * record::ALIGN).copied());
            }
            for (id, k) in chunk.iter().zip(&keys) {
                out.push(match (id, k) {
                    (Some(id), Some((key, hash))) => {
                        self.lookup_key(id, key, *hash).map(Found::revoked_at_ms)
                    }
                    _ => None,
                });
            }
        }
        out
    }

    /// The shared `Arc` of an origin (given as `OriginId` or `OriginRef`),
    /// added to the origin table if new: entries then hold a number, and
    /// the `DenyMeta`s handed out share one pointer.
    pub fn intern<Q>(&mut self, origin: &Q, owned: impl FnOnce() -> OriginId) -> Arc<OriginId>
    where
        Q: std::hash::Hash + hashbrown::Equivalent<OriginId> + ?Sized,
    {
        match self.origins.numbers.get(origin) {
            Some(&n) => self.origins.arcs[n as usize].clone(),
            None => {
                let arc = Arc::new(owned());
                self.origins.number(&arc);
                arc
            }
        }
    }

    /// Number of revoked ids held.
    pub fn len(&self) -> usize {
        self.index.len() + self.overflow.len()
    }

    /// True when nothing is revoked by id.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every id and its entry, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (Cow<'_, str>, DenyMeta)> {
        self.index
            .units()
            .map(|unit| {
                let (key, meta_at) = record::key_at(&self.arena, unit as usize * record::ALIGN);
                (
                    key.to_id(),
                    self.meta_of(record::read_fields(&self.arena, meta_at)),
                )
            })
            .chain(
                self.overflow
                    .iter()
                    .map(|(id, m)| (Cow::Borrowed(&**id), m.clone())),
            )
    }

    /// Join one entry in (see [`DenyMeta::join`]).
    pub fn upsert(&mut self, id: &str, meta: DenyMeta) -> Upsert {
        let key = Key::of(id);
        let hash = self.hash(&key);
        if let Some(at) = self.find(&key, hash) {
            let meta_at = record::key_at(&self.arena, at).1;
            let existing = self.meta_of(record::read_fields(&self.arena, meta_at));
            let joined = existing.join(&meta);
            if joined == existing {
                return Upsert::Unchanged;
            }
            let fields = self.origins.fields(&joined);
            record::write_fields(&mut self.arena, meta_at, fields);
            return Upsert::Replaced(existing);
        }
        if let Some(existing) = self.overflow.get_mut(id) {
            let joined = existing.join(&meta);
            if joined == *existing {
                return Upsert::Unchanged;
            }
            return Upsert::Replaced(std::mem::replace(existing, joined));
        }
        if self.arena.len() + key.record_len() > self.arena_limit {
            self.overflow.insert(id.into(), meta);
            return Upsert::Inserted;
        }
        let fields = self.origins.fields(&meta);
        let at = record::append(&mut self.arena, &key, fields);
        let (arena, hasher) = (&self.arena, &self.hasher);
        self.index.insert(hash, (at / record::ALIGN) as u32, |unit| {
            rehash(arena, hasher, unit)
        });
        Upsert::Inserted
    }

    /// Drop an id (expiry GC only; revocations are never undone otherwise).
    pub fn remove(&mut self, id: &str) -> Option<DenyMeta> {
        let key = Key::of(id);
        let hash = self.hash(&key);
        let Some(slot) = self.find_slot(&key, hash) else {
            return self.overflow.remove(id);
        };
        let (arena, hasher) = (&self.arena, &self.hasher);
        let unit = self.index.remove(slot, |unit| rehash(arena, hasher, unit));
        let at = unit as usize * record::ALIGN;
        let meta_at = record::key_at(&self.arena, at).1;
        let meta = self.meta_of(record::read_fields(&self.arena, meta_at));
        self.holes += key.record_len();
        if self.holes > self.compact_after && self.holes * 2 > self.arena.len() {
            self.compact();
        }
        Some(meta)
    }

    /// Rewrite the arena without holes.
    fn compact(&mut self) {
        let mut arena = Vec::with_capacity(self.arena.len() - self.holes);
        self.index.map_units(|unit| {
            let at = unit as usize * record::ALIGN;
            let len = record::key_at(&self.arena, at).0.record_len();
            let new_at = arena.len();
            arena.extend_from_slice(&self.arena[at..at + len]);
            (new_at / record::ALIGN) as u32
        });
        self.arena = arena;
        self.holes = 0;
    }

    /// Ids whose entries may be dropped at `now_ms`.
    pub fn expired(&self, now_ms: u64, grace_ms: u64) -> Vec<Box<str>> {
        let mut out = Vec::new();
        for unit in self.index.units() {
            let (key, meta_at) = record::key_at(&self.arena, unit as usize * record::ALIGN);
            let f = record::read_fields(&self.arena, meta_at);
            if f.expires_at_ms != 0 && f.expires_at_ms.saturating_add(grace_ms) < now_ms {
                out.push(key.to_id().into());
            }
        }
        out.extend(
            self.overflow
                .iter()
                .filter(|(_, m)| m.is_expired(now_ms, grace_ms))
                .map(|(id, _)| id.clone()),
        );
        out
    }

    /// Every record in its stored form, in no particular order (what a
    /// checkpoint writes): the id as stored and the fields, whose `origin`
    /// numbers [`DenySet::origins`].
    pub fn records(&self) -> impl Iterator<Item = (StoredId<'_>, StoredFields)> {
        let arena = &self.arena;
        self.index
            .units()
            .map(move |unit| {
                let (key, meta_at) = record::key_at(arena, unit as usize * record::ALIGN);
                (key, record::read_fields(arena, meta_at))
            })
            .chain(self.overflow.iter().map(|(id, m)| {
                let origin = self.origins.numbers.get(&*m.origin).copied().unwrap_or(u32::MAX);
                (
                    StoredId::of(id),
                    StoredFields {
                        expires_at_ms: m.expires_at_ms,
                        revoked_at_ms: m.revoked_at_ms,
                        origin,
                    },
                )
            }))
    }

    /// Add one record read back from a checkpoint. Refused (nothing added)
    /// when its origin number is not in the table or its id is already held:
    /// a checkpoint never holds an id twice.
    pub fn push_record(&mut self, id: StoredId<'_>, fields: StoredFields) -> Result<(), &'static str> {
        if fields.origin as usize >= self.origins.arcs.len() {
            return Err("origin number out of range");
        }
        if let StoredId::Raw(raw) = id
            && std::str::from_utf8(raw).is_err()
        {
            return Err("id is not UTF-8");
        }
        let hash = self.hash(&id);
        if self.find(&id, hash).is_some() {
            return Err("id appears twice");
        }
        if self.arena.len() + id.record_len() > self.arena_limit {
            let text = id.to_id().into_owned();
            let meta = self.meta_of(fields);
            if self.overflow.insert(text.into(), meta).is_some() {
                return Err("id appears twice");
            }
            return Ok(());
        }
        let at = record::append(&mut self.arena, &id, fields);
        let (arena, hasher) = (&self.arena, &self.hasher);
        self.index.insert(hash, (at / record::ALIGN) as u32, |unit| {
            rehash(arena, hasher, unit)
        });
        Ok(())
    }

    /// Reserve room for `additional` more ids (used when loading from disk).
    pub fn reserve(&mut self, additional: usize) {
        self.reserve_index(additional);
        // Room for records of ids up to ~40 bytes (a UUID's is 40 B); only
        // address space until written, and longer ids just grow the arena.
        let want = additional.saturating_mul(64).min(self.arena_limit);
        self.arena.reserve(want);
    }

    /// Index room for `additional` more ids (arena bytes are already there).
    fn reserve_index(&mut self, additional: usize) {
        let (arena, hasher) = (&self.arena, &self.hasher);
        self.index.reserve(additional, |unit| rehash(arena, hasher, unit));
    }

    /// The origins entries refer to.
    pub fn origins(&self) -> &[Arc<OriginId>] {
        &self.origins.arcs
    }

    /// Bytes in use: the arena's records (holes included) plus the index's
    /// allocation. Reserved but unwritten arena capacity is not counted: it
    /// is address space, not memory.
    pub fn heap_bytes(&self) -> usize {
        self.arena.len() + self.index.allocation_size()
    }

    /// A set whose arena holds at most `arena_limit` bytes and compacts
    /// after `compact_after` bytes of holes, to test those paths small.
    #[cfg(test)]
    fn with_limits(arena_limit: usize, compact_after: usize) -> Self {
        Self {
            arena_limit,
            compact_after,
            ..Self::default()
        }
    }
}

/// Lookups [`DenySet::revoked_at_each`] overlaps: enough reads in flight
/// to hide DRAM latency (a core tracks 10–20 misses), few enough that their
/// lines stay in L1 until compared.
const OVERLAP: usize = 16;

/// Where [`DenySet::lookup`] found an entry.
enum Found<'a> {
    Arena(Fields),
    Overflow(&'a DenyMeta),
}

impl Found<'_> {
    fn revoked_at_ms(self) -> u64 {
        match self {
            Found::Arena(fields) => fields.revoked_at_ms,
            Found::Overflow(meta) => meta.revoked_at_ms,
        }
    }
}

/// The origins records refer to by number.
#[derive(Clone, Default)]
struct OriginTable {
    arcs: Vec<Arc<OriginId>>,
    numbers: HashMap<OriginId, u32>,
}

impl OriginTable {
    /// The number of `origin`, adding it if new.
    fn number(&mut self, origin: &Arc<OriginId>) -> u32 {
        if let Some(&n) = self.numbers.get(&**origin) {
            return n;
        }
        let n = self.arcs.len() as u32;
        self.arcs.push(origin.clone());
        self.numbers.insert((**origin).clone(), n);
        n
    }

    /// `meta` as a record's fields.
    fn fields(&mut self, meta: &DenyMeta) -> Fields {
        Fields {
            expires_at_ms: meta.expires_at_ms,
            revoked_at_ms: meta.revoked_at_ms,
            origin: self.number(&meta.origin),
        }
    }
}

/// The index hash of the record at `unit` (when the table grows).
fn rehash(arena: &[u8], hasher: &DefaultHashBuilder, unit: u32) -> u64 {
    hasher.hash_one(
        record::key_at(arena, unit as usize * record::ALIGN)
            .0
            .hash_bytes(),
    )
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
        for (id, meta) in other.iter() {
            self.upsert(&id, meta);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap as Model;

    use proptest::prelude::*;

    use super::*;

    fn meta(origin: u8, revoked_at_ms: u64, expires_at_ms: u64) -> DenyMeta {
        DenyMeta {
            expires_at_ms,
            revoked_at_ms,
            origin: Arc::new(OriginId::new(format!("n{origin}"), 1)),
        }
    }

    /// Ids of every stored form: packed UUIDs, UUID look-alikes that must
    /// stay raw, short, medium (two-byte header) ids.
    fn id_strategy() -> impl Strategy<Value = String> {
        prop_oneof![
            (0u8..40).prop_map(|i| format!("{i:08x}-d9cb-469f-a165-70867728950e")),
            (0u8..40).prop_map(|i| format!("{i:08X}-D9CB-469F-A165-70867728950E")),
            (0u8..40).prop_map(|i| format!("t{i}")),
            (0u8..10).prop_map(|i| format!("{i}").repeat(200)),
        ]
    }

    #[derive(Clone, Debug)]
    enum Step {
        Upsert(String, u8, u64, u64),
        Remove(String),
    }

    fn steps() -> impl Strategy<Value = Vec<Step>> {
        prop::collection::vec(
            prop_oneof![
                3 => (id_strategy(), 0u8..3, 0u64..50, 0u64..50)
                    .prop_map(|(id, o, r, e)| Step::Upsert(id, o, r, e)),
                1 => id_strategy().prop_map(Step::Remove),
            ],
            0..200,
        )
    }

    proptest! {
        /// The compact set behaves exactly like a map with the join, whatever
        /// the id forms, with a tiny arena (overflow) and eager compaction.
        #[test]
        fn behaves_like_a_map_with_the_join(steps in steps(), limit in prop_oneof![Just(usize::MAX), 0usize..4000]) {
            let mut set = DenySet::with_limits(limit, 64);
            let mut model: Model<String, DenyMeta> = Model::new();
            for step in steps {
                match step {
                    Step::Upsert(id, o, r, e) => {
                        let m = meta(o, r, e);
                        let expected = match model.get(&id) {
                            None => Upsert::Inserted,
                            Some(old) if old.join(&m) == *old => Upsert::Unchanged,
                            Some(old) => Upsert::Replaced(old.clone()),
                        };
                        let joined = model.get(&id).map_or(m.clone(), |old| old.join(&m));
                        model.insert(id.clone(), joined);
                        prop_assert_eq!(set.upsert(&id, m), expected);
                    }
                    Step::Remove(id) => prop_assert_eq!(set.remove(&id), model.remove(&id)),
                }
                prop_assert_eq!(set.len(), model.len());
            }
            for (id, m) in &model {
                prop_assert_eq!(set.get(id), Some(m.clone()));
                prop_assert_eq!(set.revoked_at_ms(id), Some(m.revoked_at_ms));
            }
            // The batch lookup agrees with the model on held ids, absent
            // ids and absent queries, across several chunks.
            let mut asked: Vec<Option<&str>> = model.keys().map(|id| Some(id.as_str())).collect();
            asked.extend(["t999", "00000000-d9cb-469f-a165-70867728950f", ""].map(Some));
            asked.insert(asked.len() / 2, None);
            let want: Vec<Option<u64>> =
                asked.iter().map(|id| id.and_then(|id| model.get(id)).map(|m| m.revoked_at_ms)).collect();
            prop_assert_eq!(set.revoked_at_each(&asked), want);
            let listed: Model<String, DenyMeta> = set.iter().map(|(id, m)| (id.into_owned(), m)).collect();
            prop_assert_eq!(&listed, &model);
            let mut expired: Vec<String> = set.expired(40, 5).into_iter().map(String::from).collect();
            expired.sort();
            let mut want: Vec<String> =
                model.iter().filter(|(_, m)| m.is_expired(40, 5)).map(|(id, _)| id.clone()).collect();
            want.sort();
            prop_assert_eq!(expired, want);
        }
    }

    #[test]
    fn the_borrowed_entry_decodes_what_a_deny_entry_encodes() {
        let entry = DenyEntry {
            expires_at_ms: 1_700_000_000_123,
            revoked_at_ms: 42,
            origin: OriginId::new("eu-1", u64::MAX - 3),
        };
        let bytes = postcard::to_stdvec(&entry).unwrap();
        let borrowed: DenyEntryRef<'_> = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(
            (
                borrowed.expires_at_ms,
                borrowed.revoked_at_ms,
                borrowed.origin.node,
                borrowed.origin.incarnation
            ),
            (entry.expires_at_ms, entry.revoked_at_ms, "eu-1", u64::MAX - 3)
        );
        let mut origins = HashMap::new();
        origins.insert(entry.origin.clone(), 7);
        assert_eq!(origins.get(&borrowed.origin), Some(&7));
    }

    #[test]
    fn a_uuid_record_is_40_bytes_and_removals_are_reclaimed() {
        let mut set = DenySet::with_limits(usize::MAX, 1000);
        let ids: Vec<String> = (0..1000u32)
            .map(|i| format!("{i:08x}-d9cb-469f-a165-70867728950e"))
            .collect();
        for id in &ids {
            set.upsert(id, meta(0, 1, 0));
        }
        assert_eq!(set.arena.len(), 40 * 1000);
        for id in &ids[..600] {
            assert!(set.remove(id).is_some());
        }
        assert!(set.arena.len() < 40 * 1000, "compaction ran");
        assert_eq!(set.len(), 400);
        for id in &ids[600..] {
            assert_eq!(set.get(id).map(|m| m.revoked_at_ms), Some(1));
        }
        assert!(set.get(&ids[0]).is_none());
    }

    #[test]
    fn ids_past_the_arena_limit_are_kept_in_the_overflow_map() {
        let mut set = DenySet::with_limits(80, 1 << 20);
        for i in 0..5 {
            assert_eq!(set.upsert(&format!("id-{i}"), meta(0, i, 0)), Upsert::Inserted);
        }
        assert_eq!(set.overflow.len(), 3, "two 32-byte records fit in 80 bytes");
        for i in 0..5 {
            assert_eq!(set.get(&format!("id-{i}")).map(|m| m.revoked_at_ms), Some(i));
        }
        assert_eq!(set.upsert("id-4", meta(0, 0, 0)), Upsert::Replaced(meta(0, 4, 0)));
        assert_eq!(set.remove("id-4").map(|m| m.revoked_at_ms), Some(0));
        assert_eq!(set.len(), 4);
    }
}
