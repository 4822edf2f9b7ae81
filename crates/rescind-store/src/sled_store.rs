//! [`SledStore`]: the production adapter.

use std::ops::Bound;
use std::path::Path;

use rescind_core::{Cutoff, DenyEntry, Op, OriginId, PrincipalKind, State};
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::{Transactional, Tree};

use crate::identity::Identity;
use crate::keys::{cutoff_key, op_key, origin_prefix, parse_cutoff_key};
use crate::{LoadStats, Store, StoreError, WriteBatch, decode, encode};

const IDENTITY_KEY: &[u8] = b"identity";

/// A sled database with one tree per record kind.
#[derive(Debug)]
pub struct SledStore {
    db: sled::Db,
    /// `op_key(origin, seq)` → `Op`.
    oplog: Tree,
    /// token id → `DenyEntry`.
    deny: Tree,
    /// `cutoff_key(kind, principal)` → `Cutoff`.
    cutoffs: Tree,
    /// `OriginId` (postcard) → contiguous seq (u64 BE).
    clock: Tree,
    identity: Identity,
}

impl SledStore {
    /// Open (or create) the store in `dir`. A new store gets a fresh identity
    /// named `requested` (or `default_name`); an existing one keeps its own
    /// identity and refuses a different requested name.
    pub fn open(dir: &Path, requested: Option<&str>, default_name: &str) -> Result<Self, StoreError> {
        Self::open_with_cache(dir, requested, default_name, 64 << 20)
    }

    /// [`SledStore::open`] with sled's page cache bounded to `cache_bytes`
    /// (sled's own default is 1 GiB, which dominates a node's memory).
    pub fn open_with_cache(
        dir: &Path,
        requested: Option<&str>,
        default_name: &str,
        cache_bytes: u64,
    ) -> Result<Self, StoreError> {
        let db = sled::Config::new().path(dir).cache_capacity(cache_bytes).open()?;
        let meta = db.open_tree("meta")?;
        let identity = match meta.get(IDENTITY_KEY)? {
            Some(bytes) => decode::<Identity>("node identity", &bytes)?,
            None => {
                let id = Identity::fresh(requested.unwrap_or(default_name));
                meta.insert(IDENTITY_KEY, encode(&id))?;
                db.flush()?;
                id
            }
        };
        if let Some(requested) = requested.filter(|r| *r != identity.node_name) {
            return Err(StoreError::NameMismatch {
                stored: identity.node_name,
                requested: requested.to_owned(),
            });
        }
        Ok(Self {
            oplog: db.open_tree("oplog")?,
            deny: db.open_tree("deny")?,
            cutoffs: db.open_tree("cutoffs")?,
            clock: db.open_tree("clock")?,
            db,
            identity,
        })
    }
}

impl Store for SledStore {
    fn identity(&self) -> &Identity {
        &self.identity
    }

    fn load_into(&self, state: &mut State) -> Result<LoadStats, StoreError> {
        let mut stats = LoadStats::default();
        state.reserve_deny(self.deny.len());
        for item in self.deny.iter() {
            let (key, value) = item?;
            let id = std::str::from_utf8(&key).map_err(|e| StoreError::Corrupt {
                what: "deny key",
                detail: e.to_string(),
            })?;
            let entry: DenyEntry = decode("deny entry", &value)?;
            // Time 0: nothing is pruned while loading; the GC pass after start does it.
            state.merge_deny(id, &entry, 0);
            stats.deny_entries += 1;
        }
        for item in self.cutoffs.iter() {
            let (key, value) = item?;
            let (kind, principal) = parse_cutoff_key(&key).ok_or(StoreError::Corrupt {
                what: "cutoff key",
                detail: format!("{} bytes", key.len()),
            })?;
            let cutoff: Cutoff = decode("cutoff", &value)?;
            state.merge_cutoff(kind, &principal, cutoff);
            stats.cutoffs += 1;
        }
        for item in self.clock.iter() {
            let (key, value) = item?;
            let origin: OriginId = decode("clock origin", &key)?;
            let seq = u64::from_be_bytes(value.as_ref().try_into().map_err(|_| StoreError::Corrupt {
                what: "clock seq",
                detail: format!("{} bytes", value.len()),
            })?);
            state.raise_clock(&origin, seq);
            stats.origins += 1;
        }
        Ok(stats)
    }

