//! The checkpoint file: the base of a node's state (deny set, cutoffs,
//! version vector, expiry watermark), read back in one sequential pass.
//!
//! ```text
//! "RSCNDCKP" version (u8) header length (u32 LE) header (postcard)
//! deny records   cutoff records   blake3 of everything before (32 B)
//! ```
//!
//! A deny record is compact (a UUID id revoked for an hour takes ~24 bytes,
//! against 40 in memory):
//!
//! ```text
//! id tag (varint: 0 = UUID, 16 B follow; n + 1 = n raw id bytes follow)
//! revoked_at_ms − the previous record's (zigzag varint; the first: − 0)
//! origin << 1 | has expiry (varint)
//! [expires_at_ms − revoked_at_ms, zigzag varint, when it has an expiry]
//! ```
//!
//! Records go out in the set's arena order, which is close to revocation
//! order, so the time deltas are small.
//!
//! A cutoff record is `kind (u8) principal length (varint) principal
//! issued_before_ms (varint) min_version (varint)`.
//!
//! The header counts records and bytes of each section, so a reader knows
//! where each ends, and [`SectionReader`] can serve a snapshot page from any
//! record boundary. Reading a whole file ([`read`]) checks the checksum, each
//! record's bounds, origin number and id, and that no id appears twice; any
//! failure is an error, never a partial state.

use std::io::{self, Read, Write};

use serde::{Deserialize, Serialize};

use super::{CHECKPOINT_V1, FormatError};
use crate::cutoff::{Cutoff, CutoffMap, PrincipalKind};
use crate::deny::{DenyEntry, DenySet, StoredFields, StoredId};
use crate::origin::OriginId;
use crate::state::State;

/// The file's first bytes.
pub const MAGIC: &[u8; 8] = b"RSCNDCKP";
/// Longest header accepted (the origin table and vector are small).
const MAX_HEADER: u32 = 64 << 20;
/// Longest id or principal a record may hold.
const MAX_ID: u64 = 1 << 20;
/// Bytes before the header.
const PREAMBLE: u64 = 8 + 1 + 4;

/// What a checkpoint holds besides its records.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointHeader {
    /// Generation number, rising by one per checkpoint of a data dir.
    pub generation: u64,
    /// The version vector the state corresponds to (contiguous seqs).
    pub clock: Vec<(OriginId, u64)>,
    /// Entries that expired (plus grace) before this time were pruned.
    pub pruned_before_ms: u64,
    /// The deny entries' share of the state digest.
    pub deny_digest: u128,
    /// Origins, by the numbers deny records refer to.
    pub origins: Vec<OriginId>,
    /// Deny records that follow.
    pub deny_records: u64,
    /// Their bytes.
    pub deny_bytes: u64,
    /// Cutoff records after them.
    pub cutoff_records: u64,
    /// Their bytes.
    pub cutoff_bytes: u64,
    /// When it was written (unix ms, the writer's clock).
    pub written_at_ms: u64,
}

impl CheckpointHeader {
    /// Where the deny section starts in the file (header length included).
    pub fn deny_start(&self, header_len: u32) -> u64 {
        PREAMBLE + u64::from(header_len)
    }
}

