//! The recovery policy: how a start turns the data dir into a state, in one
//! place (the store only reports what it holds).
//!
//! 1. Take the newest checkpoint generation that reads back whole and that
//!    the op log still continues: for every origin, the log's floor (the
//!    highest seq truncated away) is at or below the checkpoint's seq.
//! 2. None: if the log was never truncated, the state is the whole log
//!    replayed onto nothing (a new node, or one that never checkpointed).
//! 3. Otherwise the state cannot be rebuilt here: [`Recovery::NeedsPeer`].
//!    The node must not answer "allowed" from what it has; it starts in
//!    recovery (checks answer `UNAVAILABLE`) and pulls a snapshot from a
//!    peer, or, with no peer configured, refuses to start, naming the file.
//!
//! Replaying the log applies every op after the base's vector, for every
//! origin that has ops (including ops held above a gap), at the base's
//! expiry watermark, so entries pruned before the checkpoint stay pruned.

use std::collections::BTreeMap;

use rescind_core::{OriginId, State};
use rescind_store::{Store, StoreError};

/// Ops read from the log per call while replaying.
const REPLAY_CHUNK: usize = 4096;

/// What start-up recovered.
#[derive(Debug)]
pub enum Recovery {
    /// The whole durable state.
    Ready {
        /// The state.
        state: State,
        /// How it was built.
        report: Report,
    },
    /// The durable state cannot be rebuilt from this data dir alone.
    NeedsPeer {
        /// What the tail of the log still gives (never served as an answer).
        state: State,
        /// How it was built, and why it is not enough.
        report: Report,
    },
}

/// How a state was rebuilt, for the start-up log and error messages.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    /// The checkpoint generation used (None: none).
    pub generation: Option<u64>,
    /// Ops replayed from the log on top.
    pub replayed_ops: u64,
    /// Checkpoints that could not be used, with why (file path first).
    pub unusable: Vec<String>,
    /// The generation the next checkpoint takes.
    pub next_generation: u64,
    /// The expiry watermark of the base (0: none).
    pub pruned_before_ms: u64,
    /// The base checkpoint's own vector (before the replay): the bound of
    /// the next compaction.
    pub base_clock: Option<Vec<(OriginId, u64)>>,
    /// Generations that could not be read (set aside by the engine so they
    /// do not count as kept).
    pub damaged: Vec<u64>,
    /// Per origin, the log's floor: what the state must cover to be whole.
    pub floor: Vec<(OriginId, u64)>,
}

impl Report {
    /// One line saying what is wrong, for the refusal to start.
    pub fn problem(&self) -> String {
        if self.unusable.is_empty() {
            "no checkpoint file is left, and the op log before it was compacted away".into()
        } else {
            format!(
                "{}; and the op log before them was compacted away",
                self.unusable.join("; ")
            )
        }
    }
}

/// Rebuild the state of `store` (see the module doc).
pub fn recover(store: &dyn Store, expiry_grace_ms: u64) -> Result<Recovery, StoreError> {
    let checkpoints = store.checkpoints();
    let generations = checkpoints.generations()?;
    let floor: BTreeMap<OriginId, u64> = store.log_floor()?.into_iter().collect();
    let mut report = Report {
        next_generation: generations.first().map_or(1, |g| g + 1),
        floor: floor.iter().map(|(o, s)| (o.clone(), *s)).collect(),
        ..Report::default()
    };
    let mut base = None;
    for generation in generations {
        let path = checkpoints.path(generation);
        match checkpoints.load(generation, expiry_grace_ms) {
            Ok((state, header)) => {
                let continued = floor.iter().all(|(origin, at)| state.clock().get(origin) >= *at);
                if continued {
                    report.generation = Some(generation);
                    report.pruned_before_ms = header.pruned_before_ms;
                    report.base_clock = Some(header.clock);
                    base = Some(state);
                    break;
                }
                report.unusable.push(format!(
                    "{} is older than what the op log still holds",
                    path.display()
                ));
            }
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "checkpoint unusable");
                report
                    .unusable
                    .push(format!("{} is unusable: {e}", path.display()));
                report.damaged.push(generation);
            }
        }
    }
    let ready = base.is_some() || floor.is_empty();
    let mut state = base.unwrap_or_else(|| State::new(expiry_grace_ms));
    for origin in store.log_origins()? {
        let mut after = state.clock().get(&origin);
        loop {
            let ops = store.ops_after(&origin, after, REPLAY_CHUNK)?;
            let Some(last) = ops.last() else { break };
            after = last.seq;
            for op in &ops {
                state.apply_op(op, report.pruned_before_ms);
            }
            report.replayed_ops += ops.len() as u64;
        }
    }
    Ok(if ready {
        Recovery::Ready { state, report }
    } else {
        Recovery::NeedsPeer { state, report }
    })
}

