//! [`OpLogFiles`]: the op-log tail as append-only segment files.
//!
//! `oplog/segment-<n>.log` holds records back to back:
//!
//! ```text
//! length (u32 LE)  blake3 of the op bytes, first 4 bytes  op bytes (rescind_core::wire::encode_op)
//! ```
//!
//! Appends go to the newest segment (a new one past [`SEGMENT_BYTES`]); a
//! flush is one `fdatasync`. Compaction deletes whole segments whose every op
//! is at or below the floor of its origin: disk follows the tail, with no
//! per-key bookkeeping left behind (sled kept ~340 B and ~60 B of RSS per
//! deleted key). An index in memory maps each origin's seqs to where they
//! are (24 B per op of the tail), rebuilt by one sequential scan at open.
//!
//! A crash mid-append leaves a torn record at the end of the newest segment:
//! the scan at open cuts the file there (everything acknowledged was flushed
//! before its ack, so it precedes the cut). A bad record anywhere else is
//! damage, reported with its file and offset.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;
use rescind_core::{Op, OriginId};

use crate::StoreError;
use crate::records::{HEADER, checksum, io};

/// A segment is closed past this size.
pub const SEGMENT_BYTES: u64 = 64 << 20;
/// Longest record accepted when scanning (ops are far smaller).
const MAX_RECORD: u32 = 1 << 20;

#[derive(Debug, Clone, Copy)]
struct Entry {
    seq: u64,
    segment: u32,
    offset: u32,
    len: u32,
}

#[derive(Debug)]
struct Segment {
    path: PathBuf,
    file: Arc<File>,
    len: u64,
    /// Highest seq per origin in this segment.
    max_seq: BTreeMap<OriginId, u64>,
}

#[derive(Debug, Default)]
struct Inner {
    segments: BTreeMap<u32, Segment>,
    /// Per origin, the ops of the tail sorted by seq.
    index: BTreeMap<OriginId, Vec<Entry>>,
    /// Per origin, the highest seq truncated away.
    floor: BTreeMap<OriginId, u64>,
    /// The next append starts a new segment (set by truncation, so the
    /// newest one can go at a later truncation too).
    roll: bool,
}

/// The op log of one data dir.
#[derive(Debug)]
pub struct OpLogFiles {
    dir: PathBuf,
    inner: Mutex<Inner>,
    segment_bytes: u64,
}

fn segment_path(dir: &Path, n: u32) -> PathBuf {
    dir.join(format!("segment-{n:010}.log"))
}

