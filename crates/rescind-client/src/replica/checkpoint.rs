//! A replica's local checkpoint file, so a restarted edge resumes from its
//! version vector instead of downloading everything again.
//!
//! ```text
//! "RSCREPL1"  version (u8)  header length (u32 LE)  header (postcard)  blake3 of all before (32 B)  checkpoint
//! ```
//!
//! The header holds the cluster id; the checkpoint is a node's own format
//! (`rescind_core::codec::checkpoint`: deny records, cutoffs, version vector,
//! its own checksum). Version 1 files (before cutoffs moved into the
//! checkpoint) are refused as of another format: the replica starts afresh. Written to a temporary file, fsynced, renamed over the old
//! one, and the directory fsynced: a crash leaves the old file or the new
//! one, never a torn one. Any damage is an error; the replica then starts
//! empty and takes a snapshot (a replica is never the only copy).

use std::io::{self, Read, Write};
use std::path::Path;

use rescind_core::State;
use rescind_core::codec::checkpoint;
use serde::{Deserialize, Serialize};

const MAGIC: &[u8; 8] = b"RSCREPL1";
const VERSION: u8 = 2;
/// Longest header accepted (a cluster id).
const MAX_HEADER: u32 = 1 << 20;

#[derive(Serialize, Deserialize)]
struct Header {
    cluster_id: String,
}

/// Why a checkpoint could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// Reading or writing failed.
    #[error("replica checkpoint {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: io::Error,
    },
    /// The file is not a replica checkpoint, is of a newer format, or is damaged.
    #[error("replica checkpoint {path} is unusable: {detail}")]
    Damaged {
        /// The file.
        path: String,
        /// What is wrong.
        detail: String,
    },
}

/// Write `state` (and the cluster it follows) to `path`, crash-safe.
pub fn save(path: &Path, state: &State, cluster_id: &str) -> Result<(), CheckpointError> {
    let io_err = |source| CheckpointError::Io {
        path: path.display().to_string(),
        source,
    };
    let header = Header {
        cluster_id: cluster_id.to_owned(),
    };
    let header = postcard::to_stdvec(&header).map_err(|e| io_err(io::Error::other(e)))?;
    let tmp = path.with_extension("tmp");
    let write = || -> io::Result<()> {
        let file = std::fs::File::create(&tmp)?;
        let mut out = io::BufWriter::with_capacity(1 << 20, file);
        let mut prefix = Vec::with_capacity(13 + header.len());
        prefix.extend_from_slice(MAGIC);
        prefix.push(VERSION);
        prefix.extend_from_slice(&(header.len() as u32).to_le_bytes());
        prefix.extend_from_slice(&header);
        out.write_all(&prefix)?;
        out.write_all(blake3::hash(&prefix).as_bytes())?;
        checkpoint::write(state, 0, 0, 0, &mut out)?;
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    };
    write().map_err(io_err)
}

/// Read a checkpoint written by [`save`]: the state (with `expiry_grace_ms`)
/// and the cluster id it was following. `Ok(None)` when there is no file.
pub fn load(path: &Path, expiry_grace_ms: u64) -> Result<Option<(State, String)>, CheckpointError> {
    let name = || path.display().to_string();
    let damaged = |detail: String| CheckpointError::Damaged { path: name(), detail };
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(CheckpointError::Io { path: name(), source }),
    };
    let mut input = io::BufReader::with_capacity(1 << 20, file);
    let mut fixed = [0u8; 13];
    input
        .read_exact(&mut fixed)
        .map_err(|e| damaged(format!("too short: {e}")))?;
    if &fixed[..8] != MAGIC {
        return Err(damaged("not a Rescind replica checkpoint".into()));
    }
    if fixed[8] != VERSION {
        return Err(damaged(format!(
            "format version {} (this build reads {VERSION}); delete it to start afresh",
            fixed[8]
        )));
    }
    let len = u32::from_le_bytes([fixed[9], fixed[10], fixed[11], fixed[12]]);
    if len > MAX_HEADER {
        return Err(damaged(format!("header of {len} bytes")));
    }
    let mut header = vec![0u8; len as usize];
    input
        .read_exact(&mut header)
        .map_err(|e| damaged(format!("header: {e}")))?;
    let mut sum = [0u8; 32];
    input
        .read_exact(&mut sum)
        .map_err(|e| damaged(format!("header checksum: {e}")))?;
    let mut hasher = blake3::Hasher::new();
    hasher.update(&fixed).update(&header);
    if hasher.finalize().as_bytes() != &sum {
        return Err(damaged("header checksum does not match".into()));
    }
    let header: Header = postcard::from_bytes(&header).map_err(|e| damaged(format!("header: {e}")))?;
    let (state, _) = checkpoint::read(&mut input, expiry_grace_ms).map_err(|e| damaged(e.to_string()))?;
    Ok(Some((state, header.cluster_id)))
}

#[cfg(test)]
mod tests {
    use rescind_core::{Cutoff, DenyEntry, OriginId, PrincipalKind};

    use super::*;

    fn sample() -> State {
        let mut s = State::new(1000);
        let o = OriginId::new("a", 7);
        for i in 0..50 {
            let entry = DenyEntry {
                expires_at_ms: 0,
                revoked_at_ms: i,
                origin: o.clone(),
            };
            s.merge_deny(&format!("tok-{i}"), &entry, 0);
        }
        s.merge_cutoff(
            PrincipalKind::Subject,
            "alice",
            Cutoff {
                issued_before_ms: 99,
                min_version: 2,
            },
        );
        s.raise_clock(&o, 51);
        s
    }

    #[test]
    fn round_trips_state_and_cluster() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("replica.ckpt");
        assert!(load(&path, 1000).unwrap().is_none(), "no file: nothing to load");
        let s = sample();
        save(&path, &s, "key-abc").unwrap();
        let (back, cluster) = load(&path, 1000).unwrap().unwrap();
        assert_eq!(cluster, "key-abc");
        assert_eq!(back.digest(), s.digest());
        assert_eq!(back.clock(), s.clock());
        assert_eq!(back.cutoffs().len(), 1);
    }

    #[test]
    fn damage_anywhere_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("replica.ckpt");
        save(&path, &sample(), "key-abc").unwrap();
        let good = std::fs::read(&path).unwrap();
        for at in [0, 8, 10, 20, good.len() / 2, good.len() - 1] {
            let mut bad = good.clone();
            bad[at] ^= 0x40;
            std::fs::write(&path, &bad).unwrap();
            assert!(
                matches!(load(&path, 0), Err(CheckpointError::Damaged { .. })),
                "a flipped byte at {at} went unnoticed"
            );
        }
        std::fs::write(&path, &good[..good.len() - 5]).unwrap();
        assert!(load(&path, 0).is_err(), "a truncated file went unnoticed");
    }
}