#[cfg(test)]
mod tests {
    use rescind_core::check::CheckQuery;
    use rescind_core::{Op, Payload};
    use rescind_store::{Identity, MemStore};

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

    /// A store with ops 1..=n of its origin, and the state they make.
    fn store_with(n: u64) -> (MemStore, State) {
        let store = MemStore::with_identity(Identity {
            node_name: "a".into(),
            incarnation: 1,
        });
        let me = store.identity().origin();
        let mut state = State::new(0);
        let ops: Vec<Op> = (1..=n).map(|s| op(&me, s)).collect();
        for o in &ops {
            state.apply_op(o, 0);
        }
        store.append(&ops).unwrap();
        (store, state)
    }

    fn ready(r: Recovery) -> (State, Report) {
        match r {
            Recovery::Ready { state, report } => (state, report),
            Recovery::NeedsPeer { report, .. } => panic!("needs a peer: {}", report.problem()),
        }
    }

    #[test]
    fn a_new_store_is_the_whole_log_replayed() {
        let (store, state) = store_with(20);
        let (back, report) = ready(recover(&store, 0).unwrap());
        assert_eq!(back, state);
        assert_eq!(
            (report.generation, report.replayed_ops, report.next_generation),
            (None, 20, 1)
        );
    }

    #[test]
    fn the_newest_checkpoint_plus_the_tail_is_the_state() {
        let (store, mut state) = store_with(20);
        store.checkpoints().save(&state, 1, 0, 0).unwrap();
        store.truncate_log(&[(store.identity().origin(), 15)]).unwrap();
        let me = store.identity().origin();
        let more: Vec<Op> = (21..=25).map(|s| op(&me, s)).collect();
        for o in &more {
            state.apply_op(o, 0);
        }
        store.append(&more).unwrap();
        let (back, report) = ready(recover(&store, 0).unwrap());
        assert_eq!(back, state);
        assert_eq!(
            (report.generation, report.replayed_ops, report.next_generation),
            (Some(1), 5, 2)
        );
    }

    #[test]
    fn a_damaged_newest_generation_falls_back_to_the_one_before() {
        let (store, state) = store_with(20);
        let me = store.identity().origin();
        let mut older = State::new(0);
        for s in 1..=10 {
            older.apply_op(&op(&me, s), 0);
        }
        store.checkpoints().save(&older, 1, 0, 0).unwrap();
        store.checkpoints().save(&state, 2, 0, 0).unwrap();
        store.truncate_log(&[(me, 10)]).unwrap();
        let path = store.checkpoints().path(2);
        let mut bytes = store.files().get(&path).unwrap();
        let at = bytes.len() / 2;
        bytes[at] ^= 1;
        store.files().put(&path, bytes);
        let (back, report) = ready(recover(&store, 0).unwrap());
        assert_eq!(back, state);
        assert_eq!((report.generation, report.replayed_ops), (Some(1), 10));
        assert_eq!(report.unusable.len(), 1);
    }

    #[test]
    fn damage_with_a_truncated_log_needs_a_peer_and_names_the_file() {
        let (store, state) = store_with(20);
        let me = store.identity().origin();
        store.checkpoints().save(&state, 1, 0, 0).unwrap();
        store.truncate_log(&[(me.clone(), 18)]).unwrap();
        let path = store.checkpoints().path(1);
        let bytes = store.files().get(&path).unwrap();
        store.files().put(&path, bytes[..bytes.len() - 7].to_vec());
        match recover(&store, 0).unwrap() {
            Recovery::NeedsPeer { state, report } => {
                assert!(
                    report.problem().contains(&path.display().to_string()),
                    "{}",
                    report.problem()
                );
                assert_eq!(state.clock().get(&me), 0, "claims nothing it lacks");
                assert!(!state.check(&CheckQuery::token("t1")).revoked());
            }
            Recovery::Ready { .. } => panic!("partial state served as whole"),
        }
        // With the file gone altogether, the same.
        rescind_store::Fs::remove(store.files(), &path).unwrap();
        assert!(matches!(recover(&store, 0).unwrap(), Recovery::NeedsPeer { .. }));
    }
}
