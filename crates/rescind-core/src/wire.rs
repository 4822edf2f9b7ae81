//! Ops and snapshot entries as bytes inside protobuf messages, decoded with
//! validation: a malformed or out-of-limit item rejects the whole message
//! before anything touches the state.

use crate::limits::{self, FieldError};
use crate::{Cutoff, DenyEntry, Op, PrincipalKind};

/// Encode one op.
pub fn encode_op(op: &Op) -> Vec<u8> {
    postcard::to_stdvec(op).unwrap_or_default()
}

/// Decode and validate every op, or none.
pub fn decode_ops(raw: &[Vec<u8>]) -> Result<Vec<Op>, FieldError> {
    raw.iter()
        .enumerate()
        .map(|(i, bytes)| {
            let op: Op = postcard::from_bytes(bytes)
                .map_err(|e| FieldError::new(format!("ops[{i}]"), format!("not an op: {e}")))?;
            limits::op(&op).map_err(|e| FieldError::new(format!("ops[{i}].{}", e.field), e.problem))?;
            Ok(op)
        })
        .collect()
}

/// Encode one deny entry of a snapshot.
pub fn encode_deny(id: &str, entry: &DenyEntry) -> Vec<u8> {
    postcard::to_stdvec(&(id, entry)).unwrap_or_default()
}

/// Decode and validate snapshot deny entries, or none.
pub fn decode_deny(raw: &[Vec<u8>]) -> Result<Vec<(String, DenyEntry)>, FieldError> {
    raw.iter()
        .enumerate()
        .map(|(i, bytes)| {
            let field = || format!("deny[{i}]");
            let (id, entry): (String, DenyEntry) = postcard::from_bytes(bytes)
                .map_err(|e| FieldError::new(field(), format!("not an entry: {e}")))?;
            crate::scope::check_key(&field(), &id)?;
            limits::label(&field(), &entry.origin.node)?;
            Ok((id, entry))
        })
        .collect()
}

/// Encode one cutoff of a snapshot.
pub fn encode_cutoff(kind: PrincipalKind, principal: &str, cutoff: Cutoff) -> Vec<u8> {
    postcard::to_stdvec(&(kind, principal, cutoff)).unwrap_or_default()
}

/// Decode and validate snapshot cutoffs, or none.
pub fn decode_cutoffs(raw: &[Vec<u8>]) -> Result<Vec<(PrincipalKind, String, Cutoff)>, FieldError> {
    raw.iter()
        .enumerate()
        .map(|(i, bytes)| {
            let field = || format!("cutoffs[{i}]");
            let (kind, principal, cutoff): (PrincipalKind, String, Cutoff) = postcard::from_bytes(bytes)
                .map_err(|e| FieldError::new(field(), format!("not a cutoff: {e}")))?;
            crate::scope::check_key(&field(), &principal)?;
            Ok((kind, principal, cutoff))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::{OriginId, Payload};
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn ops_round_trip_and_bad_ones_are_named() {
        let op = Op {
            origin: OriginId::new("a", 1),
            seq: 3,
            payload: Payload::Token {
                token_id: "t".into(),
                expires_at_ms: 0,
                revoked_at_ms: 9,
                reason: String::new(),
                actor: String::new(),
            },
        };
        assert_eq!(decode_ops(&[encode_op(&op)]).unwrap(), vec![op.clone()]);
        let mut bad = op.clone();
        bad.seq = 0;
        let err = decode_ops(&[encode_op(&op), encode_op(&bad)]).unwrap_err();
        assert_eq!(err.field, "ops[1].op.seq");
        assert_eq!(decode_ops(&[vec![0xff, 0xff]]).unwrap_err().field, "ops[0]");
    }

    proptest! {
        #[test]
        fn garbage_never_panics(raw in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..80), 0..8)) {
            let _ = decode_ops(&raw);
            let _ = decode_deny(&raw);
            let _ = decode_cutoffs(&raw);
        }
    }
}
