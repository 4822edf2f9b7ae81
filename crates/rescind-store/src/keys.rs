//! Byte layout of keys. Big-endian numbers so that sled's lexicographic order
//! is numeric order; length prefixes so that no key is a prefix of another.

use rescind_core::{OriginId, PrincipalKind};

/// `[name len: u16 BE][name][incarnation: u64 BE]`: the op-log prefix of an origin.
pub fn origin_prefix(origin: &OriginId) -> Vec<u8> {
    let name = origin.node.as_bytes();
    let len = u16::try_from(name.len()).unwrap_or(u16::MAX);
    let mut k = Vec::with_capacity(2 + name.len() + 8 + 8);
    k.extend_from_slice(&len.to_be_bytes());
    k.extend_from_slice(&name[..usize::from(len)]);
    k.extend_from_slice(&origin.incarnation.to_be_bytes());
    k
}

/// Op-log key: origin prefix then `seq` (u64 BE).
pub fn op_key(origin: &OriginId, seq: u64) -> Vec<u8> {
    let mut k = origin_prefix(origin);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// Cutoff key: `[kind index: u8][principal]`.
pub fn cutoff_key(kind: PrincipalKind, principal: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + principal.len());
    k.push(kind.index() as u8);
    k.extend_from_slice(principal.as_bytes());
    k
}

/// Inverse of [`cutoff_key`].
pub fn parse_cutoff_key(key: &[u8]) -> Option<(PrincipalKind, String)> {
    let (&kind, rest) = key.split_first()?;
    let kind = *PrincipalKind::ALL.get(usize::from(kind))?;
    Some((kind, String::from_utf8(rest.to_vec()).ok()?))
}
