//! When a file a node reloads (certificates, credentials) has changed: its
//! modification time and length, compared with those it was loaded at.

use std::path::Path;
use std::time::SystemTime;

/// A file's modification time and length: a change to either is a change.
pub type Stamp = (SystemTime, u64);

/// The [`Stamp`] of `path` (None when it cannot be read).
pub fn stamp(path: &Path) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}
