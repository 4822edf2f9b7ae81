//! [`SledStore`]: the production adapter: meta in a sled database
//! (`<data dir>/db`, one tree), the op-log tail in segment files
//! (`<data dir>/oplog`, [`OpLogFiles`]) and the checkpoint files
//! (`<data dir>/checkpoints`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rescind_core::codec::{self, DATA_DIR_FORMAT, meta};
use rescind_core::{Op, OriginId};

use crate::audit::AuditLog;
use crate::checkpoints::Checkpoints;
use crate::fs::{Fs, RealFs};
use crate::identity::Identity;
use crate::oplog::OpLogFiles;
use crate::{Store, StoreError, legacy, meta_keys, raised_floor};

const IDENTITY_KEY: &[u8] = b"identity";
const FORMAT_KEY: &[u8] = b"format";
/// Node meta records live under this prefix, apart from the store's own.
const NODE_PREFIX: &str = "node/";
/// Format-1 ops copied into the segment files per append while migrating.
const MIGRATE_CHUNK: usize = 10_000;

/// The production [`Store`].
#[derive(Debug)]
pub struct SledStore {
    db: sled::Db,
    /// The op-log tail.
    oplog: OpLogFiles,
    /// Identity, format, and the node's records.
    meta: sled::Tree,
    identity: Identity,
    checkpoints: Checkpoints,
    audit: AuditLog,
    root: PathBuf,
}

/// How a data dir was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opened {
    /// Created now.
    Fresh,
    /// Already in this build's format.
    Current,
    /// Migrated from format 1 now (its state is checkpoint generation 1).
    Migrated,
}

impl SledStore {
    /// Open (or create) the data dir `root` with sled's page cache bounded
    /// to 64 MiB. A new dir gets a fresh identity named `requested` (or
    /// `default_name`); an existing one keeps its own and refuses another name.
    pub fn open(root: &Path, requested: Option<&str>, default_name: &str) -> Result<Self, StoreError> {
        Self::open_with(root, requested, default_name, 64 << 20, Arc::new(RealFs)).map(|(s, _)| s)
    }

    /// [`SledStore::open`] with sled's cache bounded to `cache_bytes` and
    /// checkpoints written through `fs`; says whether it migrated.
    pub fn open_with(
        root: &Path,
        requested: Option<&str>,
        default_name: &str,
        cache_bytes: u64,
        fs: Arc<dyn Fs>,
    ) -> Result<(Self, Opened), StoreError> {
        let db = sled::Config::new()
            .path(root.join("db"))
            .cache_capacity(cache_bytes)
            .open()?;
        let meta = db.open_tree("meta")?;
        let checkpoints = Checkpoints::open(fs, &root.join("checkpoints"))?;
        let format = meta
            .get(FORMAT_KEY)?
            .map(|v| meta::decode_format(&v).map_err(|e| StoreError::format("data dir format", e)))
            .transpose()?;
        let (identity, opened) = match (format, meta.get(IDENTITY_KEY)?) {
            (Some(f), _) if f > DATA_DIR_FORMAT => {
                return Err(StoreError::Newer(codec::FormatError::Newer {
                    what: "data dir",
                    found: u8::try_from(f).unwrap_or(u8::MAX),
                    known: DATA_DIR_FORMAT as u8,
                }));
            }
            (Some(_), Some(bytes)) => (
                meta::decode_value::<Identity>("node identity", &bytes)
                    .map_err(|e| StoreError::format("node identity", e))?,
                Opened::Current,
            ),
            (Some(_), None) => {
                return Err(StoreError::Corrupt {
                    what: "node identity",
                    detail: "missing from a data dir that records its format".into(),
                });
            }
            (None, Some(bytes)) => (legacy::identity(&bytes)?, Opened::Migrated),
            (None, None) => (Identity::fresh(requested.unwrap_or(default_name)), Opened::Fresh),
        };
        if let Some(requested) = requested.filter(|r| *r != identity.node_name) {
            return Err(StoreError::NameMismatch {
                stored: identity.node_name,
                requested: requested.to_owned(),
            });
        }
        let floor: Vec<(OriginId, u64)> = match meta.get(Self::node_key(meta_keys::LOG_FLOOR))? {
            Some(bytes) => {
                meta::decode_value("log floor", &bytes).map_err(|e| StoreError::format("log floor", e))?
            }
            None => Vec::new(),
        };
        let store = Self {
            oplog: OpLogFiles::open(&root.join("oplog"), &floor)?,
            meta,
            db,
            identity,
            checkpoints,
            audit: AuditLog::open(&root.join("audit"))?,
            root: root.to_owned(),
        };
        match opened {
            Opened::Fresh => store.record_format()?,
            Opened::Migrated => store.migrate()?,
            Opened::Current => {
                // A migration that crashed after recording format 2.
                legacy::drop_trees(&store.db)?;
                let _ = std::fs::remove_file(root.join(legacy::CHECKPOINT_FILE));
            }
        }
        Ok((store, opened))
    }

