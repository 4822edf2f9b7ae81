//! What a write asks the engine for, what it answers, and how it fails.

use rescind_core::{ConsistencyToken, Cutoff, PrincipalKind};
use rescind_store::StoreError;

/// What to revoke.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RevokeTarget {
    /// One token id until it expires (`expires_at_ms`, 0 = never).
    Token {
        /// Its stored key (namespaced by issuer, [`rescind_core::scope`]).
        token_id: String,
        /// Natural expiry, unix ms; 0 = never.
        expires_at_ms: u64,
    },
    /// A principal's cutoff; `issued_before_ms == 0` means "now" unless
    /// `version_only`.
    Cutoff {
        /// Kind of principal.
        kind: PrincipalKind,
        /// Its stored key (namespaced by issuer, [`rescind_core::scope`]).
        principal: String,
        /// The bounds.
        cutoff: Cutoff,
        /// Raise `min_version` only: the time bound stays as it is.
        version_only: bool,
    },
}

/// A validated revoke request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevokeCommand {
    /// What to revoke.
    pub target: RevokeTarget,
    /// Operator's reason (kept in the op log).
    pub reason: String,
    /// Who asked (kept in the op log).
    pub actor: String,
}

/// The acknowledgement of a durable revoke.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevokeOutcome {
    /// For read-your-revocations on any node.
    pub token: ConsistencyToken,
    /// The state already revoked this; nothing was written.
    pub already_revoked: bool,
    /// The op's seq (0 when already revoked).
    pub seq: u64,
}

/// Errors of the engine.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EngineError {
    /// The writer stopped (shutdown, or an earlier storage failure).
    #[error("the node cannot accept writes: {0}")]
    Unavailable(String),
    /// The store failed; the write is not acknowledged.
    #[error("storage failed, revocation not acknowledged: {0}")]
    Storage(String),
    /// The data dir cannot be rebuilt alone and no peer is configured.
    #[error(
        "cannot start: {0}. This node cannot rebuild its state alone: start it with --peer <addr> of a live node to recover from that node's snapshot, or restore the data dir from a backup"
    )]
    Unrecoverable(String),
    /// The node is recovering its state from a peer.
    #[error("this node is recovering its state from a peer and cannot answer yet; ask another node")]
    Recovering,
    /// A consistency token names ops this node has not applied in time.
    #[error(
        "this node has not caught up with the consistency token yet (waited {waited_ms} ms); retry, or ask another node"
    )]
    NotCaughtUp {
        /// How long it waited.
        waited_ms: u64,
    },
}

impl From<StoreError> for EngineError {
    fn from(e: StoreError) -> Self {
        EngineError::Storage(e.to_string())
    }
}