/// Why a checkpoint could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// Reading failed.
    #[error("reading the checkpoint: {0}")]
    Io(#[from] io::Error),
    /// The file is not a checkpoint, is damaged, or is from a newer version.
    #[error("damaged checkpoint: {0}")]
    Damaged(String),
    /// Written by a newer Rescind.
    #[error(transparent)]
    Format(#[from] FormatError),
}

fn damaged(what: impl Into<String>) -> CheckpointError {
    CheckpointError::Damaged(what.into())
}

/// Hashes and counts everything written through it.
struct Hashing<W> {
    inner: W,
    hasher: blake3::Hasher,
    written: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// One deny record's bytes, appended to `out`; `prev_revoked_ms` is the
/// previous record's revocation time (0 for the first), updated.
pub fn encode_deny_record(out: &mut Vec<u8>, id: StoredId<'_>, f: StoredFields, prev_revoked_ms: &mut u64) {
    match id {
        StoredId::Uuid(b) => {
            out.push(0);
            out.extend_from_slice(&b);
        }
        StoredId::Raw(b) => {
            put_varint(out, b.len() as u64 + 1);
            out.extend_from_slice(b);
        }
    }
    put_varint(out, zigzag(f.revoked_at_ms.wrapping_sub(*prev_revoked_ms) as i64));
    *prev_revoked_ms = f.revoked_at_ms;
    let has_expiry = f.expires_at_ms != 0;
    put_varint(out, (u64::from(f.origin) << 1) | u64::from(has_expiry));
    if has_expiry {
        put_varint(out, zigzag(f.expires_at_ms.wrapping_sub(f.revoked_at_ms) as i64));
    }
}

fn encode_cutoff_record(out: &mut Vec<u8>, kind: PrincipalKind, principal: &str, c: Cutoff) {
    out.push(kind.index() as u8);
    put_varint(out, principal.len() as u64);
    out.extend_from_slice(principal.as_bytes());
    put_varint(out, c.issued_before_ms);
    put_varint(out, c.min_version);
}

/// Write `state` as checkpoint `generation` (its contiguous vector, its
/// expiry watermark `pruned_before_ms`, written at `written_at_ms`);
/// returns the bytes written.
pub fn write(
    state: &State,
    generation: u64,
    pruned_before_ms: u64,
    written_at_ms: u64,
    out: impl Write,
) -> io::Result<u64> {
    let deny = state.deny();
    let (mut deny_bytes, mut records) = (0u64, 0u64);
    let mut buf = Vec::with_capacity(64);
    let mut prev = 0;
    for (id, f) in deny.records() {
        buf.clear();
        encode_deny_record(&mut buf, id, f, &mut prev);
        deny_bytes += buf.len() as u64;
        records += 1;
    }
    let (mut cutoff_bytes, mut cutoffs) = (0u64, 0u64);
    for (kind, principal, c) in state.cutoffs().iter() {
        buf.clear();
        encode_cutoff_record(&mut buf, kind, principal, c);
        cutoff_bytes += buf.len() as u64;
        cutoffs += 1;
    }
    let header = CheckpointHeader {
        generation,
        clock: state.clock().iter().map(|(o, s)| (o.clone(), s)).collect(),
        pruned_before_ms,
        deny_digest: state.deny_digest(),
        origins: deny.origins().iter().map(|o| (**o).clone()).collect(),
        deny_records: records,
        deny_bytes,
        cutoff_records: cutoffs,
        cutoff_bytes,
        written_at_ms,
    };
    let header = postcard::to_stdvec(&header).map_err(io::Error::other)?;
    let mut w = Hashing {
        inner: out,
        hasher: blake3::Hasher::new(),
        written: 0,
    };
    w.write_all(MAGIC)?;
    w.write_all(&[CHECKPOINT_V1])?;
    w.write_all(&(header.len() as u32).to_le_bytes())?;
    w.write_all(&header)?;
    // Records go out in chunks: one write per record would dominate.
    let mut chunk = Vec::with_capacity(1 << 16);
    let mut prev = 0;
    for (id, f) in deny.records() {
        encode_deny_record(&mut chunk, id, f, &mut prev);
        if chunk.len() >= 60_000 {
            w.write_all(&chunk)?;
            chunk.clear();
        }
    }
    for (kind, principal, c) in state.cutoffs().iter() {
        encode_cutoff_record(&mut chunk, kind, principal, c);
        if chunk.len() >= 60_000 {
            w.write_all(&chunk)?;
            chunk.clear();
        }
    }
    w.write_all(&chunk)?;
    let sum = w.hasher.finalize();
    w.inner.write_all(sum.as_bytes())?;
    w.inner.flush()?;
    Ok(w.written + 32)
}

/// Reads records of one section, hashing what it reads when asked to.
pub struct SectionReader<R> {
    input: R,
    hasher: Option<blake3::Hasher>,
    /// Bytes of the section left.
    left: u64,
    scratch: Vec<u8>,
    /// The previous deny record's revocation time.
    prev_revoked_ms: u64,
}

impl<R: Read> SectionReader<R> {
    /// Read `len` bytes of records from `input` (positioned at a record
    /// whose predecessor was revoked at `prev_revoked_ms`; 0 at the start).
    pub fn new(input: R, len: u64, prev_revoked_ms: u64) -> Self {
        Self {
            input,
            hasher: None,
            left: len,
            scratch: Vec::new(),
            prev_revoked_ms,
        }
    }

    /// The last deny record's revocation time (where the next one continues).
    pub fn prev_revoked_ms(&self) -> u64 {
        self.prev_revoked_ms
    }

    /// Bytes of the section not yet read.
    pub fn left(&self) -> u64 {
        self.left
    }

    fn bytes(&mut self, n: u64) -> Result<&[u8], CheckpointError> {
        if n > self.left {
            return Err(damaged("a record runs past its section"));
        }
        self.scratch.resize(n as usize, 0);
        self.input.read_exact(&mut self.scratch)?;
        if let Some(h) = &mut self.hasher {
            h.update(&self.scratch);
        }
        self.left -= n;
        Ok(&self.scratch)
    }

    fn byte(&mut self) -> Result<u8, CheckpointError> {
        Ok(self.bytes(1)?[0])
    }

    fn varint(&mut self) -> Result<u64, CheckpointError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                if shift == 63 && b > 1 {
                    break;
                }
                return Ok(v);
            }
        }
        Err(damaged("a varint is too long"))
    }

    /// The next deny record: its id as text and its fields.
    pub fn deny_record(&mut self) -> Result<(String, StoredFields), CheckpointError> {
        let (id, f) = self.deny_record_raw()?;
        Ok((id.into(), f))
    }

    fn deny_record_raw(&mut self) -> Result<(IdBuf, StoredFields), CheckpointError> {
        let tag = self.varint()?;
        let id = if tag == 0 {
            let mut b = [0u8; 16];
            b.copy_from_slice(self.bytes(16)?);
            IdBuf::Uuid(b)
        } else if tag - 1 > MAX_ID {
            return Err(damaged(format!("an id of {} bytes", tag - 1)));
        } else {
            let raw = self.bytes(tag - 1)?.to_vec();
            IdBuf::Raw(String::from_utf8(raw).map_err(|_| damaged("an id is not UTF-8"))?)
        };
        let revoked_at_ms = self.prev_revoked_ms.wrapping_add(unzigzag(self.varint()?) as u64);
        let flags = self.varint()?;
        let origin = u32::try_from(flags >> 1).map_err(|_| damaged("origin number"))?;
        let expires_at_ms = if flags & 1 == 1 {
            let diff = unzigzag(self.varint()?);
            let at = revoked_at_ms.wrapping_add(diff as u64);
            if at == 0 {
                return Err(damaged("an expiry of 0 marked as set"));
            }
            at
        } else {
            0
        };
        self.prev_revoked_ms = revoked_at_ms;
        Ok((
            id,
            StoredFields {
                expires_at_ms,
                revoked_at_ms,
                origin,
            },
        ))
    }

    /// The next cutoff record.
    pub fn cutoff_record(&mut self) -> Result<(PrincipalKind, String, Cutoff), CheckpointError> {
        let kind = *PrincipalKind::ALL
            .get(usize::from(self.byte()?))
            .ok_or_else(|| damaged("a cutoff kind"))?;
        let len = self.varint()?;
        if len > MAX_ID {
            return Err(damaged(format!("a principal of {len} bytes")));
        }
        let principal =
            String::from_utf8(self.bytes(len)?.to_vec()).map_err(|_| damaged("a principal is not UTF-8"))?;
        let cutoff = Cutoff {
            issued_before_ms: self.varint()?,
            min_version: self.varint()?,
        };
        Ok((kind, principal, cutoff))
    }
}

