//! Ops: what a local write produces, the op log stores and gossip carries.

use serde::{Deserialize, Serialize};

use crate::cutoff::{Cutoff, PrincipalKind};
use crate::deny::DenyEntry;
use crate::origin::OriginId;

/// One write `(origin, seq, payload)`. `seq` is dense per origin, starting at 1.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Op {
    /// The node (incarnation) that accepted the write.
    pub origin: OriginId,
    /// Position in that origin's op sequence.
    pub seq: u64,
    /// What was revoked.
    pub payload: Payload,
}

/// What an op revokes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Payload {
    /// Add a token id to the deny set.
    Token {
        /// The revoked id.
        token_id: String,
        /// Natural expiry, unix ms; 0 = never.
        expires_at_ms: u64,
        /// When the origin accepted it.
        revoked_at_ms: u64,
        /// Operator's reason.
        reason: String,
        /// Who revoked it.
        actor: String,
    },
    /// Raise a principal's cutoff.
    Cutoff {
        /// Which kind of principal.
        kind: PrincipalKind,
        /// The principal's id.
        principal: String,
        /// The bounds to join in.
        cutoff: Cutoff,
        /// When the origin accepted it.
        revoked_at_ms: u64,
        /// Operator's reason.
        reason: String,
        /// Who revoked it.
        actor: String,
    },
}

impl Op {
    /// The deny entry a token op contributes (None for a cutoff op).
    pub fn deny_entry(&self) -> Option<(&str, DenyEntry)> {
        match &self.payload {
            Payload::Token {
                token_id,
                expires_at_ms,
                revoked_at_ms,
                ..
            } => Some((
                token_id,
                DenyEntry {
                    expires_at_ms: *expires_at_ms,
                    revoked_at_ms: *revoked_at_ms,
                    origin: self.origin.clone(),
                },
            )),
            Payload::Cutoff { .. } => None,
        }
    }
}