impl OpLogFiles {
    /// Open the log in `dir` (created if missing), ops at or below `floor`
    /// left out; cuts a torn record off the newest segment.
    pub fn open(dir: &Path, floor: &[(OriginId, u64)]) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let mut numbers: Vec<u32> = std::fs::read_dir(dir)
            .map_err(io(dir))?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.strip_prefix("segment-")?.strip_suffix(".log")?.parse().ok()
            })
            .collect();
        numbers.sort_unstable();
        let mut inner = Inner {
            floor: floor.iter().cloned().collect(),
            ..Inner::default()
        };
        let last = numbers.last().copied();
        for n in numbers {
            let path = segment_path(dir, n);
            let segment = scan(&path, n, Some(n) == last, &mut inner)?;
            inner.segments.insert(n, segment);
        }
        for entries in inner.index.values_mut() {
            entries.sort_by_key(|e| e.seq);
            entries.dedup_by_key(|e| e.seq);
        }
        Ok(Self {
            dir: dir.to_owned(),
            inner: Mutex::new(inner),
            segment_bytes: SEGMENT_BYTES,
        })
    }

    /// Close segments past `bytes` instead of [`SEGMENT_BYTES`] (tests).
    pub fn with_segment_bytes(mut self, bytes: u64) -> Self {
        self.segment_bytes = bytes.max(1);
        self
    }

    /// Append `ops` (not yet durable: see [`OpLogFiles::sync`]).
    pub fn append(&self, ops: &[Op]) -> Result<(), StoreError> {
        let mut inner = self.inner.lock();
        let mut buf = Vec::new();
        let mut pending: Vec<(OriginId, Entry)> = Vec::with_capacity(ops.len());
        let (mut number, mut at) = self.writable(&mut inner)?;
        if inner.roll && at > 0 {
            let seg = &inner.segments[&number];
            seg.file.sync_data().map_err(io(&seg.path))?;
            number += 1;
            self.create_segment(&mut inner, number)?;
            at = 0;
        }
        inner.roll = false;
        for op in ops {
            let bytes = rescind_core::wire::encode_op(op);
            if at + buf.len() as u64 + (HEADER + bytes.len()) as u64 > self.segment_bytes
                && at + (buf.len() as u64) > 0
            {
                self.write_out(&mut inner, number, &buf, &mut pending)?;
                buf.clear();
                let seg = &inner.segments[&number];
                seg.file.sync_data().map_err(io(&seg.path))?;
                number += 1;
                self.create_segment(&mut inner, number)?;
                at = 0;
            }
            let offset = at + buf.len() as u64;
            crate::records::frame(&mut buf, &bytes);
            pending.push((
                op.origin.clone(),
                Entry {
                    seq: op.seq,
                    segment: number,
                    offset: offset as u32,
                    len: bytes.len() as u32,
                },
            ));
        }
        self.write_out(&mut inner, number, &buf, &mut pending)
    }

    /// The newest segment and its length, creating the first one.
    fn writable(&self, inner: &mut Inner) -> Result<(u32, u64), StoreError> {
        match inner.segments.iter().next_back() {
            Some((&n, s)) => Ok((n, s.len)),
            None => {
                self.create_segment(inner, 1)?;
                Ok((1, 0))
            }
        }
    }

    fn create_segment(&self, inner: &mut Inner, n: u32) -> Result<(), StoreError> {
        let path = segment_path(&self.dir, n);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(&path)
            .map_err(io(&path))?;
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(io(&self.dir))?;
        inner.segments.insert(
            n,
            Segment {
                path,
                file: Arc::new(file),
                len: 0,
                max_seq: BTreeMap::new(),
            },
        );
        Ok(())
    }

    fn write_out(
        &self,
        inner: &mut Inner,
        number: u32,
        buf: &[u8],
        pending: &mut Vec<(OriginId, Entry)>,
    ) -> Result<(), StoreError> {
        let seg = inner
            .segments
            .get_mut(&number)
            .ok_or_else(|| StoreError::Log("no segment".into()))?;
        (&*seg.file).write_all(buf).map_err(io(&seg.path))?;
        seg.len += buf.len() as u64;
        for (origin, entry) in pending.drain(..) {
            let top = seg.max_seq.entry(origin.clone()).or_default();
            *top = (*top).max(entry.seq);
            let entries = inner.index.entry(origin).or_default();
            match entries.last() {
                Some(last) if last.seq >= entry.seq => {
                    if let Err(i) = entries.binary_search_by_key(&entry.seq, |e| e.seq) {
                        entries.insert(i, entry);
                    }
                }
                _ => entries.push(entry),
            }
        }
        Ok(())
    }

    /// Make everything appended durable.
    pub fn sync(&self) -> Result<(), StoreError> {
        let newest = {
            let inner = self.inner.lock();
            inner
                .segments
                .values()
                .next_back()
                .map(|s| (s.file.clone(), s.path.clone()))
        };
        match newest {
            Some((file, path)) => file.sync_data().map_err(io(&path)),
            None => Ok(()),
        }
    }

    /// Up to `limit` ops of `origin` with seq above `after` (and the floor).
    pub fn ops_after(&self, origin: &OriginId, after: u64, limit: usize) -> Result<Vec<Op>, StoreError> {
        let wanted: Vec<(Arc<File>, PathBuf, Entry)> = {
            let inner = self.inner.lock();
            let from = after.max(inner.floor.get(origin).copied().unwrap_or(0));
            let Some(entries) = inner.index.get(origin) else {
                return Ok(Vec::new());
            };
            let start = entries.partition_point(|e| e.seq <= from);
            entries[start..]
                .iter()
                .take(limit)
                .filter_map(|e| {
                    let seg = inner.segments.get(&e.segment)?;
                    Some((seg.file.clone(), seg.path.clone(), *e))
                })
                .collect()
        };
        let mut out = Vec::with_capacity(wanted.len());
        for (file, path, e) in wanted {
            let mut record = vec![0u8; HEADER + e.len as usize];
            file.read_exact_at(&mut record, u64::from(e.offset))
                .map_err(io(&path))?;
            let bytes = &record[HEADER..];
            if record[4..HEADER] != checksum(bytes) {
                return Err(StoreError::Corrupt {
                    what: "op-log record",
                    detail: format!("{} at byte {}: checksum mismatch", path.display(), e.offset),
                });
            }
            out.push(rescind_core::wire::decode_op(bytes).map_err(|e| StoreError::format("op", e))?);
        }
        Ok(out)
    }

    /// The origins with ops in the tail.
    pub fn origins(&self) -> Vec<OriginId> {
        let inner = self.inner.lock();
        inner
            .index
            .iter()
            .filter(|(o, entries)| {
                let floor = inner.floor.get(*o).copied().unwrap_or(0);
                entries.last().is_some_and(|e| e.seq > floor)
            })
            .map(|(o, _)| o.clone())
            .collect()
    }

    /// Raise the floor to `floor` (already durable in meta) and delete the
    /// segments it covers whole; returns how many ops left the tail.
    pub fn truncate(&self, floor: &[(OriginId, u64)]) -> Result<u64, StoreError> {
        let mut inner = self.inner.lock();
        let mut dropped = 0u64;
        for (origin, seq) in floor {
            let at = inner.floor.entry(origin.clone()).or_default();
            *at = (*at).max(*seq);
            let top = *at;
            if let Some(entries) = inner.index.get_mut(origin) {
                let cut = entries.partition_point(|e| e.seq <= top);
                entries.drain(..cut);
                dropped += cut as u64;
            }
        }
        inner.index.retain(|_, entries| !entries.is_empty());
        inner.roll = true;
        let newest = inner.segments.keys().next_back().copied();
        let gone: Vec<u32> = inner
            .segments
            .iter()
            .filter(|(n, s)| {
                Some(**n) != newest
                    && s.max_seq
                        .iter()
                        .all(|(o, top)| inner.floor.get(o).is_some_and(|f| top <= f))
            })
            .map(|(n, _)| *n)
            .collect();
        for n in &gone {
            if let Some(seg) = inner.segments.remove(n) {
                std::fs::remove_file(&seg.path).map_err(io(&seg.path))?;
            }
        }
        if !gone.is_empty() {
            File::open(&self.dir)
                .and_then(|d| d.sync_all())
                .map_err(io(&self.dir))?;
        }
        Ok(dropped)
    }

    /// Bytes of the segment files.
    pub fn disk_bytes(&self) -> u64 {
        self.inner.lock().segments.values().map(|s| s.len).sum()
    }
}

