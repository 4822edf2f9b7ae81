//! [`SledStore`]: the production adapter.

use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use rescind_core::deny::CheckpointHeader;
use rescind_core::{Cutoff, DenyEntry, DenyEntryRef, DenySet, Op, OriginId, PrincipalKind, State};
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::{IVec, Transactional, Tree};

use crate::identity::Identity;
use crate::keys::{cutoff_key, op_key, origin_prefix, parse_cutoff_key};
use crate::{LoadStats, Store, StoreError, WriteBatch, decode, encode};

const IDENTITY_KEY: &[u8] = b"identity";
/// Meta key of the deny entry count (u64 BE) as of the last commit.
const DENY_COUNT_KEY: &[u8] = b"deny_count";

/// Deny entries handed from a sled reader to the merging thread at a time.
const LOAD_CHUNK: usize = 4096;
/// Chunks in flight between them (bounds the memory loading takes).
const LOAD_QUEUE: usize = 16;
/// Chunks of deny entries (or a read error) on their way to the merging thread.
type LoadSender = std::sync::mpsc::SyncSender<Result<Vec<(IVec, IVec)>, sled::Error>>;
/// Most ops replayed on top of a checkpoint; beyond, walking is cheaper.
const MAX_REPLAY_OPS: u64 = 2_000_000;
/// Threads walking the deny tree at start-up.
const LOAD_READERS: usize = 8;

/// The production [`Store`]: a sled database with one tree per record kind.
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
    /// Identity and the deny entry count.
    meta: Tree,
    identity: Identity,
    /// Where a clean shutdown saves the deny set (next to the sled dir).
    checkpoint: PathBuf,
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
            meta,
            db,
            identity,
            checkpoint: dir.with_extension("deny-checkpoint"),
        })
    }

    /// Walk the deny tree into `state`.
    fn load_deny(&self, state: &mut State, stats: &mut LoadStats) -> Result<(), StoreError> {
        // Readers walk sled while this thread merges into memory. sled's
        // walk is mostly waiting on random reads, so several readers, each
        // taking the keys of one first byte at a time, keep more reads in
        // flight; the merge is single-threaded (one state).
        let (tx, rx) = std::sync::mpsc::sync_channel(LOAD_QUEUE);
        let next_byte = AtomicUsize::new(0);
        std::thread::scope(|scope| -> Result<(), StoreError> {
            for _ in 0..LOAD_READERS {
                let (tx, next_byte) = (tx.clone(), &next_byte);
                scope.spawn(move || {
                    loop {
                        let b = next_byte.fetch_add(1, Ordering::Relaxed);
                        if b > 255 || !self.send_deny_range(b as u8, &tx) {
                            return;
                        }
                    }
                });
            }
            drop(tx);
            for chunk in rx {
                for (key, value) in chunk? {
                    let id = std::str::from_utf8(&key).map_err(|e| StoreError::Corrupt {
                        what: "deny key",
                        detail: e.to_string(),
                    })?;
                    let entry: DenyEntryRef<'_> = decode("deny entry", &value)?;
                    // Nothing is pruned while loading; the GC pass after start does it.
                    state.load_deny(id, &entry);
                    stats.deny_entries += 1;
                }
            }
            Ok(())
        })?;
        Ok(())
    }

    /// Send the deny entries whose key starts with byte `first` (the empty
    /// key counts as 0) to the merging thread in chunks. False when reading
    /// failed or the merging side stopped: then this reader stops too.
    fn send_deny_range(&self, first: u8, tx: &LoadSender) -> bool {
        let keys = match first {
            0 => self.deny.range(..[1u8]),
            255 => self.deny.range([255u8]..),
            b => self.deny.range([b]..[b + 1]),
        };
        let mut chunk = Vec::with_capacity(LOAD_CHUNK);
        for item in keys {
            match item {
                Ok(kv) => chunk.push(kv),
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return false;
                }
            }
            if chunk.len() == LOAD_CHUNK {
                let full = std::mem::replace(&mut chunk, Vec::with_capacity(LOAD_CHUNK));
                if tx.send(Ok(full)).is_err() {
                    return false;
                }
            }
        }
        chunk.is_empty() || tx.send(Ok(chunk)).is_ok()
    }

    /// Read the checkpoint, if there is one and it is intact.
    fn read_checkpoint(&self) -> Option<(DenySet, CheckpointHeader)> {
        let file = std::fs::File::open(&self.checkpoint).ok()?;
        match DenySet::read_checkpoint(std::io::BufReader::with_capacity(1 << 20, file)) {
            Ok(cp) => Some(cp),
            Err(e) => {
                tracing::warn!(error = %e, "checkpoint unusable; reading every entry from the store");
                None
            }
        }
    }

    /// Install a checkpoint's deny set into the fresh `state`, then apply
    /// every op the log holds after the checkpoint's version vector. True
    /// when that reproduces the store's version vector exactly. False (the
    /// caller then walks the deny tree) when it cannot: entries adopted from a
    /// peer's snapshot have no ops in the log, so the clock does not close;
    /// a checkpoint ahead of the store; too many ops to replay.
    fn catch_up(
        &self,
        state: &mut State,
        set: DenySet,
        header: CheckpointHeader,
        stats: &mut LoadStats,
    ) -> Result<bool, StoreError> {
        let stored: std::collections::BTreeMap<OriginId, u64> = self.clock()?.into_iter().collect();
        let saved: std::collections::BTreeMap<OriginId, u64> = header.clock.into_iter().collect();
        if saved.iter().any(|(o, s)| stored.get(o).is_none_or(|now| now < s)) {
            return Ok(false);
        }
        if state.install_deny(set, header.deny_digest).is_err() {
            return Ok(false);
        }
        for (origin, seq) in &saved {
            state.raise_clock(origin, *seq);
        }
        // Every origin with ops in the log, not only those in the clock: ops
        // held out of order (before a gap) have effects too.
        for origin in self.log_origins()? {
            let mut after = saved.get(&origin).copied().unwrap_or(0);
            loop {
                let ops = self.ops_after(&origin, after, 4096)?;
                let Some(last) = ops.last() else { break };
                after = last.seq;
                for op in &ops {
                    // Time 0: nothing pruned while loading, as in the walk.
                    state.apply_op(op, 0);
                }
                stats.replayed_ops += ops.len() as u64;
                if stats.replayed_ops > MAX_REPLAY_OPS {
                    return Ok(false);
                }
            }
        }
        let closes = stored.iter().all(|(o, s)| state.clock().get(o) == *s);
        stats.deny_entries = state.deny().len() as u64;
        Ok(closes)
    }

    /// The origins that have ops in the log: one seek per origin.
    fn log_origins(&self) -> Result<Vec<OriginId>, StoreError> {
        let mut out = Vec::new();
        let mut next = self.oplog.iter().next();
        while let Some(item) = next {
            let (_, value) = item?;
            let op: Op = decode("op", &value)?;
            let last = op_key(&op.origin, u64::MAX);
            out.push(op.origin);
            next = self
                .oplog
                .range::<&[u8], _>((Bound::Excluded(last.as_slice()), Bound::Unbounded))
                .next();
        }
        Ok(out)
    }
}

