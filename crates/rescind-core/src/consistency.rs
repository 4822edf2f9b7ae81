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

const VERSION: u8 = 1;
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
        let mut out = vec![VERSION];
        // Encoding plain owned data into a Vec cannot fail.
        out.extend(postcard::to_stdvec(self).unwrap_or_default());
        out
    }

    /// Parse bytes from the wire.
    pub fn decode(bytes: &[u8]) -> Result<Self, BadToken> {
        let (&version, body) = bytes.split_first().ok_or(BadToken("empty"))?;
        if version != VERSION {
            return Err(BadToken("unknown version"));
        }
        let token: Self = postcard::from_bytes(body).map_err(|_| BadToken("malformed"))?;
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
