//! The writer thread: the only mutator of a node's state, and its group commit.
//!
//! Jobs queue on a bounded channel. The writer takes every job waiting (up to
//! [`MAX_JOBS_PER_FLUSH`]), applies them to memory under one short write lock,
//! commits what changed in one store transaction, flushes once, and only then
//! answers every caller. Concurrent revokes therefore share one flush, and no
//! revoke is acknowledged before it is durable (DESIGN.md §3).
//!
//! If a commit or flush fails the writer answers every job in the batch with an
//! error and refuses all later writes: memory may now hold revocations that
//! were never acknowledged (harmless: they only revoke more), and the operator
//! must restart the node, which rebuilds memory from what is durable.

use std::sync::Arc;

use rescind_core::{ConsistencyToken, Op, Payload, State};
use rescind_store::{Store, WriteBatch};
use tokio::sync::{mpsc, oneshot};

use crate::engine::{EngineError, RevokeCommand, RevokeOutcome, RevokeTarget, Shared};

/// Most jobs folded into one flush.
pub const MAX_JOBS_PER_FLUSH: usize = 4096;

/// A unit of work for the writer.
pub(crate) enum Job {
    /// A local revoke.
    Revoke {
        cmd: RevokeCommand,
        reply: oneshot::Sender<Result<RevokeOutcome, EngineError>>,
    },
    /// Expiry GC.
    Prune {
        reply: oneshot::Sender<Result<usize, EngineError>>,
    },
}

/// An answer held back until the batch is durable.
enum Pending {
    Revoke(oneshot::Sender<Result<RevokeOutcome, EngineError>>, RevokeOutcome),
    Prune(oneshot::Sender<Result<usize, EngineError>>, usize),
}

impl Pending {
    fn send(self, failure: Option<&EngineError>) {
        // A caller that gave up (dropped its receiver) needs no answer.
        let _ = match (self, failure) {
            (Pending::Revoke(tx, out), None) => tx.send(Ok(out)).map_err(drop),
            (Pending::Revoke(tx, _), Some(e)) => tx.send(Err(e.clone())).map_err(drop),
            (Pending::Prune(tx, n), None) => tx.send(Ok(n)).map_err(drop),
            (Pending::Prune(tx, _), Some(e)) => tx.send(Err(e.clone())).map_err(drop),
        };
    }
}

pub(crate) fn spawn(
    shared: Arc<Shared>,
    store: Arc<dyn Store>,
    jobs: mpsc::Receiver<Job>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("rescind-writer".into())
        .spawn(move || run(&shared, &*store, jobs))
}

fn run(shared: &Shared, store: &dyn Store, mut jobs: mpsc::Receiver<Job>) {
    let mut broken: Option<EngineError> = None;
    while let Some(first) = jobs.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_JOBS_PER_FLUSH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let span = tracing::debug_span!("write_batch", jobs = batch.len());
        let _enter = span.enter();
        if let Some(e) = &broken {
            for job in batch {
                plan_failed(job).send(Some(e));
            }
            continue;
        }
        let now = shared.clock.now_ms();
        let mut writes = WriteBatch::default();
        let pending: Vec<Pending> = {
            let mut state = shared.state.write();
            batch
                .into_iter()
                .map(|job| apply(shared, &mut state, job, now, &mut writes))
                .collect()
        };
        shared.applied.send_modify(|n| *n += 1);
        let result = store.commit(&writes).and_then(|()| store.flush());
        let failure = result.err().map(|e| {
            tracing::error!(error = %e, "storage failed; refusing further writes until restart");
            EngineError::from(e)
        });
        for p in pending {
            p.send(failure.as_ref());
        }
        broken = failure;
    }
}

fn plan_failed(job: Job) -> Pending {
    match job {
        Job::Revoke { reply, .. } => Pending::Revoke(
            reply,
            RevokeOutcome {
                token: ConsistencyToken { dots: Vec::new() },
                already_revoked: false,
                seq: 0,
            },
        ),
        Job::Prune { reply } => Pending::Prune(reply, 0),
    }
}

fn apply(shared: &Shared, state: &mut State, job: Job, now: u64, writes: &mut WriteBatch) -> Pending {
    match job {
        Job::Prune { reply } => {
            let ids = state.prune_expired(now);
            let n = ids.len();
            writes.deny_delete.extend(ids.into_iter().map(String::from));
            Pending::Prune(reply, n)
        }
        Job::Revoke { cmd, reply } => Pending::Revoke(reply, revoke(shared, state, cmd, now, writes)),
    }
}

/// Turn a revoke into an op (or notice it changes nothing) and apply it.
fn revoke(
    shared: &Shared,
    state: &mut State,
    cmd: RevokeCommand,
    now: u64,
    writes: &mut WriteBatch,
) -> RevokeOutcome {
    let payload = match cmd.target {
        RevokeTarget::Token {
            token_id,
            expires_at_ms,
        } => {
            if state
                .deny()
                .get(&token_id)
                .is_some_and(|m| m.outlives(expires_at_ms))
            {
                return already(state);
            }
            Payload::Token {
                token_id,
                expires_at_ms,
                revoked_at_ms: now,
                reason: cmd.reason,
                actor: cmd.actor,
            }
        }
        RevokeTarget::Cutoff {
            kind,
            principal,
            mut cutoff,
        } => {
            if cutoff.issued_before_ms == 0 {
                cutoff.issued_before_ms = now;
            }
            if state
                .cutoffs()
                .get(kind, &principal)
                .is_some_and(|c| c.covers(cutoff))
            {
                return already(state);
            }
            Payload::Cutoff {
                kind,
                principal,
                cutoff,
                revoked_at_ms: now,
                reason: cmd.reason,
                actor: cmd.actor,
            }
        }
    };
    let seq = state.clock().get(&shared.origin) + 1;
    let op = Op {
        origin: shared.origin.clone(),
        seq,
        payload,
    };
    let (_, effect) = state.apply_op(&op, now);
    writes.add_effect(effect);
    writes.clock.push((shared.origin.clone(), seq));
    writes.ops.push(op);
    RevokeOutcome {
        token: ConsistencyToken::for_op(shared.origin.clone(), seq),
        already_revoked: false,
        seq,
    }
}

fn already(state: &State) -> RevokeOutcome {
    RevokeOutcome {
        token: ConsistencyToken::for_clock(state.clock()),
        already_revoked: true,
        seq: 0,
    }
}
