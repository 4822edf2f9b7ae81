//! A deny set saved to a file at a clean shutdown and read back in one
//! sequential pass, so a planned restart with 10M entries does not walk sled.
//!
//! ```text
//! "RSCDENY1"  header length (u32 LE)  header (postcard)  records  blake3 of all before (32 B)
//! ```
//!
//! The records are the arena's own bytes (layout in [`super::record`]), holes
//! left out; the header holds the origin table, the record count and byte
//! length, the deny part of the digest, and the version vector the set
//! corresponds to. Reading checks the checksum, every record's bounds and
//! origin number, and that no id appears twice; any failure is an error and
//! the caller falls back to the store.

use std::io::{self, Read, Write};

use serde::{Deserialize, Serialize};

use super::DenySet;
use super::record::{self, ALIGN};
use crate::origin::OriginId;

const MAGIC: &[u8; 8] = b"RSCDENY1";
/// Longest header accepted (the origin table and clock are small).
const MAX_HEADER: u32 = 64 << 20;

/// What a checkpoint holds besides the records.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointHeader {
    /// The version vector the deny set corresponds to.
    pub clock: Vec<(OriginId, u64)>,
    /// The deny entries' share of the state digest.
    pub deny_digest: u128,
    /// Origins, by the numbers records refer to.
    pub origins: Vec<OriginId>,
    /// Records that follow.
    pub records: u64,
    /// Their bytes.
    pub bytes: u64,
}

/// Why a checkpoint could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// Reading failed.
    #[error("reading the checkpoint: {0}")]
    Io(#[from] io::Error),
    /// The file is not a checkpoint, or is damaged.
    #[error("damaged checkpoint: {0}")]
    Damaged(String),
}

fn damaged(what: impl Into<String>) -> CheckpointError {
    CheckpointError::Damaged(what.into())
}

