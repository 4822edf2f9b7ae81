//! [`Checkpoints`]: the generations of checkpoint files in a data dir.
//!
//! Generation `g` lives in `checkpoint-<g, 20 digits>.rsc`. Saving writes
//! `….rsc.tmp`, fsyncs it, renames it into place and fsyncs the directory,
//! so a crash at any point leaves the previous generations intact and at most
//! a stray temp file (deleted at the next open). The two newest generations
//! are kept: when the newest is damaged, the one before it (plus a longer
//! replay of the op log, which is never compacted below it) still serves.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rescind_core::State;
use rescind_core::codec::checkpoint::{self, CheckpointError, CheckpointHeader, SectionReader};
use rescind_core::{Cutoff, DenyEntry, OriginId, PrincipalKind};

use crate::StoreError;
use crate::fs::Fs;

/// A generation and its version vector.
type NewestClock = (u64, Vec<(OriginId, u64)>);

/// Generations kept on disk.
pub const KEPT: usize = 2;
const PREFIX: &str = "checkpoint-";
const SUFFIX: &str = ".rsc";

/// The checkpoint files of one data dir.
#[derive(Debug)]
pub struct Checkpoints {
    fs: Arc<dyn Fs>,
    dir: PathBuf,
    /// Generations whose whole-file checksum was verified (for snapshot serving).
    verified: Mutex<BTreeSet<u64>>,
    /// The newest generation's number and vector, once known.
    newest: Mutex<Option<NewestClock>>,
    /// Generations a snapshot read lately: not deleted while a pull may
    /// still be walking them (see [`PIN_FOR`]).
    pins: Mutex<BTreeMap<u64, Instant>>,
}

/// How long a generation stays after a snapshot last read it, even when
/// more than [`KEPT`] newer ones exist.
pub const PIN_FOR: Duration = Duration::from_secs(300);

/// What a saved checkpoint took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Saved {
    /// Its generation.
    pub generation: u64,
    /// Its size.
    pub bytes: u64,
}

/// Where a snapshot read continues within one generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SnapshotPosition {
    /// The generation served.
    pub generation: u64,
    /// 0: deny records; 1: cutoff records.
    pub section: u8,
    /// Byte offset of the next record in the file.
    pub offset: u64,
    /// Records of this section left.
    pub records_left: u64,
    /// Bytes of this section left.
    pub bytes_left: u64,
    /// The previous deny record's revocation time (records are delta-coded).
    pub prev_revoked_ms: u64,
}

/// One page read from a checkpoint.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CheckpointPage {
    /// Deny entries.
    pub deny: Vec<(String, DenyEntry)>,
    /// Cutoffs.
    pub cutoffs: Vec<(PrincipalKind, String, Cutoff)>,
    /// Where the next page starts (None: this was the last).
    pub next: Option<SnapshotPosition>,
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> StoreError + '_ {
    move |e| StoreError::Checkpoint(format!("{}: {e}", path.display()))
}

impl Checkpoints {
    /// The generations in `dir` (created if missing); stray temp files go.
    pub fn open(fs: Arc<dyn Fs>, dir: &Path) -> Result<Self, StoreError> {
        fs.create_dir_all(dir).map_err(io_err(dir))?;
        for name in fs.list(dir).map_err(io_err(dir))? {
            if name.starts_with(PREFIX) && name.ends_with(".tmp") {
                let _ = fs.remove(&dir.join(name));
            }
        }
        Ok(Self::unopened(fs, dir))
    }

    /// The generations in `dir`, without touching the files yet (for a
    /// file system that cannot fail, like [`crate::MemFs`]).
    pub fn unopened(fs: Arc<dyn Fs>, dir: &Path) -> Self {
        Self {
            fs,
            dir: dir.to_owned(),
            verified: Mutex::default(),
            newest: Mutex::default(),
            pins: Mutex::default(),
        }
    }

