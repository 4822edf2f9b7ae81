//! The framing the store's own files share (op-log segments, audit days):
//! `length (u32 LE)  blake3 of the body, first 4 bytes  body`.

use std::path::Path;

use crate::StoreError;

/// Bytes before a record's body.
pub const HEADER: usize = 8;

/// The first 4 bytes of the body's blake3.
pub fn checksum(bytes: &[u8]) -> [u8; 4] {
    let h = blake3::hash(bytes);
    let mut out = [0u8; 4];
    out.copy_from_slice(&h.as_bytes()[..4]);
    out
}

/// Append one framed record holding `body` to `out`.
pub fn frame(out: &mut Vec<u8>, body: &[u8]) {
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&checksum(body));
    out.extend_from_slice(body);
}

/// An I/O error on `path`, as the store reports it.
pub fn io(path: &Path) -> impl Fn(std::io::Error) -> StoreError + '_ {
    move |e| StoreError::Log(format!("{}: {e}", path.display()))
}