fn sync_parent(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(dir) => std::fs::File::open(dir)?.sync_all(),
        None => Ok(()),
    }
}

impl Store for SledStore {
    fn identity(&self) -> &Identity {
        &self.identity
    }

    fn load_into(&self, state: &mut State) -> Result<LoadStats, StoreError> {
        let mut stats = LoadStats::default();
        if let Some((set, header)) = self.read_checkpoint() {
            if self.catch_up(state, set, header, &mut stats)? {
                stats.from_checkpoint = true;
            } else {
                tracing::warn!("the checkpoint cannot be caught up from the op log; reading every entry");
                *state = State::new(state.expiry_grace_ms());
                stats = LoadStats::default();
            }
        }
        if !stats.from_checkpoint {
            // Size memory once for what is coming (absent in stores written
            // before the count was kept: then it grows as it reads).
            let count = self
                .meta
                .get(DENY_COUNT_KEY)?
                .and_then(|v| v.as_ref().try_into().ok());
            if let Some(n) = count.map(u64::from_be_bytes) {
                state.reserve_deny(usize::try_from(n).unwrap_or(usize::MAX));
            }
            self.load_deny(state, &mut stats)?;
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

    fn save_checkpoint(&self, state: &State) -> Result<(), StoreError> {
        let tmp = self.checkpoint.with_extension("deny-checkpoint.tmp");
        let write = || -> std::io::Result<()> {
            let file = std::fs::File::create(&tmp)?;
            let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
            let clock = self.clock().map_err(std::io::Error::other)?;
            state
                .deny()
                .write_checkpoint(clock, state.deny_digest(), &mut out)?;
            let file = out.into_inner().map_err(|e| e.into_error())?;
            file.sync_all()?;
            std::fs::rename(&tmp, &self.checkpoint)?;
            sync_parent(&self.checkpoint)
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            StoreError::Checkpoint(e.to_string())
        })
    }

    fn commit(&self, batch: &WriteBatch) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let trees = (&self.oplog, &self.deny, &self.cutoffs, &self.clock, &self.meta);
        trees
            .transaction(|(oplog, deny, cutoffs, clock, meta)| {
                if let Some(n) = batch.deny_count {
                    meta.insert(DENY_COUNT_KEY, &n.to_be_bytes())?;
                }
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

    fn load(store: &SledStore) -> (State, LoadStats) {
        let mut s = State::new(0);
        let stats = store.load_into(&mut s).unwrap();
        (s, stats)
    }

    /// A store holding the shared sample, its state loaded, and a
    /// checkpoint of that state saved.
    fn checkpointed_sample() -> (tempfile::TempDir, SledStore, State) {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        suite::write_sample(&store);
        let (state, _) = load(&store);
        store.save_checkpoint(&state).unwrap();
        (dir, store, state)
    }

    #[test]
    fn the_parallel_walk_loads_ids_of_every_first_byte() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let me = store.identity().origin();
        let mut ids: Vec<String> = (1u8..=127).map(|b| format!("{}id", b as char)).collect();
        ids.extend(["é-token", "ÿ", "\u{10FFFF}max", "🔑key", "z", "0", "a"].map(String::from));
        ids.extend((0..20_000).map(|i| format!("bulk-{i}")));
        let ops: Vec<_> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| suite::token_op(&me, i as u64 + 1, id))
            .collect();
        let mut state = State::new(0);
        suite::apply_and_commit(&store, &mut state, &ops);
        let (back, stats) = load(&store);
        assert_eq!(stats.deny_entries as usize, ids.len());
        assert_eq!(back, state);
    }

    #[test]
    fn a_checkpoint_restores_the_same_state() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        suite::write_sample(&store);
        let (walked, stats) = load(&store);
        assert!(!stats.from_checkpoint);
        store.save_checkpoint(&walked).unwrap();
        drop(store);

        let store = open(dir.path());
        for _ in 0..2 {
            let (restored, stats) = load(&store);
            assert!(stats.from_checkpoint);
            assert_eq!(stats.replayed_ops, 0);
            assert_eq!(restored, walked);
            assert_eq!(restored.digest(), walked.digest());
            assert_eq!(stats.deny_entries, 3);
        }
        suite::assert_sample(&store);
    }

