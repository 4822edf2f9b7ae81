//! [`MemStore`]: an in-memory adapter for tests and the simulator.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

use parking_lot::Mutex;
use rescind_core::{Cutoff, DenyEntry, Op, OriginId, PrincipalKind, State};

use crate::identity::Identity;
use crate::{LoadStats, Store, StoreError, WriteBatch};

#[derive(Debug, Default)]
struct Disk {
    oplog: BTreeMap<(OriginId, u64), Op>,
    deny: BTreeMap<String, DenyEntry>,
    cutoffs: BTreeMap<(PrincipalKind, String), Cutoff>,
    clock: BTreeMap<OriginId, u64>,
}

/// A store whose "disk" is shared by its clones: drop every node object and
/// open a clone to simulate a restart that kept what was committed.
///
/// Everything committed counts as durable; `flush` does nothing.
#[derive(Clone, Debug)]
pub struct MemStore {
    disk: Arc<Mutex<Disk>>,
    identity: Identity,
}

impl MemStore {
    /// An empty store with a fresh identity.
    pub fn new(node_name: &str) -> Self {
        Self::with_identity(Identity::fresh(node_name))
    }

    /// An empty store with the given identity (deterministic simulations).
    pub fn with_identity(identity: Identity) -> Self {
        Self {
            disk: Arc::default(),
            identity,
        }
    }
}

impl Store for MemStore {
    fn identity(&self) -> &Identity {
        &self.identity
    }

    fn load_into(&self, state: &mut State) -> Result<LoadStats, StoreError> {
        let disk = self.disk.lock();
        for (id, entry) in &disk.deny {
            state.merge_deny(id, entry, 0);
        }
        for ((kind, principal), cutoff) in &disk.cutoffs {
            state.merge_cutoff(*kind, principal, *cutoff);
        }
        for (origin, seq) in &disk.clock {
            state.raise_clock(origin, *seq);
        }
        Ok(LoadStats {
            deny_entries: disk.deny.len() as u64,
            cutoffs: disk.cutoffs.len() as u64,
            origins: disk.clock.len() as u64,
            from_checkpoint: false,
            replayed_ops: 0,
        })
    }

    fn commit(&self, batch: &WriteBatch) -> Result<(), StoreError> {
        let mut disk = self.disk.lock();
        for op in &batch.ops {
            disk.oplog.insert((op.origin.clone(), op.seq), op.clone());
        }
        for (id, entry) in &batch.deny_put {
            disk.deny.insert(id.clone(), entry.clone());
        }
        for id in &batch.deny_delete {
            disk.deny.remove(id);
        }
        for (kind, principal, cutoff) in &batch.cutoff_put {
            disk.cutoffs.insert((*kind, principal.clone()), *cutoff);
        }
        for (origin, seq) in &batch.clock {
            disk.clock.insert(origin.clone(), *seq);
        }
        Ok(())
    }

    fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }

    fn blocks(&self) -> bool {
        false
    }

    fn clock(&self) -> Result<Vec<(OriginId, u64)>, StoreError> {
        Ok(self
            .disk
            .lock()
            .clock
            .iter()
            .map(|(o, s)| (o.clone(), *s))
            .collect())
    }

    fn deny_page(&self, after: Option<&str>, limit: usize) -> Result<Vec<(String, DenyEntry)>, StoreError> {
        let disk = self.disk.lock();
        let lower = after.map_or(Bound::Unbounded, |a| Bound::Excluded(a.to_owned()));
        Ok(disk
            .deny
            .range((lower, Bound::Unbounded))
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn cutoff_page(
        &self,
        after: Option<(PrincipalKind, &str)>,
        limit: usize,
    ) -> Result<Vec<(PrincipalKind, String, Cutoff)>, StoreError> {
        let disk = self.disk.lock();
        let lower = after.map_or(Bound::Unbounded, |(k, p)| Bound::Excluded((k, p.to_owned())));
        Ok(disk
            .cutoffs
            .range((lower, Bound::Unbounded))
            .take(limit)
            .map(|((k, p), c)| (*k, p.clone(), *c))
            .collect())
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite;

    #[test]
    fn shared_suite() {
        suite::round_trip(&MemStore::new("node-a"));
        suite::op_log_ranges(&MemStore::new("node-a"));
        suite::deletes_and_raises(&MemStore::new("node-a"));
        suite::snapshot_pages(&MemStore::new("node-a"));
    }

    #[test]
    fn clones_share_the_disk() {
        let a = MemStore::new("node-a");
        suite::write_sample(&a);
        suite::assert_sample(&a.clone());
    }
}
