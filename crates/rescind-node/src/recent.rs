//! [`RecentOps`]: the newest durable ops of each origin, in memory, so Watch
//! streams following the head of the log plan from memory instead of each
//! reading the store (100 subscribers would otherwise be 100 store reads per
//! flush).
//!
//! Per origin it holds one contiguous run of seqs `lo..=hi`, in the order the
//! writer made them durable. An op that arrives past a gap (`seq > hi + 1`,
//! possible when peers deliver out of order) starts a new run; one below the
//! run is ignored (the store has it). [`OpLog::ops_after`] answers only when
//! the run covers the start of the request, with exactly what the store
//! would answer; otherwise it fails, and the caller reads the store.

use std::collections::{BTreeMap, VecDeque};

use parking_lot::RwLock;
use rescind_core::{Op, OriginId};
use rescind_gossip::{OpLog, SourceError};

/// Ops kept per origin.
pub const PER_ORIGIN: usize = 8192;
/// Origins kept; the least recently written is forgotten first.
pub const ORIGINS: usize = 256;

#[derive(Default)]
struct Run {
    ops: VecDeque<Op>,
    /// The writer's batch count when this origin last got an op.
    touched: u64,
}

/// The newest durable ops per origin (see the module doc).
#[derive(Default)]
pub struct RecentOps {
    runs: RwLock<(BTreeMap<OriginId, Run>, u64)>,
}

impl RecentOps {
    /// Record ops that just became durable, in the order they were written.
    pub fn extend<'a>(&self, ops: impl IntoIterator<Item = &'a Op>) {
        let mut guard = self.runs.write();
        let (runs, batch) = &mut *guard;
        *batch += 1;
        for op in ops {
            let run = runs.entry(op.origin.clone()).or_default();
            run.touched = *batch;
            let hi = run.ops.back().map(|o| o.seq);
            match hi {
                Some(hi) if op.seq <= hi => continue,
                Some(hi) if op.seq == hi + 1 => {}
                _ => run.ops.clear(),
            }
            run.ops.push_back(op.clone());
            if run.ops.len() > PER_ORIGIN {
                run.ops.pop_front();
            }
        }
        while runs.len() > ORIGINS {
            let Some(oldest) = runs.iter().min_by_key(|(_, r)| r.touched).map(|(o, _)| o.clone()) else {
                break;
            };
            runs.remove(&oldest);
        }
    }
}

impl OpLog for RecentOps {
    fn ops_after(&self, origin: &OriginId, after_seq: u64, limit: usize) -> Result<Vec<Op>, SourceError> {
        let guard = self.runs.read();
        let run = guard
            .0
            .get(origin)
            .filter(|r| r.ops.front().is_some_and(|o| o.seq <= after_seq + 1))
            .ok_or_else(|| SourceError(format!("ops of {origin} after {after_seq} are not in memory")))?;
        let lo = run.ops.front().map_or(0, |o| o.seq);
        let skip = usize::try_from(after_seq + 1 - lo).unwrap_or(usize::MAX);
        Ok(run.ops.iter().skip(skip).take(limit).cloned().collect())
    }
}

#[cfg(test)]
mod tests {
    use rescind_core::Payload;

    use super::*;

    fn op(origin: &OriginId, seq: u64) -> Op {
        Op {
            origin: origin.clone(),
            seq,
            payload: Payload::Token {
                token_id: format!("t{seq}"),
                expires_at_ms: 0,
                revoked_at_ms: seq,
                reason: String::new(),
                actor: String::new(),
            },
        }
    }

    fn seqs(r: &Result<Vec<Op>, SourceError>) -> Option<Vec<u64>> {
        r.as_ref().ok().map(|ops| ops.iter().map(|o| o.seq).collect())
    }

    #[test]
    fn serves_only_what_its_run_covers_and_restarts_after_a_gap() {
        let a = OriginId::new("a", 1);
        let recent = RecentOps::default();
        recent.extend(&[op(&a, 1), op(&a, 2), op(&a, 3)]);
        assert_eq!(seqs(&recent.ops_after(&a, 0, 10)), Some(vec![1, 2, 3]));
        assert_eq!(seqs(&recent.ops_after(&a, 1, 1)), Some(vec![2]));
        assert_eq!(seqs(&recent.ops_after(&a, 3, 10)), Some(vec![]));
        assert!(recent.ops_after(&OriginId::new("b", 1), 0, 10).is_err());
        // Out of order: 5 past a gap starts a new run; 4 below it is ignored.
        recent.extend(&[op(&a, 5)]);
        recent.extend(&[op(&a, 4), op(&a, 2)]);
        assert!(
            recent.ops_after(&a, 2, 10).is_err(),
            "4 is not in memory: read the store"
        );
        assert_eq!(seqs(&recent.ops_after(&a, 4, 10)), Some(vec![5]));
    }

    #[test]
    fn memory_is_bounded_per_origin_and_in_origins() {
        let a = OriginId::new("a", 1);
        let recent = RecentOps::default();
        let many: Vec<Op> = (1..=PER_ORIGIN as u64 + 10).map(|s| op(&a, s)).collect();
        recent.extend(&many);
        assert!(
            recent.ops_after(&a, 0, 10).is_err(),
            "the oldest ops were dropped"
        );
        assert_eq!(seqs(&recent.ops_after(&a, 10, 1)), Some(vec![11]));
        for i in 0..ORIGINS as u64 + 5 {
            recent.extend(&[op(&OriginId::new(format!("o{i}"), 1), 1)]);
        }
        assert!(recent.runs.read().0.len() <= ORIGINS);
        assert!(
            recent.ops_after(&a, 10, 1).is_err(),
            "the least recently written origin went first"
        );
    }
}