    /// Record this build's format and the identity, durably.
    fn record_format(&self) -> Result<(), StoreError> {
        // One atomic batch: a format-2 identity without the format would be
        // read back as a format-1 one.
        let mut batch = sled::Batch::default();
        batch.insert(IDENTITY_KEY, meta::encode(&self.identity));
        batch.insert(FORMAT_KEY, &meta::encode_format(DATA_DIR_FORMAT));
        self.meta.apply_batch(batch)?;
        self.db.flush()?;
        Ok(())
    }

    /// Format 1 → 2 (see [`legacy`]).
    fn migrate(&self) -> Result<(), StoreError> {
        let started = std::time::Instant::now();
        let state = legacy::load(&self.db)?;
        // The old log moves into the segment files (a crash here copies it
        // again; the scan at open drops the duplicates).
        let mut chunk = Vec::with_capacity(MIGRATE_CHUNK);
        for op in legacy::ops(&self.db)? {
            chunk.push(op?);
            if chunk.len() == MIGRATE_CHUNK {
                self.oplog.append(&chunk)?;
                chunk.clear();
            }
        }
        self.oplog.append(&chunk)?;
        self.oplog.sync()?;
        let generation = self.checkpoints.generations()?.first().map_or(1, |g| g + 1);
        self.checkpoints.save(&state, generation, 0, 0)?;
        self.record_format()?;
        legacy::drop_trees(&self.db)?;
        self.db.flush()?;
        let _ = std::fs::remove_file(self.root.join(legacy::CHECKPOINT_FILE));
        tracing::info!(
            deny_entries = state.deny().len(),
            cutoffs = state.cutoffs().len(),
            ms = started.elapsed().as_millis() as u64,
            "data dir migrated from format 1 to 2"
        );
        Ok(())
    }

    fn node_key(key: &str) -> Vec<u8> {
        format!("{NODE_PREFIX}{key}").into_bytes()
    }
}

impl Store for SledStore {
    fn identity(&self) -> &Identity {
        &self.identity
    }

    fn append(&self, ops: &[Op]) -> Result<(), StoreError> {
        if ops.is_empty() {
            return Ok(());
        }
        self.oplog.append(ops)
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.oplog.sync()?;
        self.db.flush()?;
        Ok(())
    }

    fn ops_after(&self, origin: &OriginId, after_seq: u64, limit: usize) -> Result<Vec<Op>, StoreError> {
        self.oplog.ops_after(origin, after_seq, limit)
    }

    fn log_origins(&self) -> Result<Vec<OriginId>, StoreError> {
        Ok(self.oplog.origins())
    }

    fn truncate_log(&self, upto: &[(OriginId, u64)]) -> Result<u64, StoreError> {
        // The floor first, durably: should a crash come mid-way, recovery
        // already knows the log below it may be gone.
        let floor = raised_floor(self.log_floor()?, upto);
        self.meta_put(meta_keys::LOG_FLOOR, &meta::encode(&floor))?;
        self.db.flush()?;
        self.oplog.truncate(&floor)
    }

    fn meta_get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.meta.get(Self::node_key(key))?.map(|v| v.to_vec()))
    }

    fn meta_put(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.meta.insert(Self::node_key(key), value)?;
        Ok(())
    }

    fn checkpoints(&self) -> &Checkpoints {
        &self.checkpoints
    }

    fn audit(&self) -> &AuditLog {
        &self.audit
    }

    fn database_bytes(&self) -> u64 {
        self.db.size_on_disk().unwrap_or(0) + self.oplog.disk_bytes()
    }
}

#[cfg(test)]
mod tests;