/// An id read from a record.
enum IdBuf {
    Uuid([u8; 16]),
    Raw(String),
}

impl From<IdBuf> for String {
    fn from(id: IdBuf) -> String {
        match id {
            IdBuf::Uuid(b) => StoredId::Uuid(b).to_id().into_owned(),
            IdBuf::Raw(s) => s,
        }
    }
}

/// Read the preamble and header of a checkpoint; returns the header and its
/// encoded length. The hasher, when given, absorbs what was read.
pub fn read_header(
    input: &mut impl Read,
    hasher: Option<&mut blake3::Hasher>,
) -> Result<(CheckpointHeader, u32), CheckpointError> {
    let mut magic = [0u8; 8];
    input.read_exact(&mut magic)?;
    if &magic != MAGIC {
        return Err(damaged("not a Rescind checkpoint (bad magic)"));
    }
    let mut version = [0u8; 1];
    input.read_exact(&mut version)?;
    super::unframe("checkpoint", CHECKPOINT_V1, &version)?;
    let mut len = [0u8; 4];
    input.read_exact(&mut len)?;
    let header_len = u32::from_le_bytes(len);
    if header_len > MAX_HEADER {
        return Err(damaged(format!("header of {header_len} bytes")));
    }
    let mut header_bytes = vec![0u8; header_len as usize];
    input.read_exact(&mut header_bytes)?;
    if let Some(h) = hasher {
        h.update(&magic)
            .update(&version)
            .update(&len)
            .update(&header_bytes);
    }
    let header = super::body("checkpoint header", &header_bytes).map_err(|e| damaged(e.to_string()))?;
    Ok((header, header_len))
}

