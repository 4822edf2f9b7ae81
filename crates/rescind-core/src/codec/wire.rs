//! Ops and snapshot entries as bytes: in the op log and inside protobuf
//! messages, decoded with validation: a malformed or out-of-limit item
//! rejects the whole message before anything touches the state.

use super::{ENTRY_V1, FormatError, OP_V1, body, decode, frame};
use crate::limits::{self, FieldError};
use crate::{Cutoff, DenyEntry, Op, PrincipalKind};

/// Encode one op: [`OP_V1`] then postcard.
pub fn encode_op(op: &Op) -> Vec<u8> {
    frame(OP_V1, op)
}

/// Decode one op (format 1, or format 0 written before versions: bare
/// postcard, first byte a name length below 0x80). Not validated against
/// the limits: see [`decode_ops`] for bytes from the network.
pub fn decode_op(bytes: &[u8]) -> Result<Op, FormatError> {
    match bytes.first() {
        Some(&b) if b < 0x80 => body("op", bytes),
        _ => decode("op", OP_V1, bytes),
    }
}

/// Decode and validate every op, or none.
pub fn decode_ops(raw: &[Vec<u8>]) -> Result<Vec<Op>, FieldError> {
    raw.iter()
        .enumerate()
        .map(|(i, bytes)| {
            let op = decode_op(bytes)
                .map_err(|e| FieldError::new(format!("ops[{i}]"), format!("not an op: {e}")))?;
            limits::op(&op).map_err(|e| FieldError::new(format!("ops[{i}].{}", e.field), e.problem))?;
            Ok(op)
        })
        .collect()
}

/// Encode one snapshot deny entry: [`ENTRY_V1`] then postcard `(id, entry)`.
pub fn encode_deny(id: &str, entry: &DenyEntry) -> Vec<u8> {
    frame(ENTRY_V1, &(id, entry))
}

/// Decode and validate every deny entry, or none.
pub fn decode_deny(raw: &[Vec<u8>]) -> Result<Vec<(String, DenyEntry)>, FieldError> {
    raw.iter()
        .enumerate()
        .map(|(i, bytes)| {
            let field = || format!("deny[{i}]");
            let (id, entry): (String, DenyEntry) = decode("snapshot deny entry", ENTRY_V1, bytes)
                .map_err(|e| FieldError::new(field(), format!("not an entry: {e}")))?;
            crate::scope::check_key(&field(), &id)?;
            limits::label(&field(), &entry.origin.node)?;
            Ok((id, entry))
        })
        .collect()
}

/// Encode one snapshot cutoff: [`ENTRY_V1`] then postcard `(kind, principal, cutoff)`.
pub fn encode_cutoff(kind: PrincipalKind, principal: &str, cutoff: Cutoff) -> Vec<u8> {
    frame(ENTRY_V1, &(kind, principal, cutoff))
}

/// Decode and validate every cutoff, or none.
pub fn decode_cutoffs(raw: &[Vec<u8>]) -> Result<Vec<(PrincipalKind, String, Cutoff)>, FieldError> {
    raw.iter()
        .enumerate()
        .map(|(i, bytes)| {
            let field = || format!("cutoffs[{i}]");
            let (kind, principal, cutoff): (PrincipalKind, String, Cutoff) =
                decode("snapshot cutoff", ENTRY_V1, bytes)
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

    fn op() -> Op {
        Op {
            origin: OriginId::new("a", 1),
            seq: 3,
            payload: Payload::Token {
                token_id: "t".into(),
                expires_at_ms: 0,
                revoked_at_ms: 9,
                reason: String::new(),
                actor: String::new(),
            },
        }
    }

    #[test]
    fn ops_round_trip_and_bad_ones_are_named() {
        let op = op();
        assert_eq!(decode_ops(&[encode_op(&op)]).unwrap(), vec![op.clone()]);
        let mut bad = op.clone();
        bad.seq = 0;
        let err = decode_ops(&[encode_op(&op), encode_op(&bad)]).unwrap_err();
        assert_eq!(err.field, "ops[1].op.seq");
        assert_eq!(decode_ops(&[vec![0xff, 0xff]]).unwrap_err().field, "ops[0]");
    }

    #[test]
    fn format_zero_ops_still_decode_and_newer_ones_are_refused() {
        let op = op();
        let bare = postcard::to_stdvec(&op).unwrap();
        assert!(bare[0] < 0x80);
        assert_eq!(decode_op(&bare).unwrap(), op);
        let mut newer = encode_op(&op);
        newer[0] = 0x82;
        let err = decode_op(&newer).unwrap_err();
        assert!(
            err.to_string()
                .contains("format 2, newer than this build reads (up to 1)"),
            "{err}"
        );
        let mut trailing = encode_op(&op);
        trailing.push(0);
        assert!(decode_op(&trailing).is_err());
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