    #[test]
    fn ops_logged_after_a_checkpoint_are_replayed_even_out_of_order() {
        let (dir, store, mut state) = checkpointed_sample();
        // After the checkpoint: own ops, a peer's ops, and a peer's op held
        // out of order behind a gap (seq 5 without 4).
        let (me, peer) = (store.identity().origin(), OriginId::new("peer", 9));
        suite::apply_and_commit(
            &store,
            &mut state,
            &[
                suite::token_op(&me, 5, "late"),
                suite::token_op(&peer, 1, "p1"),
                suite::token_op(&peer, 2, "p2"),
                suite::token_op(&OriginId::new("far", 1), 5, "far-5"),
            ],
        );
        drop(store);
        let store = open(dir.path());
        let (back, stats) = load(&store);
        assert!(stats.from_checkpoint);
        assert_eq!(stats.replayed_ops, 4);
        let (walked, _) = {
            std::fs::remove_file(&store.checkpoint).unwrap();
            load(&store)
        };
        assert_eq!(back.deny(), walked.deny());
        assert_eq!(back.digest(), walked.digest());
        for id in ["late", "p2", "far-5", "t1"] {
            assert!(back.check(&rescind_core::CheckQuery::token(id)).revoked(), "{id}");
        }
    }

    #[test]
    fn entries_without_ops_make_the_checkpoint_unusable() {
        let (dir, store, mut state) = checkpointed_sample();
        // As when a node adopts a peer's snapshot: entries and a raised clock,
        // no ops in the log.
        let peer = OriginId::new("peer", 3);
        let entry = DenyEntry {
            expires_at_ms: 0,
            revoked_at_ms: 7,
            origin: peer.clone(),
        };
        state.merge_deny("adopted", &entry, 0);
        state.raise_clock(&peer, 40);
        let batch = WriteBatch {
            deny_put: vec![("adopted".into(), entry)],
            clock: vec![(peer, 40)],
            ..WriteBatch::default()
        };
        store.commit(&batch).unwrap();
        drop(store);
        let store = open(dir.path());
        let (back, stats) = load(&store);
        assert!(!stats.from_checkpoint, "the clock cannot close from the log");
        assert_eq!(back, state);
        assert!(back.check(&rescind_core::CheckQuery::token("adopted")).revoked());
    }

    #[test]
    fn a_damaged_checkpoint_falls_back_to_the_store() {
        let (dir, store, state) = checkpointed_sample();
        let mut bytes = std::fs::read(&store.checkpoint).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 1;
        std::fs::write(&store.checkpoint, bytes).unwrap();
        drop(store);
        let store = open(dir.path());
        let (back, stats) = load(&store);
        assert!(!stats.from_checkpoint);
        assert_eq!(back, state);
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
