//! The engine's side of recovery: while the state is incomplete (see
//! [`crate::recovery`]) every read and write path refuses, until a peer's
//! snapshot is adopted and the state covers what the log's floor says was
//! compacted away.

use std::sync::atomic::Ordering;

use rescind_core::VersionVector;

use super::{Engine, EngineError};

impl Engine {
    /// True while the state is incomplete (see [`crate::recovery`]).
    pub fn is_recovering(&self) -> bool {
        self.shared.recovering.load(Ordering::Acquire)
    }

    /// `Err(Recovering)` while the state is incomplete: every check path
    /// asks this before answering from memory.
    pub fn serving(&self) -> Result<(), EngineError> {
        if self.is_recovering() {
            return Err(EngineError::Recovering);
        }
        Ok(())
    }

    /// While recovering: a peer's snapshot was adopted (and checkpointed).
    pub fn recovery_snapshot_taken(&self) -> bool {
        self.shared.recovery_snapshot.load(Ordering::Acquire)
    }

    /// Record that a recovery snapshot was adopted.
    pub fn recovery_snapshot_adopted(&self) {
        self.shared.recovery_snapshot.store(true, Ordering::Release);
    }

    /// End recovery once memory holds every op of `peer` (the durable
    /// vector of the peer whose snapshot was adopted) and everything the
    /// log's floor says was compacted away: the state is whole.
    pub fn finish_recovery_if_covers(&self, peer: &VersionVector) {
        let held = self.memory_clock();
        let floor_covered = self.shared.recovery_floor.iter().all(|(o, s)| held.get(o) >= *s);
        if !floor_covered || !held.covers(peer.iter()) {
            return;
        }
        if self.shared.recovering.swap(false, Ordering::AcqRel) {
            tracing::info!("state recovered from a peer's snapshot; serving checks");
        }
    }
}
