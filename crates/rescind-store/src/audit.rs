//! [`AuditLog`]: who revoked what and when, kept for a retention period,
//! apart from the op log (which compaction empties far sooner).
//!
//! Day files `audit/audit-<unix day>.log` hold records back to back, each
//! `length (u32 LE)  blake3 of the body, first 4 bytes  body`, the body being
//! [`rescind_core::codec::AUDIT_V1`] then postcard of an [`AuditEntry`].
//! Entries go to the file of the day they are written; retention deletes
//! whole files. The node writes revocations here when compaction is about to
//! drop their ops (the op-log tail is the rest of the audit trail), and a gap
//! when it adopts a snapshot whose ops it never received.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use parking_lot::Mutex;
use rescind_core::codec::{self, AUDIT_V1};
use rescind_core::{OriginId, PrincipalKind};
use serde::{Deserialize, Serialize};

use crate::StoreError;
use crate::records::{checksum, io};

/// One day, in ms.
pub const DAY_MS: u64 = 86_400_000;
/// Longest record accepted when reading.
const MAX_RECORD: u32 = 1 << 20;

/// What a revocation revoked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuditTarget {
    /// A token id, as the admin wrote it or as a keyed hash (`h:` + hex).
    Token {
        /// The id.
        id: String,
        /// Its expiry (unix ms; 0 = never).
        expires_at_ms: u64,
    },
    /// Every token of a principal issued before a time or below a version.
    Cutoff {
        /// Kind of principal.
        kind: PrincipalKind,
        /// The principal.
        principal: String,
        /// Tokens issued at or before this are revoked.
        issued_before_ms: u64,
        /// Tokens with a version below this are revoked.
        min_version: u64,
    },
}

/// One revocation as the audit trail keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// The node that accepted it.
    pub origin: OriginId,
    /// Its op number there.
    pub seq: u64,
    /// When it was accepted (unix ms, the origin's clock).
    pub at_ms: u64,
    /// Who asked.
    pub actor: String,
    /// Why.
    pub reason: String,
    /// The issuer namespace (empty: none).
    pub issuer: String,
    /// What it revoked.
    pub target: AuditTarget,
}

/// Ops of `origin` this node never received: it adopted a snapshot covering
/// `from_seq..=to_seq` instead, so it holds no audit records of them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditGap {
    /// Whose ops.
    pub origin: OriginId,
    /// First seq missing.
    pub from_seq: u64,
    /// Last seq missing.
    pub to_seq: u64,
    /// When the snapshot was adopted (unix ms).
    pub noted_at_ms: u64,
}

/// An item of the audit trail.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuditEntry {
    /// A revocation.
    Revocation(AuditRecord),
    /// A range never received.
    Gap(AuditGap),
}

/// Where a listing continues.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditPosition {
    /// Day file.
    pub day: u64,
    /// Byte offset in it.
    pub offset: u64,
}

/// One page of the audit files.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditPage {
    /// Revocations, in the order they were written.
    pub records: Vec<AuditRecord>,
    /// Gaps met on the way.
    pub gaps: Vec<AuditGap>,
    /// Where the next page starts (None: the files are exhausted).
    pub next: Option<AuditPosition>,
}

#[derive(Debug)]
enum Backend {
    Files(PathBuf),
    Memory(Mutex<BTreeMap<u64, Vec<u8>>>),
}

/// The audit trail of one data dir.
#[derive(Debug)]
pub struct AuditLog {
    backend: Backend,
}

fn day_file(dir: &Path, day: u64) -> PathBuf {
    dir.join(format!("audit-{day:08}.log"))
}

