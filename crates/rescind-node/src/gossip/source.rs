//! The node's store as the gossip core's [`OpLog`] and [`SnapshotSource`].

use rescind_core::{Cutoff, DenyEntry, Op, OriginId, PrincipalKind, VersionVector};
use rescind_gossip::{OpLog, SnapshotSource, SourceError};
use rescind_store::{Store, StoreError};

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
}

/// Every page flushes before it reads, so every entry served is durable here:
/// an entry shipped and then lost in a crash could never be re-derived.
impl SnapshotSource for StoreSource<'_> {
    fn covered(&self) -> Result<VersionVector, SourceError> {
        self.0.flush().map_err(source_error)?;
        let mut clock = VersionVector::new();
        for (origin, seq) in self.0.clock().map_err(source_error)? {
            clock.raise_to(&origin, seq);
        }
        Ok(clock)
    }

    fn deny_page(&self, after: Option<&str>, limit: usize) -> Result<Vec<(String, DenyEntry)>, SourceError> {
        self.0.flush().map_err(source_error)?;
        self.0.deny_page(after, limit).map_err(source_error)
    }

    fn cutoff_page(
        &self,
        after: Option<(PrincipalKind, &str)>,
        limit: usize,
    ) -> Result<Vec<(PrincipalKind, String, Cutoff)>, SourceError> {
        self.0.flush().map_err(source_error)?;
        self.0.cutoff_page(after, limit).map_err(source_error)
    }
}