/// Read one segment's records into the index; cut a torn tail off the
/// newest one.
fn scan(path: &Path, n: u32, newest: bool, inner: &mut Inner) -> Result<Segment, StoreError> {
    let file = OpenOptions::new()
        .read(true)
        .append(true)
        .open(path)
        .map_err(io(path))?;
    let total = file.metadata().map_err(io(path))?.len();
    let mut reader = BufReader::with_capacity(1 << 20, &file);
    let mut at = 0u64;
    let mut max_seq: BTreeMap<OriginId, u64> = BTreeMap::new();
    let mut bytes = Vec::new();
    let bad = loop {
        if at == total {
            break None;
        }
        let mut header = [0u8; HEADER];
        if reader.read_exact(&mut header).is_err() {
            break Some("a record header ends early");
        }
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
        if len > MAX_RECORD {
            break Some("a record length is out of range");
        }
        bytes.resize(len as usize, 0);
        if reader.read_exact(&mut bytes).is_err() {
            break Some("a record ends early");
        }
        if header[4..] != checksum(&bytes) {
            break Some("a record's checksum does not match");
        }
        let Ok(op) = rescind_core::wire::decode_op(&bytes) else {
            break Some("a record is not an op");
        };
        if at + u64::from(len) + HEADER as u64 > u64::from(u32::MAX) {
            break Some("a segment is larger than 4 GiB");
        }
        let top = max_seq.entry(op.origin.clone()).or_default();
        *top = (*top).max(op.seq);
        if op.seq > inner.floor.get(&op.origin).copied().unwrap_or(0) {
            inner.index.entry(op.origin).or_default().push(Entry {
                seq: op.seq,
                segment: n,
                offset: at as u32,
                len,
            });
        }
        at += HEADER as u64 + u64::from(len);
    };
    if let Some(why) = bad {
        if !newest {
            return Err(StoreError::Corrupt {
                what: "op log",
                detail: format!("{} at byte {at}: {why}", path.display()),
            });
        }
        tracing::warn!(file = %path.display(), at, why, "cutting a torn record off the op log (a crash mid-append)");
        drop(reader);
        file.set_len(at).map_err(io(path))?;
        file.sync_all().map_err(io(path))?;
    }
    Ok(Segment {
        path: path.to_owned(),
        file: Arc::new(file),
        len: at,
        max_seq,
    })
}

#[cfg(test)]
mod tests;
