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
}

/// What a snapshot is read from.
pub trait SnapshotSource {
    /// Make everything served durable first and return the version vector the
    /// snapshot covers (called for the first page only).
    fn covered(&self) -> Result<VersionVector, SourceError>;

    /// Up to `limit` deny entries with ids greater than `after`, in id byte
    /// order. Only entries this node can no longer lose may be served.
    fn deny_page(&self, after: Option<&str>, limit: usize) -> Result<Vec<(String, DenyEntry)>, SourceError>;

    /// Up to `limit` cutoffs after `after`, in (kind, principal) order. Only
    /// cutoffs this node can no longer lose may be served.
    fn cutoff_page(
        &self,
        after: Option<(PrincipalKind, &str)>,
        limit: usize,
    ) -> Result<Vec<(PrincipalKind, String, Cutoff)>, SourceError>;
}
