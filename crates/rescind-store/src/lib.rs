//! # rescind-store
//!
//! Durable state of a Rescind node behind a narrow [`Store`] trait (DESIGN.md
//! §3, §9): the op log, the materialised deny set and cutoffs, the version
//! vector, and the node's identity. Two adapters share one test suite:
//! [`SledStore`] for production and [`MemStore`] for tests and simulation.
//!
//! The node computes what an op changes in memory (`rescind_core::State`), then
//! hands the store a [`WriteBatch`] holding the op-log entries *and* only the
//! entries that changed, written in one transaction (Garage's
//! merge-then-write-if-changed). A write is durable only after [`Store::flush`].
//!
//! ## Layout
//! - [`identity`]: [`Identity`], node name + incarnation, created once per data dir.
//! - [`batch`]: [`WriteBatch`], what one commit writes.
//! - [`keys`]: byte layout of keys, shared by both adapters.
//! - [`sled_store`]: the production adapter, [`SledStore`].
//! - [`mem_store`]: the in-memory adapter, [`MemStore`].

pub mod batch;
pub mod identity;
pub mod keys;
pub mod mem_store;
pub mod sled_store;

#[cfg(test)]
mod suite;

pub use batch::WriteBatch;
pub use identity::Identity;
pub use mem_store::MemStore;
pub use sled_store::SledStore;

use rescind_core::{Cutoff, DenyEntry, Op, OriginId, PrincipalKind, State};

/// Errors of the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// sled reported an I/O or internal error.
    #[error("storage error: {0}")]
    Sled(#[from] sled::Error),
    /// A stored value could not be decoded: the data dir is damaged or was
    /// written by an incompatible version.
    #[error("corrupt {what} in the data dir: {detail}")]
    Corrupt {
        /// Which kind of record.
        what: &'static str,
        /// What failed.
        detail: String,
    },
    /// The deny-set checkpoint could not be written.
    #[error("cannot save the checkpoint: {0}")]
    Checkpoint(String),
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

/// What loading a store into memory found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoadStats {
    /// Deny entries read.
    pub deny_entries: u64,
    /// Cutoffs read.
    pub cutoffs: u64,
    /// Origins in the version vector.
    pub origins: u64,
    /// The deny entries came from a checkpoint plus the ops logged after it,
    /// not from walking the store.
    pub from_checkpoint: bool,
    /// Ops applied on top of the checkpoint.
    pub replayed_ops: u64,
}

/// The narrow storage interface a node needs.
///
/// Implementations must make [`Store::commit`] atomic (all of a batch or none
/// of it after a crash) and [`Store::flush`] durable (everything committed
/// before it survives a crash once it returns).
pub trait Store: Send + Sync + 'static {
    /// The identity recorded in this store.
    fn identity(&self) -> &Identity;

    /// Rebuild `state` (deny entries, cutoffs, version vector) from the store.
    fn load_into(&self, state: &mut State) -> Result<LoadStats, StoreError>;

    /// Write one batch atomically (not yet durable: see [`Store::flush`]).
    fn commit(&self, batch: &WriteBatch) -> Result<(), StoreError>;

    /// Make everything committed so far durable.
    fn flush(&self) -> Result<(), StoreError>;

    /// Whether calls may block on I/O (sled: yes). A node runs a blocking
    /// store's writer on its own thread and its reads on the blocking pool; a
    /// non-blocking store (in memory) is called inline, which also keeps
    /// simulations deterministic.
    fn blocks(&self) -> bool {
        true
    }

    /// Save the in-memory deny set so a start can read it in one pass and
    /// apply only the ops logged after it, instead of walking the store. The
    /// writer calls it between batches (when memory equals what is durable)
    /// and after its last commit. [`Store::load_into`] uses it only if
    /// replaying the op log on top reproduces the store's version vector.
    /// Default: nothing saved.
    fn save_checkpoint(&self, _state: &State) -> Result<(), StoreError> {
        Ok(())
    }

    /// Up to `limit` ops of `origin` with seq greater than `after_seq`, in seq order.
    fn ops_after(&self, origin: &OriginId, after_seq: u64, limit: usize) -> Result<Vec<Op>, StoreError>;

    /// The committed version vector (what a snapshot read after it covers).
    fn clock(&self) -> Result<Vec<(OriginId, u64)>, StoreError>;

    /// Up to `limit` deny entries with ids greater than `after`, in id byte order.
    fn deny_page(&self, after: Option<&str>, limit: usize) -> Result<Vec<(String, DenyEntry)>, StoreError>;

    /// Up to `limit` cutoffs after `after`, in (kind, principal) order.
    fn cutoff_page(
        &self,
        after: Option<(PrincipalKind, &str)>,
        limit: usize,
    ) -> Result<Vec<(PrincipalKind, String, Cutoff)>, StoreError>;
}

impl<S: Store + ?Sized> Store for std::sync::Arc<S> {
    fn identity(&self) -> &Identity {
        (**self).identity()
    }
    fn load_into(&self, state: &mut State) -> Result<LoadStats, StoreError> {
        (**self).load_into(state)
    }
    fn commit(&self, batch: &WriteBatch) -> Result<(), StoreError> {
        (**self).commit(batch)
    }
    fn flush(&self) -> Result<(), StoreError> {
        (**self).flush()
    }
    fn blocks(&self) -> bool {
        (**self).blocks()
    }
    fn save_checkpoint(&self, state: &State) -> Result<(), StoreError> {
        (**self).save_checkpoint(state)
    }
    fn ops_after(&self, origin: &OriginId, after: u64, limit: usize) -> Result<Vec<Op>, StoreError> {
        (**self).ops_after(origin, after, limit)
    }
    fn clock(&self) -> Result<Vec<(OriginId, u64)>, StoreError> {
        (**self).clock()
    }
    fn deny_page(&self, after: Option<&str>, limit: usize) -> Result<Vec<(String, DenyEntry)>, StoreError> {
        (**self).deny_page(after, limit)
    }
    fn cutoff_page(
        &self,
        after: Option<(PrincipalKind, &str)>,
        limit: usize,
    ) -> Result<Vec<(PrincipalKind, String, Cutoff)>, StoreError> {
        (**self).cutoff_page(after, limit)
    }
}

pub(crate) fn encode<T: serde::Serialize>(value: &T) -> Vec<u8> {
    // postcard only fails to encode into a Vec for types that cannot be
    // represented (none of ours): an empty value would then fail to decode.
    postcard::to_stdvec(value).unwrap_or_default()
}

pub(crate) fn decode<'a, T: serde::Deserialize<'a>>(
    what: &'static str,
    bytes: &'a [u8],
) -> Result<T, StoreError> {
    postcard::from_bytes(bytes).map_err(|e| StoreError::Corrupt {
        what,
        detail: e.to_string(),
    })
}