impl AuditLog {
    /// The audit files in `dir` (created if missing).
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        Ok(Self {
            backend: Backend::Files(dir.to_owned()),
        })
    }

    /// An audit trail in memory (tests, the simulator).
    pub fn in_memory() -> Self {
        Self {
            backend: Backend::Memory(Mutex::default()),
        }
    }

    /// The days that have a file, oldest first.
    fn days(&self) -> Result<Vec<u64>, StoreError> {
        match &self.backend {
            Backend::Memory(m) => Ok(m.lock().keys().copied().collect()),
            Backend::Files(dir) => {
                let mut days: Vec<u64> = std::fs::read_dir(dir)
                    .map_err(io(dir))?
                    .filter_map(|e| e.ok())
                    .filter_map(|e| {
                        let name = e.file_name().to_string_lossy().into_owned();
                        name.strip_prefix("audit-")?.strip_suffix(".log")?.parse().ok()
                    })
                    .collect();
                days.sort_unstable();
                Ok(days)
            }
        }
    }

    /// Append `entries` to the file of the day of `now_ms` (durable after
    /// [`AuditLog::sync`]).
    pub fn append(&self, entries: &[AuditEntry], now_ms: u64) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::new();
        for entry in entries {
            crate::records::frame(&mut buf, &codec::frame(AUDIT_V1, entry));
        }
        let day = now_ms / DAY_MS;
        match &self.backend {
            Backend::Memory(m) => m.lock().entry(day).or_default().extend_from_slice(&buf),
            Backend::Files(dir) => {
                let path = day_file(dir, day);
                let mut file = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .map_err(io(&path))?;
                file.write_all(&buf).map_err(io(&path))?;
            }
        }
        Ok(())
    }

    /// Make everything appended on the day of `now_ms` durable.
    pub fn sync(&self, now_ms: u64) -> Result<(), StoreError> {
        if let Backend::Files(dir) = &self.backend {
            let path = day_file(dir, now_ms / DAY_MS);
            if path.exists() {
                std::fs::File::open(&path)
                    .and_then(|f| f.sync_all())
                    .map_err(io(&path))?;
            }
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io(dir))?;
        }
        Ok(())
    }

    /// Delete the files of days wholly before `cutoff_ms`; returns how many.
    pub fn drop_before(&self, cutoff_ms: u64) -> Result<usize, StoreError> {
        let last_gone = cutoff_ms / DAY_MS;
        let gone: Vec<u64> = self.days()?.into_iter().filter(|d| *d < last_gone).collect();
        for day in &gone {
            match &self.backend {
                Backend::Memory(m) => drop(m.lock().remove(day)),
                Backend::Files(dir) => {
                    let path = day_file(dir, *day);
                    std::fs::remove_file(&path).map_err(io(&path))?;
                }
            }
        }
        Ok(gone.len())
    }

    /// Bytes the audit files take.
    pub fn disk_bytes(&self) -> u64 {
        match &self.backend {
            Backend::Memory(m) => m.lock().values().map(|v| v.len() as u64).sum(),
            Backend::Files(dir) => self
                .days()
                .unwrap_or_default()
                .iter()
                .filter_map(|d| std::fs::metadata(day_file(dir, *d)).ok())
                .map(|m| m.len())
                .sum(),
        }
    }

    /// Up to `limit` revocations `keep` accepts, from `from`; gaps met on
    /// the way come along. A torn record (a crash mid-append) ends its file.
    pub fn page(
        &self,
        from: AuditPosition,
        limit: usize,
        keep: &dyn Fn(&AuditRecord) -> bool,
    ) -> Result<AuditPage, StoreError> {
        let mut page = AuditPage::default();
        for day in self.days()?.into_iter().filter(|d| *d >= from.day) {
            let offset = if day == from.day { from.offset } else { 0 };
            let mut reader: Box<dyn Read> = match &self.backend {
                Backend::Memory(m) => {
                    let mut bytes = std::io::Cursor::new(m.lock().get(&day).cloned().unwrap_or_default());
                    bytes.set_position(offset);
                    Box::new(bytes)
                }
                Backend::Files(dir) => {
                    let path = day_file(dir, day);
                    let mut file = std::fs::File::open(&path).map_err(io(&path))?;
                    file.seek(SeekFrom::Start(offset)).map_err(io(&path))?;
                    Box::new(BufReader::with_capacity(1 << 16, file))
                }
            };
            let mut at = offset;
            while let Some((entry, len)) = read_entry(&mut reader) {
                at += len;
                match entry {
                    AuditEntry::Gap(g) => page.gaps.push(g),
                    AuditEntry::Revocation(r) if keep(&r) => {
                        page.records.push(r);
                        if page.records.len() >= limit.max(1) {
                            page.next = Some(AuditPosition { day, offset: at });
                            return Ok(page);
                        }
                    }
                    AuditEntry::Revocation(_) => {}
                }
            }
        }
        Ok(page)
    }
}

