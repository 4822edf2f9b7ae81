//! Fill a fresh data dir with N revocations straight through the store, as a
//! node's writer would have committed them: op log, deny entries and version
//! vector, in batches, flushed at the end. Used to measure a restart with
//! tens of millions of entries without first sending them over gRPC.

use std::path::Path;
use std::time::Instant;

use rescind_core::{DenyEntry, Op, Payload};
use rescind_store::{SledStore, Store, WriteBatch};

use crate::uuid_like;

/// Ops per commit.
const BATCH: u64 = 10_000;

/// Write revocations of `uuid_like(0, 0..count)` into `data_dir` (which must
/// not hold any revocations yet), printing progress to stderr. The node that
/// later opens `data_dir` owns them (same identity, same sled path).
pub fn fill(data_dir: &Path, count: u64, cache_mb: u64) -> anyhow::Result<()> {
    std::fs::create_dir_all(data_dir)?;
    let store = SledStore::open_with_cache(&data_dir.join("db"), None, "rescind-fill", cache_mb << 20)?;
    if !store.clock()?.is_empty() {
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
    let mut next = 0u64;
    while next < count {
        let end = (next + BATCH).min(count);
        let mut batch = WriteBatch::default();
        for i in next..end {
            let token_id = uuid_like(0, i);
            batch.deny_put.push((
                token_id.clone(),
                DenyEntry {
                    expires_at_ms: 0,
                    revoked_at_ms: now_ms,
                    origin: origin.clone(),
                },
            ));
            batch.ops.push(Op {
                origin: origin.clone(),
                seq: i + 1,
                payload: Payload::Token {
                    token_id,
                    expires_at_ms: 0,
                    revoked_at_ms: now_ms,
                    reason: "rescind-bench fill".into(),
                    actor: "rescind-bench".into(),
                },
            });
        }
        batch.clock.push((origin.clone(), end));
        batch.deny_count = Some(end);
        store.commit(&batch)?;
        next = end;
        if next.is_multiple_of(500_000) || next == count {
            eprintln!(
                "fill: {next}/{count} ({:.0}/s)",
                next as f64 / started.elapsed().as_secs_f64().max(1e-9)
            );
        }
    }
    store.flush()?;
    eprintln!(
        "fill: {count} revocations written in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_filled_store_loads_back_with_every_id_revoked() {
        let dir = tempfile::tempdir().unwrap();
        super::fill(dir.path(), 25_000, 8).unwrap();
        let store =
            rescind_store::SledStore::open_with_cache(&dir.path().join("db"), None, "x", 8 << 20).unwrap();
        let mut state = rescind_core::State::new(0);
        let stats = rescind_store::Store::load_into(&store, &mut state).unwrap();
        assert_eq!(stats.deny_entries, 25_000);
        assert_eq!(
            state
                .clock()
                .get(&rescind_store::Store::identity(&store).origin()),
            25_000
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