/// Read a whole checkpoint into a state pruning `expiry_grace_ms` after
/// expiry; checks everything (see the module doc).
pub fn read(input: impl Read, expiry_grace_ms: u64) -> Result<(State, CheckpointHeader), CheckpointError> {
    read_bounded(input, expiry_grace_ms, u64::MAX)
}

/// [`read`] of a file of `file_len` bytes: a header claiming more is
/// refused before anything is allocated for it.
pub fn read_bounded(
    input: impl Read,
    expiry_grace_ms: u64,
    file_len: u64,
) -> Result<(State, CheckpointHeader), CheckpointError> {
    let mut input = input;
    let mut hasher = blake3::Hasher::new();
    let (header, _) = read_header(&mut input, Some(&mut hasher))?;
    if header.deny_bytes.saturating_add(header.cutoff_bytes) > file_len {
        return Err(damaged("the header claims more bytes than the file has"));
    }
    let mut deny = DenySet::new();
    for origin in &header.origins {
        deny.intern(origin, || origin.clone());
    }
    if deny.origins().len() != header.origins.len() {
        return Err(damaged("an origin appears twice"));
    }
    let records = usize::try_from(header.deny_records).map_err(|_| damaged("record count"))?;
    // Never more than the bytes could hold (a lying count fails below).
    deny.reserve(records.min(usize::try_from(header.deny_bytes / 19).unwrap_or(0)));
    let mut section = SectionReader::new(&mut input, header.deny_bytes, 0);
    section.hasher = Some(hasher);
    for i in 0..header.deny_records {
        let (id, f) = section.deny_record_raw()?;
        let pushed = match &id {
            IdBuf::Uuid(b) => deny.push_record(StoredId::Uuid(*b), f),
            IdBuf::Raw(s) => deny.push_record(StoredId::Raw(s.as_bytes()), f),
        };
        pushed.map_err(|why| damaged(format!("deny record {i}: {why}")))?;
    }
    if section.left() != 0 {
        return Err(damaged("deny section longer than its records"));
    }
    let hasher = section.hasher.take();
    let mut section = SectionReader::new(&mut input, header.cutoff_bytes, 0);
    section.hasher = hasher;
    let mut cutoffs = CutoffMap::new();
    for _ in 0..header.cutoff_records {
        let (kind, principal, c) = section.cutoff_record()?;
        cutoffs.raise(kind, &principal, c);
    }
    if section.left() != 0 {
        return Err(damaged("cutoff section longer than its records"));
    }
    let hasher = section.hasher.take().unwrap_or_default();
    let mut sum = [0u8; 32];
    input.read_exact(&mut sum)?;
    if hasher.finalize() != blake3::Hash::from_bytes(sum) {
        return Err(damaged("checksum mismatch"));
    }
    let mut trailing = [0u8; 1];
    if input.read(&mut trailing)? != 0 {
        return Err(damaged("bytes after the checksum"));
    }
    let state = State::restore(deny, header.deny_digest, cutoffs, &header.clock, expiry_grace_ms);
    Ok((state, header))
}

/// A deny record as a snapshot entry.
pub fn entry_of(fields: StoredFields, origins: &[OriginId]) -> Option<DenyEntry> {
    Some(DenyEntry {
        expires_at_ms: fields.expires_at_ms,
        revoked_at_ms: fields.revoked_at_ms,
        origin: origins.get(fields.origin as usize)?.clone(),
    })
}

#[cfg(test)]
mod tests;