    /// Where generation `generation` lives.
    pub fn path(&self, generation: u64) -> PathBuf {
        self.dir.join(format!("{PREFIX}{generation:020}{SUFFIX}"))
    }

    /// Generations on disk, newest first.
    pub fn generations(&self) -> Result<Vec<u64>, StoreError> {
        let mut out: Vec<u64> = self
            .fs
            .list(&self.dir)
            .map_err(io_err(&self.dir))?
            .iter()
            .filter_map(|n| n.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?.parse().ok())
            // Numbers near the top could not be followed by another.
            .filter(|g: &u64| *g < u64::MAX / 2)
            .collect();
        out.sort_unstable_by(|a, b| b.cmp(a));
        Ok(out)
    }

    /// Bytes of every generation on disk.
    pub fn disk_bytes(&self) -> u64 {
        self.generations()
            .unwrap_or_default()
            .iter()
            .filter_map(|g| self.fs.len(&self.path(*g)).ok())
            .sum()
    }

    /// Write `state` as `generation`, crash-safe, then drop generations
    /// older than the [`KEPT`] newest.
    pub fn save(
        &self,
        state: &State,
        generation: u64,
        pruned_before_ms: u64,
        now_ms: u64,
    ) -> Result<Saved, StoreError> {
        let path = self.path(generation);
        let tmp = path.with_extension("rsc.tmp");
        let write = || -> std::io::Result<u64> {
            let mut out = BufWriter::with_capacity(1 << 20, self.fs.create(&tmp)?);
            let bytes = checkpoint::write(state, generation, pruned_before_ms, now_ms, &mut out)?;
            let mut file = out.into_inner().map_err(|e| e.into_error())?;
            file.sync()?;
            drop(file);
            self.fs.rename(&tmp, &path)?;
            self.fs.sync_dir(&self.dir)?;
            Ok(bytes)
        };
        let bytes = write().map_err(|e| {
            let _ = self.fs.remove(&tmp);
            StoreError::Checkpoint(format!("{}: {e}", path.display()))
        })?;
        self.verified.lock().insert(generation);
        let clock = state.clock().iter().map(|(o, s)| (o.clone(), s)).collect();
        *self.newest.lock() = Some((generation, clock));
        // Old generations go only after the new one is durable.
        self.prune()?;
        Ok(Saved { generation, bytes })
    }

    /// Delete the generations older than the [`KEPT`] newest, except those
    /// a snapshot read pinned in the last [`PIN_FOR`]. [`Checkpoints::save`]
    /// calls it once the new generation is durable; a node's start calls it
    /// too, once the newest generation loaded, to finish a prune that a kill
    /// between a save's rename and its deletes cut short. Failing to delete
    /// one wastes disk, nothing else.
    pub fn prune(&self) -> Result<(), StoreError> {
        let pinned: BTreeSet<u64> = {
            let mut pins = self.pins.lock();
            pins.retain(|_, at| at.elapsed() < PIN_FOR);
            pins.keys().copied().collect()
        };
        for old in self
            .generations()?
            .into_iter()
            .skip(KEPT)
            .filter(|g| !pinned.contains(g))
        {
            if let Err(e) = self.fs.remove(&self.path(old)) {
                tracing::warn!(file = %self.path(old).display(), error = %e, "old checkpoint not deleted");
            }
            self.verified.lock().remove(&old);
        }
        Ok(())
    }

    /// The version vector of the newest generation (what a snapshot
    /// covers); None without a checkpoint.
    pub fn newest_clock(&self) -> Result<Option<Vec<(OriginId, u64)>>, StoreError> {
        let Some(&generation) = self.generations()?.first() else {
            return Ok(None);
        };
        if let Some((g, clock)) = &*self.newest.lock()
            && *g == generation
        {
            return Ok(Some(clock.clone()));
        }
        let path = self.path(generation);
        let file = self.fs.open(&path).map_err(io_err(&path))?;
        let (header, _) = checkpoint::read_header(&mut BufReader::with_capacity(1 << 16, file), None)
            .map_err(|e| StoreError::Checkpoint(format!("{}: {e}", path.display())))?;
        *self.newest.lock() = Some((generation, header.clock.clone()));
        Ok(Some(header.clock))
    }

