//! What the protocol reads from a node: its op log and its snapshot.
//!
//! The core never names a storage engine. A node adapts its store to these
//! traits (rescind-node's `StoreSource`); the tests here use an in-memory map.

use rescind_core::{Cutoff, DenyEntry, Op, OriginId, PrincipalKind, VersionVector};

/// A read failed (the message is the underlying error's).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SourceError(pub String);

/// Reads a node's op log: what it can serve to a peer or a Watch subscriber.
pub trait OpLog {
    /// Up to `limit` ops of `origin` with seq greater than `after_seq`, in
    /// seq order. A log that no longer holds (or never held) an op returns
    /// what it has: the caller notices the gap.
    fn ops_after(&self, origin: &OriginId, after_seq: u64, limit: usize) -> Result<Vec<Op>, SourceError>;

    /// The version vector a snapshot of this node would cover, when it is
    /// older than the durable state (a node snapshots its newest checkpoint,
    /// and serves the ops after it from the log). `None`: a snapshot covers
    /// everything durable.
    fn snapshot_clock(&self) -> Result<Option<VersionVector>, SourceError> {
        Ok(None)
    }
}

/// Entries of one snapshot page, as a [`SnapshotSource`] serves them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SourceEntries {
    /// Deny entries (all of them come before any cutoff).
    pub deny: Vec<(String, DenyEntry)>,
    /// Cutoffs.
    pub cutoffs: Vec<(PrincipalKind, String, Cutoff)>,
    /// Where the next page starts; None after the last entry.
    pub next: Option<Vec<u8>>,
}

/// What a snapshot is read from: a fixed view of the state (a node serves
/// its newest checkpoint), walked from an opaque position.
pub trait SnapshotSource {
    /// Start a snapshot: the version vector it covers (every op it covers is
    /// reflected in the entries served, and durable) and the position of its
    /// first entry.
    fn start(&self) -> Result<(VersionVector, Vec<u8>), SourceError>;

    /// Up to `limit` entries from position `at`: deny entries, then
    /// cutoffs. `Ok(None)` when `at` is not a position of this source.
    fn entries(&self, at: &[u8], limit: usize) -> Result<Option<SourceEntries>, SourceError>;
}
