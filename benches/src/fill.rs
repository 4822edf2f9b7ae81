//! Fill a fresh data dir with N revocations as a node would have left them
//! right after a checkpoint: every op in the log, and checkpoint generation
//! 1 holding the state they make. Used to measure restarts and compaction
//! with tens of millions of entries without sending them over gRPC.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use rescind_core::{Op, Payload, State};
use rescind_store::{RealFs, SledStore, Store};

use crate::uuid_like;

/// Ops per append.
const BATCH: u64 = 10_000;

/// Write revocations of `uuid_like(0, 0..count)` into `data_dir` (which must
/// be fresh), printing progress to stderr. The node that later opens
/// `data_dir` owns them (same identity).
pub fn fill(data_dir: &Path, count: u64, cache_mb: u64) -> anyhow::Result<()> {
    std::fs::create_dir_all(data_dir)?;
    let (store, _) = SledStore::open_with(data_dir, None, "rescind-fill", cache_mb << 20, Arc::new(RealFs))?;
    if !store.log_origins()?.is_empty() || !store.checkpoints().generations()?.is_empty() {
        anyhow::bail!(
            "{} already holds revocations; fill needs a fresh data dir",
            data_dir.display()
        );
    }
    let origin = store.identity().origin();
    let started = Instant::now();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let mut state = State::new(0);
    state.reserve_deny(count as usize);
    let mut next = 0u64;
    while next < count {
        let end = (next + BATCH).min(count);
        let ops: Vec<Op> = (next..end)
            .map(|i| Op {
                origin: origin.clone(),
                seq: i + 1,
                payload: Payload::Token {
                    token_id: uuid_like(0, i),
                    expires_at_ms: 0,
                    revoked_at_ms: now_ms,
                    reason: "rescind-bench fill".into(),
                    actor: "rescind-bench".into(),
                },
            })
            .collect();
        for op in &ops {
            state.apply_op(op, 0);
        }
        store.append(&ops)?;
        next = end;
        if next.is_multiple_of(500_000) || next == count {
            eprintln!(
                "fill: {next}/{count} ({:.0}/s)",
                next as f64 / started.elapsed().as_secs_f64().max(1e-9)
            );
        }
    }
    store.flush()?;
    let saved = store.checkpoints().save(&state, 1, 0, now_ms)?;
    eprintln!(
        "fill: {count} revocations written in {:.1} s (checkpoint {} bytes)",
        started.elapsed().as_secs_f64(),
        saved.bytes
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_filled_store_loads_back_with_every_id_revoked() {
        let dir = tempfile::tempdir().unwrap();
        super::fill(dir.path(), 25_000, 8).unwrap();
        let store = rescind_store::SledStore::open(dir.path(), None, "x").unwrap();
        let (state, header) = rescind_store::Store::checkpoints(&store).load(1, 0).unwrap();
        assert_eq!(state.deny().len(), 25_000);
        let origin = rescind_store::Store::identity(&store).origin();
        assert_eq!(state.clock().get(&origin), 25_000);
        assert_eq!(header.clock, vec![(origin.clone(), 25_000)]);
        assert_eq!(
            rescind_store::Store::ops_after(&store, &origin, 24_990, 100)
                .unwrap()
                .len(),
            10
        );
        for i in [0, 9_999, 10_000, 24_999] {
            let id = crate::uuid_like(0, i);
            assert!(
                state.check(&rescind_core::CheckQuery::token(&id)).revoked(),
                "{i}"
            );
        }
        assert!(
            !state
                .check(&rescind_core::CheckQuery::token(&crate::uuid_like(1, 0)))
                .revoked()
        );
        // A second fill would mix ids with ones already there: refused.
        drop(store);
        let err = super::fill(dir.path(), 10, 8).unwrap_err().to_string();
        assert!(err.contains("fresh data dir"), "{err}");
    }
}
