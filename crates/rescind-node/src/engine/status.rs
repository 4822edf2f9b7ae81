//! [`StatusSnapshot`]: what a node reports about itself.

use rescind_core::{Digest, OriginId};
use rescind_gossip::PeerView;
use rescind_store::Identity;

use super::Engine;
use crate::checkpointer::CheckpointStatus;

/// A point-in-time view of the node for `Status`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusSnapshot {
    /// `name#incarnation`.
    pub node_id: String,
    /// The node's identity.
    pub identity: Identity,
    /// Region label.
    pub region: String,
    /// Revoked ids held.
    pub deny_entries: u64,
    /// Principals with a cutoff.
    pub cutoffs: u64,
    /// Digest of the observable state.
    pub digest: Digest,
    /// Contiguous seq per origin.
    pub version_vector: Vec<(OriginId, u64)>,
    /// See [`Engine::staleness_ms`].
    pub staleness_ms: u64,
    /// Entries dropped by expiry GC since start.
    pub expired_pruned: u64,
    /// Time since start.
    pub uptime_ms: u64,
    /// Every known peer with its lag.
    pub peers: Vec<PeerView>,
    /// Deny entries before and after the last expiry GC pass.
    pub gc_last: (u64, u64),
    /// Bytes the in-memory deny set holds.
    pub deny_bytes: u64,
    /// Checks answer `UNAVAILABLE` while the state is rebuilt from a peer.
    pub recovering: bool,
    /// The newest durable checkpoint.
    pub checkpoint: CheckpointStatus,
    /// Bytes of checkpoint files on disk.
    pub disk_checkpoint_bytes: u64,
    /// Bytes of the store's database on disk (op-log tail, meta).
    pub disk_database_bytes: u64,
}

impl Engine {
    /// Identity, counts, digest and version vector.
    pub fn status(&self) -> StatusSnapshot {
        let now = self.mono_ms();
        let peers = self.with_cluster(|c| c.view(now));
        let gc_last = *self.shared.gc_last.lock();
        let state = self.shared.state.read();
        StatusSnapshot {
            node_id: self.shared.node_id.clone(),
            identity: self.shared.identity.clone(),
            region: self.shared.region.clone(),
            deny_entries: state.deny().len() as u64,
            cutoffs: state.cutoffs().len() as u64,
            digest: state.digest(),
            version_vector: state.clock().iter().map(|(o, s)| (o.clone(), s)).collect(),
            staleness_ms: self.staleness_ms(),
            expired_pruned: state.pruned(),
            uptime_ms: self.shared.started.elapsed().as_millis() as u64,
            peers,
            gc_last,
            deny_bytes: state.deny().heap_bytes() as u64,
            recovering: self.is_recovering(),
            checkpoint: self.checkpoint_status(),
            disk_checkpoint_bytes: self.shared.store.checkpoints().disk_bytes(),
            disk_database_bytes: self.shared.store.database_bytes(),
        }
    }
}
