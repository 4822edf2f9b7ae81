//! Data dirs of format 1 (before checkpoints became the base of the state):
//! sled trees `deny` (one key per revoked id), `cutoffs` and `clock`, bare
//! postcard values, and a `db.deny-checkpoint` file next to the database.
//!
//! [`crate::SledStore::open`] migrates such a dir once: it reads the state by
//! walking these trees, writes it as checkpoint generation 1, records format
//! 2 in meta, then drops the old trees and file. Each step is safe to crash
//! in: until format 2 is recorded the dir is still format 1 and the next open
//! migrates again; after, leftover trees are dropped at open. The old op
//! log (tree `oplog`, format-0 values, which [`rescind_core::wire::decode_op`]
//! reads) is copied into the segment files first.

use std::sync::atomic::{AtomicUsize, Ordering};

use rescind_core::{Cutoff, DenyEntryRef, OriginId, State};
use sled::{IVec, Tree};

use crate::keys::parse_cutoff_key;
use crate::{Identity, StoreError};

/// Trees of format 1 that format 2 no longer has.
pub const TREES: [&str; 4] = ["deny", "cutoffs", "clock", "oplog"];
/// The deny checkpoint file of format 1, next to the database directory.
pub const CHECKPOINT_FILE: &str = "db.deny-checkpoint";

/// Deny entries handed from a reader to the merging thread at a time.
const LOAD_CHUNK: usize = 4096;
/// Chunks in flight between them (bounds the memory loading takes).
const LOAD_QUEUE: usize = 16;
/// Threads walking the deny tree.
const LOAD_READERS: usize = 8;
type LoadSender = std::sync::mpsc::SyncSender<Result<Vec<(IVec, IVec)>, sled::Error>>;

fn corrupt(what: &'static str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        what,
        detail: detail.to_string(),
    }
}

/// True when `db` holds format-1 state (tests check a migration left none).
#[cfg(test)]
pub fn present(db: &sled::Db) -> Result<bool, StoreError> {
    for name in TREES {
        if db.tree_names().iter().any(|n| n.as_ref() == name.as_bytes()) && !db.open_tree(name)?.is_empty() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// A format-1 identity: bare postcard.
pub fn identity(bytes: &[u8]) -> Result<Identity, StoreError> {
    match postcard::take_from_bytes(bytes) {
        Ok((identity, [])) => Ok(identity),
        Ok((_, rest)) => Err(corrupt("node identity", format!("{} trailing bytes", rest.len()))),
        Err(e) => Err(corrupt("node identity", e)),
    }
}

/// Read the whole format-1 state: every deny entry, cutoff and clock entry.
pub fn load(db: &sled::Db) -> Result<State, StoreError> {
    let mut state = State::new(0);
    load_deny(&db.open_tree("deny")?, &mut state)?;
    for item in db.open_tree("cutoffs")?.iter() {
        let (key, value) = item?;
        let (kind, principal) =
            parse_cutoff_key(&key).ok_or(corrupt("cutoff key", format!("{} bytes", key.len())))?;
        let cutoff: Cutoff = postcard::from_bytes(&value).map_err(|e| corrupt("cutoff", e))?;
        state.merge_cutoff(kind, &principal, cutoff);
    }
    for item in db.open_tree("clock")?.iter() {
        let (key, value) = item?;
        let origin: OriginId = postcard::from_bytes(&key).map_err(|e| corrupt("clock origin", e))?;
        let seq = value
            .as_ref()
            .try_into()
            .map(u64::from_be_bytes)
            .map_err(|_| corrupt("clock seq", format!("{} bytes", value.len())))?;
        state.raise_clock(&origin, seq);
    }
    Ok(state)
}

/// Every op of the format-1 log, in key order.
pub fn ops(db: &sled::Db) -> Result<impl Iterator<Item = Result<rescind_core::Op, StoreError>>, StoreError> {
    Ok(db.open_tree("oplog")?.iter().map(|item| {
        let (_, value) = item?;
        rescind_core::wire::decode_op(&value).map_err(|e| StoreError::format("op", e))
    }))
}

/// Drop the format-1 trees (after the migration is recorded).
pub fn drop_trees(db: &sled::Db) -> Result<(), StoreError> {
    for name in TREES {
        if db.tree_names().iter().any(|n| n.as_ref() == name.as_bytes()) {
            db.drop_tree(name)?;
        }
    }
    Ok(())
}

/// Walk the deny tree into `state`. sled's walk mostly waits on random
/// reads, so several readers, each taking the keys of one first byte at a
/// time, keep more reads in flight; the merge is single-threaded.
fn load_deny(deny: &Tree, state: &mut State) -> Result<(), StoreError> {
    let (tx, rx) = std::sync::mpsc::sync_channel(LOAD_QUEUE);
    let next_byte = AtomicUsize::new(0);
    std::thread::scope(|scope| -> Result<(), StoreError> {
        for _ in 0..LOAD_READERS {
            let (tx, next_byte) = (tx.clone(), &next_byte);
            scope.spawn(move || {
                loop {
                    let b = next_byte.fetch_add(1, Ordering::Relaxed);
                    if b > 255 || !send_range(deny, b as u8, &tx) {
                        return;
                    }
                }
            });
        }
        drop(tx);
        for chunk in rx {
            for (key, value) in chunk? {
                let id = std::str::from_utf8(&key).map_err(|e| corrupt("deny key", e))?;
                let entry: DenyEntryRef<'_> =
                    postcard::from_bytes(&value).map_err(|e| corrupt("deny entry", e))?;
                let entry = rescind_core::DenyEntry {
                    expires_at_ms: entry.expires_at_ms,
                    revoked_at_ms: entry.revoked_at_ms,
                    origin: OriginId::new(entry.origin.node, entry.origin.incarnation),
                };
                // Time 0: nothing is pruned while reading; GC after start does it.
                state.merge_deny(id, &entry, 0);
            }
        }
        Ok(())
    })
}

/// Send the entries whose key starts with byte `first` in chunks; false
/// when reading failed or the merging side stopped.
fn send_range(deny: &Tree, first: u8, tx: &LoadSender) -> bool {
    let keys = match first {
        0 => deny.range(..[1u8]),
        255 => deny.range([255u8]..),
        b => deny.range([b]..[b + 1]),
    };
    let mut chunk = Vec::with_capacity(LOAD_CHUNK);
    for item in keys {
        match item {
            Ok(kv) => chunk.push(kv),
            Err(e) => {
                let _ = tx.send(Err(e));
                return false;
            }
        }
        if chunk.len() == LOAD_CHUNK {
            let full = std::mem::replace(&mut chunk, Vec::with_capacity(LOAD_CHUNK));
            if tx.send(Ok(full)).is_err() {
                return false;
            }
        }
    }
    chunk.is_empty() || tx.send(Ok(chunk)).is_ok()
}