    fn commit(&self, batch: &WriteBatch) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let trees = (&self.oplog, &self.deny, &self.cutoffs, &self.clock);
        trees
            .transaction(|(oplog, deny, cutoffs, clock)| {
                for op in &batch.ops {
                    oplog.insert(op_key(&op.origin, op.seq), encode(op))?;
                }
                for (id, entry) in &batch.deny_put {
                    deny.insert(id.as_bytes(), encode(entry))?;
                }
                for id in &batch.deny_delete {
                    deny.remove(id.as_bytes())?;
                }
                for (kind, principal, cutoff) in &batch.cutoff_put {
                    cutoffs.insert(cutoff_key(*kind, principal), encode(cutoff))?;
                }
                for (origin, seq) in &batch.clock {
                    clock.insert(encode(origin), &seq.to_be_bytes())?;
                }
                Ok::<(), ConflictableTransactionError<StoreError>>(())
            })
            .map_err(|e| match e {
                TransactionError::Abort(e) => e,
                TransactionError::Storage(e) => StoreError::Sled(e),
            })
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }

    fn clock(&self) -> Result<Vec<(OriginId, u64)>, StoreError> {
        let mut out = Vec::new();
        for item in self.clock.iter() {
            let (key, value) = item?;
            let seq = value
                .as_ref()
                .try_into()
                .map(u64::from_be_bytes)
                .map_err(|_| StoreError::Corrupt {
                    what: "clock seq",
                    detail: format!("{} bytes", value.len()),
                })?;
            out.push((decode("clock origin", &key)?, seq));
        }
        Ok(out)
    }

    fn deny_page(&self, after: Option<&str>, limit: usize) -> Result<Vec<(String, DenyEntry)>, StoreError> {
        let range = match after {
            Some(a) => self
                .deny
                .range::<&[u8], _>((Bound::Excluded(a.as_bytes()), Bound::Unbounded)),
            None => self.deny.iter(),
        };
        let mut out = Vec::new();
        for item in range.take(limit) {
            let (key, value) = item?;
            let id = String::from_utf8(key.to_vec()).map_err(|e| StoreError::Corrupt {
                what: "deny key",
                detail: e.to_string(),
            })?;
            out.push((id, decode("deny entry", &value)?));
        }
        Ok(out)
    }

    fn cutoff_page(
        &self,
        after: Option<(PrincipalKind, &str)>,
        limit: usize,
    ) -> Result<Vec<(PrincipalKind, String, Cutoff)>, StoreError> {
        let range = match after {
            Some((kind, p)) => self
                .cutoffs
                .range((Bound::Excluded(cutoff_key(kind, p)), Bound::Unbounded)),
            None => self.cutoffs.iter(),
        };
        let mut out = Vec::new();
        for item in range.take(limit) {
            let (key, value) = item?;
            let (kind, principal) = parse_cutoff_key(&key).ok_or(StoreError::Corrupt {
                what: "cutoff key",
                detail: format!("{} bytes", key.len()),
            })?;
            out.push((kind, principal, decode("cutoff", &value)?));
        }
        Ok(out)
    }

    fn ops_after(&self, origin: &OriginId, after_seq: u64, limit: usize) -> Result<Vec<Op>, StoreError> {
        let Some(from) = after_seq.checked_add(1) else {
            return Ok(Vec::new());
        };
        let end = {
            let mut k = origin_prefix(origin);
            k.extend_from_slice(&u64::MAX.to_be_bytes());
            k
        };
        let mut out = Vec::new();
        for item in self.oplog.range(op_key(origin, from)..=end).take(limit) {
            let (_, value) = item?;
            out.push(decode::<Op>("op", &value)?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite;

    fn open(dir: &Path) -> SledStore {
        SledStore::open(dir, Some("node-a"), "unused").expect("open sled store")
    }

    #[test]
    fn shared_suite() {
        let dir = tempfile::tempdir().unwrap();
        suite::round_trip(&open(dir.path()));
        let dir = tempfile::tempdir().unwrap();
        suite::op_log_ranges(&open(dir.path()));
        let dir = tempfile::tempdir().unwrap();
        suite::deletes_and_raises(&open(dir.path()));
        let dir = tempfile::tempdir().unwrap();
        suite::snapshot_pages(&open(dir.path()));
    }

    #[test]
    fn reopen_keeps_identity_and_data() {
        let dir = tempfile::tempdir().unwrap();
        let first = open(dir.path());
        let identity = first.identity().clone();
        suite::write_sample(&first);
        first.flush().unwrap();
        drop(first);
        let again = open(dir.path());
        assert_eq!(again.identity(), &identity);
        suite::assert_sample(&again);
        drop(again);
        // With no name asked for, the recorded one is kept.
        let unnamed = SledStore::open(dir.path(), None, "other").unwrap();
        assert_eq!(unnamed.identity(), &identity);
    }

    #[test]
    fn a_wiped_dir_gets_a_new_incarnation_and_names_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let first = open(dir.path()).identity().clone();
        let err = SledStore::open(dir.path(), Some("node-b"), "x").unwrap_err();
        assert!(err.to_string().contains("--node-name node-a"), "{err}");
        std::fs::remove_dir_all(dir.path()).unwrap();
        let second = open(dir.path()).identity().clone();
        assert_eq!(second.node_name, first.node_name);
        assert_ne!(second.incarnation, first.incarnation);
    }
}
