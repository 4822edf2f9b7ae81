//! # rescind-store
//!
//! Durable state of a Rescind node behind a narrow [`Store`] trait (docs/design.md
//! §3, §9). The base of the state is a checkpoint file ([`Checkpoints`]: the
//! deny set, cutoffs, version vector and expiry watermark, versioned and
//! checksummed); the op-log tail since the checkpoints is in segment files
//! ([`OpLogFiles`]); sled keeps meta (identity, data dir format, what the
//! node asks it to remember). No database key per revocation: memory and
//! disk follow what is live, not everything ever revoked.
//!
//! A write is durable only after [`Store::flush`]. How a start turns the
//! checkpoint plus the tail into a state (and what it does when it cannot) is
//! the node's recovery policy, not the store's: the store only reports.
//!
//! Two adapters share one test suite: [`SledStore`] for production and
//! [`MemStore`] for tests and simulation.
//!
//! ## Layout
//! - [`audit`]: [`AuditLog`], who revoked what and when, kept for the audit retention.
//! - [`identity`]: [`Identity`], node name + incarnation, created once per data dir.
//! - [`checkpoints`]: [`Checkpoints`], generations of checkpoint files, crash-safe.
//! - [`fs`]: [`Fs`], the file operations checkpoints use (real, in memory, fault-injecting).
//! - [`oplog`]: [`OpLogFiles`], the op-log tail as segment files.
//! - [`records`]: the length + checksum framing of the store's own files.
//! - [`keys`]: byte layout of format-1 keys (read by the migration).
//! - [`sled_store`]: the production adapter, [`SledStore`].
//! - [`legacy`]: reading (and migrating) a data dir of format 1.
//! - [`mem_store`]: the in-memory adapter, [`MemStore`].

pub mod audit;
pub mod checkpoints;
pub mod fs;
pub mod identity;
pub mod keys;
pub mod legacy;
pub mod mem_store;
pub mod oplog;
pub mod records;
pub mod sled_store;

#[cfg(test)]
mod suite;

pub use audit::{AuditEntry, AuditGap, AuditLog, AuditPosition, AuditRecord, AuditTarget};
pub use checkpoints::{CheckpointPage, Checkpoints, Saved, SnapshotPosition};
pub use fs::{Fault, FaultyFs, Fs, MemFs, RealFs};
pub use identity::Identity;
pub use mem_store::MemStore;
pub use oplog::OpLogFiles;
pub use sled_store::SledStore;

use rescind_core::codec::FormatError;
use rescind_core::{Op, OriginId};

/// Errors of the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// sled reported an I/O or internal error.
    #[error("storage error: {0}")]
    Sled(#[from] sled::Error),
    /// A stored value could not be decoded: the data dir is damaged.
    #[error("corrupt {what} in the data dir: {detail}")]
    Corrupt {
        /// Which kind of record.
        what: &'static str,
        /// What failed.
        detail: String,
    },
    /// A value, or the data dir as a whole, is of a newer format.
    #[error("the data dir was written by a newer Rescind: {0}")]
    Newer(FormatError),
    /// A checkpoint could not be written or read.
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    /// The op-log files could not be written or read.
    #[error("op log: {0}")]
    Log(String),
    /// The data dir belongs to a node with another name.
    #[error(
        "the data dir belongs to node `{stored}`, not `{requested}`: start with --node-name {stored}, or use a fresh data dir"
    )]
    NameMismatch {
        /// Name recorded in the data dir.
        stored: String,
        /// Name asked for.
        requested: String,
    },
}

impl StoreError {
    pub(crate) fn format(what: &'static str, e: FormatError) -> Self {
        match e {
            FormatError::Newer { .. } => StoreError::Newer(e),
            FormatError::Malformed { detail, .. } => StoreError::Corrupt { what, detail },
        }
    }
}

/// Names of meta records the node keeps in the store.
pub mod meta_keys {
    /// Per origin, the highest seq the op log no longer holds.
    pub const LOG_FLOOR: &str = "log_floor";
    /// Peers' acknowledged version vectors.
    pub const PEER_VECTORS: &str = "peer_vectors";
    /// Members retired by an operator.
    pub const RETIRED: &str = "retired";
    /// Per origin, the highest seq whose audit record was written.
    pub const AUDITED: &str = "audited";
}

