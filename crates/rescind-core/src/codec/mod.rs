//! Every encoding that outlives a process or crosses the network, with its
//! format version, in one place.
//!
//! | Item | Where it lives | First byte | Module |
//! |------|----------------|------------|--------|
//! | op | op log (sled values), peer and Watch messages | [`OP_V1`] | [`wire`] |
//! | snapshot deny entry | peer and Watch snapshot pages | [`ENTRY_V1`] | [`wire`] |
//! | snapshot cutoff | peer and Watch snapshot pages | [`ENTRY_V1`] | [`wire`] |
//! | consistency token | clients, `x-rescind-consistency` | [`TOKEN_V1`] | [`crate::consistency`] |
//! | meta value (identity, members, vectors) | sled `meta` tree | [`META_V1`] | [`meta`] |
//! | snapshot position (inside a snapshot cursor) | peer and Watch snapshot cursors | [`POSITION_V1`] | rescind-node `gossip::source` |
//! | op-log record | `oplog/segment-<n>.log` | length + checksum, then an op | rescind-store `oplog` |
//! | audit entry | `audit/audit-<day>.log` | length + checksum, then [`AUDIT_V1`] | rescind-store `audit` |
//! | `ListRevocations` cursor | clients of the audit API | [`AUDIT_CURSOR_V1`] | rescind-node `audit` |
//! | checkpoint | `checkpoint-<generation>.rsc` files | magic then [`CHECKPOINT_V1`] | [`checkpoint`] |
//!
//! Rules:
//! - every item starts with its version byte (a checkpoint: with a magic
//!   string, then the version byte); the body is postcard;
//! - a decoder refuses a version newer than it knows with [`FormatError::Newer`],
//!   naming both versions, and never guesses;
//! - ops written before formats were versioned (format 0: bare postcard,
//!   whose first byte is a node-name length, 1 to 64) still decode: the op
//!   version byte has its high bit set so the two cannot be confused;
//! - golden-bytes tests (`codec/golden.rs`) pin each encoding: changing one
//!   fails CI, and the fix is a new version, not an edit.
//!
//! The data dir as a whole carries [`DATA_DIR_FORMAT`] in its meta.

pub mod checkpoint;
pub mod meta;
pub mod wire;

#[cfg(test)]
mod golden;

/// Version byte of an op (high bit set: never a format-0 op's first byte).
pub const OP_V1: u8 = 0x81;
/// Version byte of a snapshot deny entry or cutoff.
pub const ENTRY_V1: u8 = 0x01;
/// Version byte of a consistency token.
pub const TOKEN_V1: u8 = 0x01;
/// Version byte of a meta value.
pub const META_V1: u8 = 0x01;
/// Version byte of a node's snapshot position (the source's part of a
/// snapshot cursor, after the cursor's own version byte).
pub const POSITION_V1: u8 = 0x01;
/// Version byte of an audit entry (inside its length-and-checksum frame).
pub const AUDIT_V1: u8 = 0x01;
/// Version byte of a `ListRevocations` cursor.
pub const AUDIT_CURSOR_V1: u8 = 0x01;
/// Version byte of a checkpoint file (after its magic).
pub const CHECKPOINT_V1: u8 = 0x01;
/// Layout of a data dir this build writes: 1 was one sled key per revocation
/// (trees `deny`, `cutoffs`, `clock`); 2 is a checkpoint file plus the op-log
/// tail and meta in sled.
pub const DATA_DIR_FORMAT: u32 = 2;

/// Why bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// Written by a newer Rescind.
    #[error("{what} is in format {found}, newer than this build reads (up to {known}): run a newer rescind")]
    Newer {
        /// Which item.
        what: &'static str,
        /// Version found.
        found: u8,
        /// Newest version this build reads.
        known: u8,
    },
    /// Not a valid item of this kind.
    #[error("{what} is malformed: {detail}")]
    Malformed {
        /// Which item.
        what: &'static str,
        /// What failed.
        detail: String,
    },
}

impl FormatError {
    /// A malformed `what`.
    pub fn malformed(what: &'static str, detail: impl std::fmt::Display) -> Self {
        FormatError::Malformed {
            what,
            detail: detail.to_string(),
        }
    }
}

/// `version` then the postcard body of `value`.
pub fn frame<T: serde::Serialize + ?Sized>(version: u8, value: &T) -> Vec<u8> {
    let mut out = vec![version];
    // postcard cannot fail encoding plain owned data into a Vec; should it,
    // the empty body fails to decode rather than being mistaken for a value.
    out.extend(postcard::to_stdvec(value).unwrap_or_default());
    out
}

/// The body after a `version` byte, refusing newer versions and anything else.
pub fn unframe<'a>(what: &'static str, version: u8, bytes: &'a [u8]) -> Result<&'a [u8], FormatError> {
    match bytes.split_first() {
        None => Err(FormatError::malformed(what, "empty")),
        Some((&v, body)) if v == version => Ok(body),
        Some((&v, _)) if v > version && v & 0x80 == version & 0x80 => Err(FormatError::Newer {
            what,
            found: v & 0x7f,
            known: version & 0x7f,
        }),
        Some((&v, _)) => Err(FormatError::malformed(
            what,
            format!("unknown version byte {v:#04x}"),
        )),
    }
}

/// Decode a whole postcard body: trailing bytes are an error.
pub fn body<'a, T: serde::Deserialize<'a>>(what: &'static str, bytes: &'a [u8]) -> Result<T, FormatError> {
    match postcard::take_from_bytes(bytes) {
        Ok((value, [])) => Ok(value),
        Ok((_, rest)) => Err(FormatError::malformed(
            what,
            format!("{} trailing bytes", rest.len()),
        )),
        Err(e) => Err(FormatError::malformed(what, e)),
    }
}

/// [`unframe`] then [`body`].
pub fn decode<'a, T: serde::Deserialize<'a>>(
    what: &'static str,
    version: u8,
    bytes: &'a [u8],
) -> Result<T, FormatError> {
    body(what, unframe(what, version, bytes)?)
}
