//! Byte layout of the format-1 cutoff keys, read when migrating.

use rescind_core::PrincipalKind;

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