/// The narrow storage interface a node needs.
///
/// Implementations must make [`Store::append`] atomic (all of a batch or none
/// of it after a crash) and [`Store::flush`] durable (everything appended or
/// put before it survives a crash once it returns).
pub trait Store: Send + Sync + 'static {
    /// The identity recorded in this store.
    fn identity(&self) -> &Identity;

    /// Whether calls may block on I/O (sled: yes). A node runs a blocking
    /// store's writer on its own thread and its reads on the blocking pool; a
    /// non-blocking store (in memory) is called inline, which also keeps
    /// simulations deterministic.
    fn blocks(&self) -> bool {
        true
    }

    /// Append ops to the log in one atomic write (not yet durable).
    fn append(&self, ops: &[Op]) -> Result<(), StoreError>;

    /// Make everything appended or put so far durable.
    fn flush(&self) -> Result<(), StoreError>;

    /// Up to `limit` ops of `origin` with seq greater than `after_seq`, in seq order.
    fn ops_after(&self, origin: &OriginId, after_seq: u64, limit: usize) -> Result<Vec<Op>, StoreError>;

    /// The origins that have ops in the log.
    fn log_origins(&self) -> Result<Vec<OriginId>, StoreError>;

    /// Drop every op with seq at or below `upto` of its origin, and raise the
    /// recorded floor ([`meta_keys::LOG_FLOOR`]) to match, durably, before any
    /// op goes. Returns how many ops went.
    fn truncate_log(&self, upto: &[(OriginId, u64)]) -> Result<u64, StoreError>;

    /// Per origin, the highest seq truncated away (absent: nothing truncated).
    fn log_floor(&self) -> Result<Vec<(OriginId, u64)>, StoreError> {
        match self.meta_get(meta_keys::LOG_FLOOR)? {
            None => Ok(Vec::new()),
            Some(bytes) => rescind_core::codec::meta::decode_value("log floor", &bytes)
                .map_err(|e| StoreError::format("log floor", e)),
        }
    }

    /// A meta record the node keeps (see [`meta_keys`]).
    fn meta_get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// Store a meta record (durable after [`Store::flush`]).
    fn meta_put(&self, key: &str, value: &[u8]) -> Result<(), StoreError>;

    /// The checkpoint files.
    fn checkpoints(&self) -> &Checkpoints;

    /// The audit trail.
    fn audit(&self) -> &AuditLog;

    /// Bytes the store's database takes on disk (checkpoints not included).
    fn database_bytes(&self) -> u64 {
        0
    }
}

impl<S: Store + ?Sized> Store for std::sync::Arc<S> {
    fn identity(&self) -> &Identity {
        (**self).identity()
    }
    fn blocks(&self) -> bool {
        (**self).blocks()
    }
    fn append(&self, ops: &[Op]) -> Result<(), StoreError> {
        (**self).append(ops)
    }
    fn flush(&self) -> Result<(), StoreError> {
        (**self).flush()
    }
    fn ops_after(&self, origin: &OriginId, after: u64, limit: usize) -> Result<Vec<Op>, StoreError> {
        (**self).ops_after(origin, after, limit)
    }
    fn log_origins(&self) -> Result<Vec<OriginId>, StoreError> {
        (**self).log_origins()
    }
    fn truncate_log(&self, upto: &[(OriginId, u64)]) -> Result<u64, StoreError> {
        (**self).truncate_log(upto)
    }
    fn log_floor(&self) -> Result<Vec<(OriginId, u64)>, StoreError> {
        (**self).log_floor()
    }
    fn meta_get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        (**self).meta_get(key)
    }
    fn meta_put(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        (**self).meta_put(key, value)
    }
    fn checkpoints(&self) -> &Checkpoints {
        (**self).checkpoints()
    }
    fn audit(&self) -> &AuditLog {
        (**self).audit()
    }
    fn database_bytes(&self) -> u64 {
        (**self).database_bytes()
    }
}

/// The floor after raising `floor` to `upto` (per origin, by max).
pub(crate) fn raised_floor(floor: Vec<(OriginId, u64)>, upto: &[(OriginId, u64)]) -> Vec<(OriginId, u64)> {
    let mut map: std::collections::BTreeMap<OriginId, u64> = floor.into_iter().collect();
    for (origin, seq) in upto {
        let at = map.entry(origin.clone()).or_default();
        *at = (*at).max(*seq);
    }
    map.into_iter().collect()
}