/// Hashes everything written through it.
struct Hashing<W> {
    inner: W,
    hasher: blake3::Hasher,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl DenySet {
    /// Write this set as a checkpoint with `clock` and `deny_digest`.
    pub fn write_checkpoint(
        &self,
        clock: Vec<(OriginId, u64)>,
        deny_digest: u128,
        out: impl Write,
    ) -> io::Result<()> {
        if !self.overflow.is_empty() {
            return Err(io::Error::other("ids beyond the arena are not checkpointed"));
        }
        let header = CheckpointHeader {
            clock,
            deny_digest,
            origins: self.origins().iter().map(|o| (**o).clone()).collect(),
            records: self.index.len() as u64,
            bytes: (self.arena.len() - self.holes) as u64,
        };
        let header = postcard::to_stdvec(&header).map_err(io::Error::other)?;
        let mut w = Hashing {
            inner: out,
            hasher: blake3::Hasher::new(),
        };
        w.write_all(MAGIC)?;
        w.write_all(&(header.len() as u32).to_le_bytes())?;
        w.write_all(&header)?;
        if self.holes == 0 {
            w.write_all(&self.arena)?;
        } else {
            for unit in self.index.units() {
                let at = unit as usize * ALIGN;
                let len = record::key_at(&self.arena, at).0.record_len();
                w.write_all(&self.arena[at..at + len])?;
            }
        }
        let sum = w.hasher.finalize();
        w.inner.write_all(sum.as_bytes())?;
        w.inner.flush()
    }

    /// Read a checkpoint written by [`DenySet::write_checkpoint`].
    pub fn read_checkpoint(mut input: impl Read) -> Result<(DenySet, CheckpointHeader), CheckpointError> {
        let mut hasher = blake3::Hasher::new();
        let mut magic = [0u8; 8];
        input.read_exact(&mut magic)?;
        if &magic != MAGIC {
            return Err(damaged("not a Rescind deny checkpoint"));
        }
        let mut len = [0u8; 4];
        input.read_exact(&mut len)?;
        let header_len = u32::from_le_bytes(len);
        if header_len > MAX_HEADER {
            return Err(damaged(format!("header of {header_len} bytes")));
        }
        let mut header_bytes = vec![0u8; header_len as usize];
        input.read_exact(&mut header_bytes)?;
        hasher.update(&magic).update(&len).update(&header_bytes);
        let header: CheckpointHeader =
            postcard::from_bytes(&header_bytes).map_err(|e| damaged(format!("header: {e}")))?;
        let mut set = DenySet::default();
        let bytes = usize::try_from(header.bytes).map_err(|_| damaged("record bytes"))?;
        if bytes > set.arena_limit || bytes % ALIGN != 0 {
            return Err(damaged(format!("{bytes} bytes of records")));
        }
        // Exactly the size needed (growing would leave freed copies resident),
        // but read in slices so a lying length fails at end of file; the
        // reservation itself is only address space until written.
        let mut arena = Vec::with_capacity(bytes.min(1 << 32));
        let mut left = bytes;
        while left > 0 {
            let n = left.min(8 << 20);
            let start = arena.len();
            arena.resize(start + n, 0);
            input.read_exact(&mut arena[start..])?;
            left -= n;
        }
        hasher.update(&arena);
        let mut sum = [0u8; 32];
        input.read_exact(&mut sum)?;
        if hasher.finalize() != blake3::Hash::from_bytes(sum) {
            return Err(damaged("checksum mismatch"));
        }
        for origin in &header.origins {
            set.intern(origin, || origin.clone());
        }
        if set.origins().len() != header.origins.len() {
            return Err(damaged("an origin appears twice"));
        }
        set.arena = arena;
        set.index_records(header.records)?;
        Ok((set, header))
    }

    /// Build the index over a freshly read arena, checking every record.
    fn index_records(&mut self, expected: u64) -> Result<(), CheckpointError> {
        let expected = usize::try_from(expected).map_err(|_| damaged("record count"))?;
        self.reserve_index(expected.min(self.arena.len() / 20));
        let mut at = 0;
        while at < self.arena.len() {
            let (_, len, origin) =
                record::checked(&self.arena, at).ok_or_else(|| damaged(format!("record at byte {at}")))?;
            if origin as usize >= self.origins().len() {
                return Err(damaged(format!("origin {origin} of the record at byte {at}")));
            }
            if !self.index_new(at) {
                return Err(damaged(format!("id at byte {at} appears twice")));
            }
            at += len;
        }
        if self.index.len() != expected {
            return Err(damaged(format!(
                "{} records, header says {expected}",
                self.index.len()
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use crate::deny::DenyMeta;

    fn sample() -> DenySet {
        let mut set = DenySet::default();
        let a = Arc::new(OriginId::new("a", 1));
        let b = Arc::new(OriginId::new("b", 2));
        for i in 0..500u64 {
            let id = if i % 2 == 0 {
                format!("{i:08x}-d9cb-469f-a165-70867728950e")
            } else {
                format!("token-{i}").repeat(1 + (i % 40) as usize)
            };
            let origin = if i % 3 == 0 { a.clone() } else { b.clone() };
            set.upsert(
                &id,
                DenyMeta {
                    expires_at_ms: i * 10,
                    revoked_at_ms: i,
                    origin,
                },
            );
        }
        set
    }

    #[test]
    fn a_checkpoint_reads_back_the_same_set_with_or_without_holes() {
        let mut set = sample();
        for holes in [false, true] {
            if holes {
                for i in (1..100u64).step_by(2) {
                    set.remove(&format!("token-{i}").repeat(1 + (i % 40) as usize));
                }
                assert!(set.holes > 0);
            }
            let clock = vec![(OriginId::new("a", 1), 9)];
            let mut bytes = Vec::new();
            set.write_checkpoint(clock.clone(), 77, &mut bytes).unwrap();
            let (back, header) = DenySet::read_checkpoint(&bytes[..]).unwrap();
            assert_eq!(back, set);
            assert_eq!((header.clock, header.deny_digest), (clock, 77));
        }
    }

    #[test]
    fn damaged_checkpoints_are_refused_never_half_read() {
        let mut bytes = Vec::new();
        sample().write_checkpoint(Vec::new(), 1, &mut bytes).unwrap();
        // Every truncation and a flipped bit anywhere fail cleanly.
        for cut in [0, 4, 8, 12, bytes.len() / 2, bytes.len() - 1] {
            assert!(DenySet::read_checkpoint(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        for at in (0..bytes.len()).step_by(97) {
            let mut bad = bytes.clone();
            bad[at] ^= 0x10;
            assert!(DenySet::read_checkpoint(&bad[..]).is_err(), "flip at {at}");
        }
    }
}
