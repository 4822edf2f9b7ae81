//! Values of the store's `meta` records: [`META_V1`] then postcard.
//!
//! The record types belong to their owners (the store's identity, the
//! node's peer vectors); this module only frames them, so every meta value
//! carries the same version byte and is refused the same way when newer.

use super::{FormatError, META_V1, decode, frame};

/// Encode one meta value.
pub fn encode<T: serde::Serialize + ?Sized>(value: &T) -> Vec<u8> {
    frame(META_V1, value)
}

/// Decode one meta value; `what` names it in errors.
pub fn decode_value<'a, T: serde::Deserialize<'a>>(
    what: &'static str,
    bytes: &'a [u8],
) -> Result<T, FormatError> {
    decode(what, META_V1, bytes)
}

/// The data dir format as stored: a u32, big-endian.
pub fn encode_format(format: u32) -> [u8; 4] {
    format.to_be_bytes()
}

/// Inverse of [`encode_format`].
pub fn decode_format(bytes: &[u8]) -> Result<u32, FormatError> {
    bytes
        .try_into()
        .map(u32::from_be_bytes)
        .map_err(|_| FormatError::malformed("data dir format", format!("{} bytes", bytes.len())))
}
