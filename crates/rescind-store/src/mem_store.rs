//! [`MemStore`]: an in-memory adapter for tests and the simulator. Clones
//! share one "disk" (op log, meta, checkpoint files), so a test can drop a
//! node and start another on the same data.

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::Mutex;
use rescind_core::codec::meta;
use rescind_core::{Op, OriginId};

use crate::audit::AuditLog;
use crate::checkpoints::Checkpoints;
use crate::fs::{Fs, MemFs};
use crate::identity::Identity;
use crate::{Store, StoreError, meta_keys, raised_floor};

#[derive(Debug, Default)]
struct Disk {
    oplog: BTreeMap<(OriginId, u64), Op>,
    meta: BTreeMap<String, Vec<u8>>,
}

/// The in-memory [`Store`]; never blocks.
#[derive(Clone, Debug)]
pub struct MemStore {
    disk: Arc<Mutex<Disk>>,
    identity: Identity,
    files: MemFs,
    checkpoints: Arc<Checkpoints>,
    audit: Arc<AuditLog>,
}

impl MemStore {
    /// An empty store with a fresh identity.
    pub fn new(node_name: &str) -> Self {
        Self::with_identity(Identity::fresh(node_name))
    }

    /// An empty store with the given identity.
    pub fn with_identity(identity: Identity) -> Self {
        let files = MemFs::default();
        Self::with_files(identity, files)
    }

    fn with_files(identity: Identity, files: MemFs) -> Self {
        let fs: Arc<dyn Fs> = Arc::new(files.clone());
        let checkpoints = Checkpoints::unopened(fs, std::path::Path::new("/checkpoints"));
        Self {
            disk: Arc::default(),
            identity,
            files,
            checkpoints: Arc::new(checkpoints),
            audit: Arc::new(AuditLog::in_memory()),
        }
    }

    /// The checkpoint files (tests damage them).
    pub fn files(&self) -> &MemFs {
        &self.files
    }
}

impl Store for MemStore {
    fn identity(&self) -> &Identity {
        &self.identity
    }

    fn blocks(&self) -> bool {
        false
    }

    fn append(&self, ops: &[Op]) -> Result<(), StoreError> {
        let mut disk = self.disk.lock();
        for op in ops {
            disk.oplog.insert((op.origin.clone(), op.seq), op.clone());
        }
        Ok(())
    }

    fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }

    fn ops_after(&self, origin: &OriginId, after_seq: u64, limit: usize) -> Result<Vec<Op>, StoreError> {
        let Some(from) = after_seq.checked_add(1) else {
            return Ok(Vec::new());
        };
        let disk = self.disk.lock();
        Ok(disk
            .oplog
            .range((origin.clone(), from)..=(origin.clone(), u64::MAX))
            .take(limit)
            .map(|(_, op)| op.clone())
            .collect())
    }

    fn log_origins(&self) -> Result<Vec<OriginId>, StoreError> {
        let disk = self.disk.lock();
        let mut out: Vec<OriginId> = disk.oplog.keys().map(|(o, _)| o.clone()).collect();
        out.dedup();
        Ok(out)
    }

    fn truncate_log(&self, upto: &[(OriginId, u64)]) -> Result<u64, StoreError> {
        let floor = raised_floor(self.log_floor()?, upto);
        self.meta_put(meta_keys::LOG_FLOOR, &meta::encode(&floor))?;
        let mut disk = self.disk.lock();
        let before = disk.oplog.len();
        let bounds: BTreeMap<&OriginId, u64> = upto.iter().map(|(o, s)| (o, *s)).collect();
        disk.oplog
            .retain(|(o, seq), _| bounds.get(o).is_none_or(|b| seq > b));
        Ok((before - disk.oplog.len()) as u64)
    }

    fn meta_get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.disk.lock().meta.get(key).cloned())
    }

    fn meta_put(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.disk.lock().meta.insert(key.to_owned(), value.to_vec());
        Ok(())
    }

    fn checkpoints(&self) -> &Checkpoints {
        &self.checkpoints
    }

    fn audit(&self) -> &AuditLog {
        &self.audit
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite;

    #[test]
    fn shared_suite() {
        suite::all(|| Box::new(MemStore::new("node-a")));
    }

    #[test]
    fn clones_share_the_disk() {
        let a = MemStore::new("node-a");
        suite::write_sample(&a);
        suite::assert_sample(&a.clone());
    }
}