    /// Rename a damaged generation to `….rsc.damaged`: kept for a look,
    /// no longer a generation.
    pub fn set_aside(&self, generation: u64) -> Result<(), StoreError> {
        let path = self.path(generation);
        let aside = path.with_extension("rsc.damaged");
        self.fs.rename(&path, &aside).map_err(io_err(&path))?;
        self.fs.sync_dir(&self.dir).map_err(io_err(&self.dir))?;
        tracing::warn!(file = %aside.display(), "damaged checkpoint set aside");
        Ok(())
    }

    /// Read generation `generation` into a state.
    pub fn load(
        &self,
        generation: u64,
        expiry_grace_ms: u64,
    ) -> Result<(State, CheckpointHeader), CheckpointError> {
        let path = self.path(generation);
        let len = self.fs.len(&path)?;
        let file = self.fs.open(&path)?;
        let read = checkpoint::read_bounded(BufReader::with_capacity(1 << 20, file), expiry_grace_ms, len);
        let (state, header) = read.map_err(|e| match e {
            CheckpointError::Io(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
                CheckpointError::Damaged("the file ends early (truncated)".into())
            }
            other => other,
        })?;
        if header.generation != generation {
            return Err(CheckpointError::Damaged(format!(
                "the file says generation {}, its name {generation}",
                header.generation
            )));
        }
        Ok((state, header))
    }

    /// Check generation `generation`'s whole-file checksum (once per
    /// generation) and return its header and where its deny records start.
    fn verified_header(&self, generation: u64) -> Result<(CheckpointHeader, u64), StoreError> {
        let path = self.path(generation);
        let damaged = |e: CheckpointError| StoreError::Checkpoint(format!("{}: {e}", path.display()));
        let mut file = BufReader::with_capacity(1 << 16, self.fs.open(&path).map_err(io_err(&path))?);
        let (header, len) = checkpoint::read_header(&mut file, None).map_err(damaged)?;
        if !self.verified.lock().contains(&generation) {
            let total = self.fs.len(&path).map_err(io_err(&path))?;
            let mut file = BufReader::with_capacity(1 << 20, self.fs.open(&path).map_err(io_err(&path))?);
            let mut hasher = blake3::Hasher::new();
            let body = total
                .checked_sub(32)
                .ok_or_else(|| damaged(CheckpointError::Damaged("too short".into())))?;
            std::io::copy(&mut (&mut file).take(body), &mut HashWriter(&mut hasher))
                .map_err(io_err(&path))?;
            let mut sum = [0u8; 32];
            file.read_exact(&mut sum).map_err(io_err(&path))?;
            if hasher.finalize() != blake3::Hash::from_bytes(sum) {
                return Err(damaged(CheckpointError::Damaged("checksum mismatch".into())));
            }
            self.verified.lock().insert(generation);
        }
        let start = header.deny_start(len);
        Ok((header, start))
    }

    /// The newest generation's header and the position of its first record,
    /// for serving a snapshot; None when there is no checkpoint yet.
    pub fn snapshot_start(&self) -> Result<Option<(CheckpointHeader, SnapshotPosition)>, StoreError> {
        let Some(&generation) = self.generations()?.first() else {
            return Ok(None);
        };
        let (header, start) = self.verified_header(generation)?;
        self.pins.lock().insert(generation, Instant::now());
        let position = SnapshotPosition {
            generation,
            section: 0,
            offset: start,
            records_left: header.deny_records,
            bytes_left: header.deny_bytes,
            prev_revoked_ms: 0,
        };
        Ok(Some((header, position)))
    }

