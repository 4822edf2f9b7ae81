//! Consistency tokens: read-your-revocations on any node.

use serde::{Deserialize, Serialize};

use crate::clock::VersionVector;
use crate::origin::OriginId;

/// The ops a reader must see applied before its answer counts: one
/// `(origin, seq)` for a fresh revocation, or the accepting node's whole
/// version vector when the revocation was already in its state.
///
/// Opaque to clients: encoded with postcard behind a version byte.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsistencyToken {
    /// Ops that must be applied.
    pub dots: Vec<(OriginId, u64)>,
}

use crate::codec::{self, FormatError, TOKEN_V1};
/// Most dots a token may carry when decoded (a bound on hostile input).
pub const MAX_DOTS: usize = 4096;

/// A byte string that is not a consistency token.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not a consistency token issued by a Rescind node ({0})")]
pub struct BadToken(&'static str);

impl ConsistencyToken {
    /// A token for one op.
    pub fn for_op(origin: OriginId, seq: u64) -> Self {
        Self {
            dots: vec![(origin, seq)],
        }
    }

    /// A token covering everything `clock` has applied.
    pub fn for_clock(clock: &VersionVector) -> Self {
        Self {
            dots: clock.iter().map(|(o, s)| (o.clone(), s)).collect(),
        }
    }

    /// Opaque bytes for the wire.
    pub fn encode(&self) -> Vec<u8> {
        codec::frame(TOKEN_V1, self)
    }

    /// Parse bytes from the wire.
    pub fn decode(bytes: &[u8]) -> Result<Self, BadToken> {
        if bytes.is_empty() {
            return Err(BadToken("empty"));
        }
        let token: Self = codec::decode("consistency token", TOKEN_V1, bytes).map_err(|e| match e {
            FormatError::Newer { .. } => BadToken("made by a newer Rescind"),
            FormatError::Malformed { .. } if bytes[0] != TOKEN_V1 => BadToken("unknown version"),
            FormatError::Malformed { .. } => BadToken("malformed"),
        })?;
        if token.dots.len() > MAX_DOTS {
            return Err(BadToken("too many entries"));
        }
        Ok(token)
    }

    /// Has `clock` applied everything this token names?
    pub fn is_covered_by(&self, clock: &VersionVector) -> bool {
        clock.covers(self.dots.iter().map(|(o, s)| (o, *s)))
    }
}