/// The next entry and its framed length; None at the end or at a torn or
/// damaged record.
fn read_entry(reader: &mut dyn Read) -> Option<(AuditEntry, u64)> {
    let mut header = [0u8; 8];
    reader.read_exact(&mut header).ok()?;
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
    if len > MAX_RECORD {
        return None;
    }
    let mut body = vec![0u8; len as usize];
    reader.read_exact(&mut body).ok()?;
    if header[4..] != checksum(&body) {
        return None;
    }
    let entry = codec::decode("audit entry", AUDIT_V1, &body).ok()?;
    Some((entry, 8 + u64::from(len)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(seq: u64, actor: &str) -> AuditEntry {
        AuditEntry::Revocation(AuditRecord {
            origin: OriginId::new("a", 1),
            seq,
            at_ms: seq,
            actor: actor.into(),
            reason: "why".into(),
            issuer: String::new(),
            target: AuditTarget::Token {
                id: format!("t{seq}"),
                expires_at_ms: 0,
            },
        })
    }

    fn pages_of(log: &AuditLog, keep: &dyn Fn(&AuditRecord) -> bool) -> (Vec<u64>, usize) {
        let (mut seqs, mut gaps, mut at) = (Vec::new(), 0, AuditPosition::default());
        loop {
            let page = log.page(at, 3, keep).unwrap();
            seqs.extend(page.records.iter().map(|r| r.seq));
            gaps += page.gaps.len();
            match page.next {
                Some(next) => at = next,
                None => return (seqs, gaps),
            }
        }
    }

    fn exercise(log: &AuditLog) {
        let day = 20_000 * DAY_MS;
        log.append(
            &(1..=5)
                .map(|s| record(s, if s % 2 == 0 { "bob" } else { "alice" }))
                .collect::<Vec<_>>(),
            day,
        )
        .unwrap();
        log.append(
            &[AuditEntry::Gap(AuditGap {
                origin: OriginId::new("b", 1),
                from_seq: 1,
                to_seq: 9,
                noted_at_ms: day,
            })],
            day,
        )
        .unwrap();
        log.append(
            &(6..=8).map(|s| record(s, "alice")).collect::<Vec<_>>(),
            day + DAY_MS,
        )
        .unwrap();
        log.sync(day + DAY_MS).unwrap();
        let (all, gaps) = pages_of(log, &|_| true);
        assert_eq!(all, (1..=8).collect::<Vec<_>>());
        assert!(gaps >= 1);
        let (alice, _) = pages_of(log, &|r| r.actor == "alice");
        assert_eq!(alice, vec![1, 3, 5, 6, 7, 8]);
        // Retention drops whole days.
        assert_eq!(log.drop_before(day + DAY_MS).unwrap(), 1);
        assert_eq!(pages_of(log, &|_| true).0, vec![6, 7, 8]);
    }

    #[test]
    fn pages_filter_and_retention_in_files_and_memory() {
        let dir = tempfile::tempdir().unwrap();
        exercise(&AuditLog::open(dir.path()).unwrap());
        exercise(&AuditLog::in_memory());
    }

    #[test]
    fn a_torn_tail_ends_the_file_without_losing_what_precedes() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(dir.path()).unwrap();
        log.append(&[record(1, "a"), record(2, "a")], 0).unwrap();
        let path = day_file(dir.path(), 0);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&[50, 0, 0, 0, 1]).unwrap();
        drop(f);
        assert_eq!(pages_of(&log, &|_| true).0, vec![1, 2]);
    }

    #[test]
    fn an_entry_encodes_as_pinned() {
        let body = codec::frame(AUDIT_V1, &record(3, "alice"));
        let hex: String = body.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, GOLDEN_ENTRY, "the audit entry encoding changed");
    }

    const GOLDEN_ENTRY: &str = "0100016101030305616c69636503776879000002743300";
}