    /// Up to `limit` records from `at` (deny records, then cutoffs).
    /// `Ok(None)` when `at` is not a position of that generation.
    pub fn snapshot_page(
        &self,
        at: SnapshotPosition,
        limit: usize,
    ) -> Result<Option<CheckpointPage>, StoreError> {
        let (header, start) = self.verified_header(at.generation).map_err(|e| {
            StoreError::Checkpoint(format!(
                "snapshot generation {} is gone or unreadable ({e}); start the snapshot again",
                at.generation
            ))
        })?;
        let (section_start, section_bytes, section_records) = match at.section {
            0 => (start, header.deny_bytes, header.deny_records),
            1 => (
                start.saturating_add(header.deny_bytes),
                header.cutoff_bytes,
                header.cutoff_records,
            ),
            _ => return Ok(None),
        };
        let consistent = at.offset >= section_start
            && at.offset.checked_add(at.bytes_left) == section_start.checked_add(section_bytes)
            && at.records_left <= section_records
            && (at.records_left == 0) == (at.bytes_left == 0);
        if !consistent {
            return Ok(None);
        }
        self.pins.lock().insert(at.generation, Instant::now());
        let path = self.path(at.generation);
        let mut file = self.fs.open(&path).map_err(io_err(&path))?;
        file.seek(SeekFrom::Start(at.offset)).map_err(io_err(&path))?;
        let mut input = BufReader::with_capacity(1 << 16, file);
        let mut page = CheckpointPage::default();
        let mut pos = at;
        let bad = |e: CheckpointError| StoreError::Checkpoint(format!("{}: {e}", path.display()));
        while page.deny.len() + page.cutoffs.len() < limit.max(1) {
            if pos.records_left == 0 {
                if pos.section == 1 {
                    return Ok(Some(page));
                }
                pos = SnapshotPosition {
                    generation: pos.generation,
                    section: 1,
                    offset: start + header.deny_bytes,
                    records_left: header.cutoff_records,
                    bytes_left: header.cutoff_bytes,
                    prev_revoked_ms: 0,
                };
                continue;
            }
            let mut section = SectionReader::new(&mut input, pos.bytes_left, pos.prev_revoked_ms);
            if pos.section == 0 {
                let (id, fields) = section.deny_record().map_err(bad)?;
                let entry = checkpoint::entry_of(fields, &header.origins)
                    .ok_or_else(|| bad(CheckpointError::Damaged("origin number".into())))?;
                page.deny.push((id, entry));
            } else {
                page.cutoffs.push(section.cutoff_record().map_err(bad)?);
            }
            pos.prev_revoked_ms = section.prev_revoked_ms();
            let used = pos.bytes_left - section.left();
            pos.offset += used;
            pos.bytes_left -= used;
            pos.records_left -= 1;
        }
        let done = pos.records_left == 0 && (pos.section == 1 || header.cutoff_records == 0);
        page.next = (!done).then_some(pos);
        Ok(Some(page))
    }
}

struct HashWriter<'a>(&'a mut blake3::Hasher);

impl Write for HashWriter<'_> {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.update(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod golden {
    use super::SnapshotPosition;

    /// A snapshot position travels inside cursors: pinned.
    #[test]
    fn a_snapshot_position_encodes_as_pinned() {
        let p = SnapshotPosition {
            generation: 7,
            section: 1,
            offset: 300,
            records_left: 2,
            bytes_left: 40,
            prev_revoked_ms: 1_790_000_000_000,
        };
        let bytes = rescind_core::codec::frame(rescind_core::codec::POSITION_V1, &p);
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, GOLDEN_POSITION, "the snapshot position encoding changed");
        let back: SnapshotPosition =
            rescind_core::codec::decode("position", rescind_core::codec::POSITION_V1, &bytes).unwrap();
        assert_eq!(back, p);
    }

    const GOLDEN_POSITION: &str = "010701ac02022880d8c1a28c34";
}
