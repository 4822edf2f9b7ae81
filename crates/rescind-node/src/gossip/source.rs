//! The node's store as the gossip core's [`OpLog`] and [`SnapshotSource`].

use rescind_core::codec::POSITION_V1;
use rescind_core::{Op, OriginId, VersionVector};
use rescind_gossip::{OpLog, SnapshotSource, SourceEntries, SourceError};
use rescind_store::{SnapshotPosition, Store, StoreError};

/// A store read by the gossip core (on the store thread: see
/// [`crate::engine::Engine::store_read`]).
pub struct StoreSource<'a>(pub &'a dyn Store);

fn source_error(e: StoreError) -> SourceError {
    SourceError(e.to_string())
}

impl OpLog for StoreSource<'_> {
    fn ops_after(&self, origin: &OriginId, after_seq: u64, limit: usize) -> Result<Vec<Op>, SourceError> {
        self.0.ops_after(origin, after_seq, limit).map_err(source_error)
    }

    /// The newest checkpoint's vector (empty without one: nothing was ever
    /// compacted, and a snapshot would be empty).
    fn snapshot_clock(&self) -> Result<Option<VersionVector>, SourceError> {
        let clock = self.0.checkpoints().newest_clock().map_err(source_error)?;
        let mut out = VersionVector::new();
        for (origin, seq) in clock.unwrap_or_default() {
            out.raise_to(&origin, seq);
        }
        Ok(Some(out))
    }
}

/// A snapshot is the newest checkpoint: durable by construction, and it
/// covers exactly its version vector. The ops after it stay in the log (it
/// is never compacted above a kept checkpoint), so a peer that adopts it
/// catches up with ordinary anti-entropy. With no checkpoint yet nothing
/// was ever compacted: the snapshot is empty and the log serves everything.
impl SnapshotSource for StoreSource<'_> {
    fn start(&self) -> Result<(VersionVector, Vec<u8>), SourceError> {
        let Some((header, first)) = self.0.checkpoints().snapshot_start().map_err(source_error)? else {
            return Ok((VersionVector::new(), Vec::new()));
        };
        let mut clock = VersionVector::new();
        for (origin, seq) in &header.clock {
            clock.raise_to(origin, *seq);
        }
        Ok((clock, rescind_core::codec::frame(POSITION_V1, &first)))
    }

    fn entries(&self, at: &[u8], limit: usize) -> Result<Option<SourceEntries>, SourceError> {
        if at.is_empty() {
            // No checkpoint: an empty snapshot.
            return Ok(Some(SourceEntries::default()));
        }
        let Ok(position) =
            rescind_core::codec::decode::<SnapshotPosition>("snapshot position", POSITION_V1, at)
        else {
            return Ok(None);
        };
        let Some(page) = self
            .0
            .checkpoints()
            .snapshot_page(position, limit)
            .map_err(source_error)?
        else {
            return Ok(None);
        };
        Ok(Some(SourceEntries {
            deny: page.deny,
            cutoffs: page.cutoffs,
            next: page.next.map(|p| rescind_core::codec::frame(POSITION_V1, &p)),
        }))
    }
}
