//! The writer: the only mutator of a node's state, and its group commit.
//!
//! Jobs queue on a bounded channel. The writer takes every job waiting (up to
//! [`MAX_JOBS_PER_FLUSH`]), applies them to memory under one short write lock,
//! commits what changed in one store transaction, flushes once, publishes the
//! new *durable* version vector, and only then answers every caller and hands
//! the new local ops to the eager pusher. Concurrent revokes therefore share
//! one flush, no revoke is acknowledged before it is durable (docs/design.md §3),
//! and no op is gossiped before its origin can no longer lose it.
//!
//! What is written is the op log only: the deny set and cutoffs reach disk
//! in checkpoints ([`crate::checkpointer`]), which the writer schedules
//! between batches. Entries adopted from a peer's snapshot have no ops, so
//! the batch that completes a snapshot takes a checkpoint before its vector
//! becomes durable. Expiry GC changes memory only; the next checkpoint
//! leaves the expired entries out.
//!
//! If a commit, flush or adoption checkpoint fails the writer answers every
//! job in the batch with an error and refuses all later writes: memory may
//! now hold revocations that were never acknowledged (harmless: they only
//! revoke more), and the operator must restart the node, which rebuilds
//! memory from what is durable.

use std::sync::Arc;

use rescind_core::{ConsistencyToken, Cutoff, DenyEntry, Op, OriginId, Payload, PrincipalKind, State};
use rescind_store::Store;
use tokio::sync::{mpsc, oneshot};

use crate::checkpointer::Checkpointer;
use crate::engine::{EngineError, RevokeCommand, RevokeOutcome, RevokeTarget, Shared, WriterHandle};

/// Most jobs folded into one flush.
pub const MAX_JOBS_PER_FLUSH: usize = 4096;

type Reply<T> = oneshot::Sender<Result<T, EngineError>>;

/// A unit of work for the writer.
pub(crate) enum Job {
    /// A local revoke.
    Revoke {
        cmd: RevokeCommand,
        reply: Reply<RevokeOutcome>,
    },
    /// Local revokes that share one durable write, answered in order.
    RevokeBatch {
        cmds: Vec<RevokeCommand>,
        reply: Reply<Vec<RevokeOutcome>>,
    },
    /// Ops from a peer (already validated); answers how many were new.
    Remote { ops: Vec<Op>, reply: Reply<usize> },
    /// One page of a peer's snapshot; `clock` on the last page.
    Snapshot {
        deny: Vec<(String, DenyEntry)>,
        cutoffs: Vec<(PrincipalKind, String, Cutoff)>,
        clock: Option<Vec<(OriginId, u64)>>,
        reply: Reply<usize>,
    },
    /// Expiry GC; answers how many entries went.
    Prune { reply: Reply<usize> },
}

/// An answer held back until the batch is durable.
enum Pending {
    Revoke(Reply<RevokeOutcome>, RevokeOutcome),
    Many(Reply<Vec<RevokeOutcome>>, Vec<RevokeOutcome>),
    Count(Reply<usize>, usize),
}

impl Pending {
    fn send(self, failure: Option<&EngineError>) {
        // A caller that gave up (dropped its receiver) needs no answer.
        match (self, failure) {
            (Pending::Revoke(tx, out), None) => drop(tx.send(Ok(out))),
            (Pending::Revoke(tx, _), Some(e)) => drop(tx.send(Err(e.clone()))),
            (Pending::Many(tx, outs), None) => drop(tx.send(Ok(outs))),
            (Pending::Many(tx, _), Some(e)) => drop(tx.send(Err(e.clone()))),
            (Pending::Count(tx, n), None) => drop(tx.send(Ok(n))),
            (Pending::Count(tx, _), Some(e)) => drop(tx.send(Err(e.clone()))),
        }
    }

    fn failed(job: Job) -> Pending {
        match job {
            Job::Revoke { reply, .. } => Pending::Revoke(
                reply,
                RevokeOutcome {
                    token: ConsistencyToken { dots: Vec::new() },
                    already_revoked: false,
                    seq: 0,
                },
            ),
            Job::RevokeBatch { reply, .. } => Pending::Many(reply, Vec::new()),
            Job::Remote { reply, .. } | Job::Snapshot { reply, .. } | Job::Prune { reply } => {
                Pending::Count(reply, 0)
            }
        }
    }
}

/// Start the writer: its own thread for a store that blocks, a task on the
/// current runtime for one that does not.
pub(crate) fn spawn(
    shared: Arc<Shared>,
    store: Arc<dyn Store>,
    mut jobs: mpsc::Receiver<Job>,
    local_ops: mpsc::Sender<Op>,
    mut checkpoints: Checkpointer,
) -> std::io::Result<WriterHandle> {
    if store.blocks() {
        std::thread::Builder::new()
            .name("rescind-writer".into())
            .spawn(move || {
                let mut run = Run::new(&shared, &*store, &local_ops, &mut checkpoints);
                while let Some(first) = jobs.blocking_recv() {
                    run.batch(first, &mut jobs);
                }
                run.finish();
            })
            .map(WriterHandle::Thread)
    } else {
        Ok(WriterHandle::Task(tokio::spawn(async move {
            let mut run = Run::new(&shared, &*store, &local_ops, &mut checkpoints);
            while let Some(first) = jobs.recv().await {
                run.batch(first, &mut jobs);
            }
            run.finish();
        })))
    }
}

/// The writer's loop state, the same on a thread or a task.
struct Run<'a> {
    shared: &'a Arc<Shared>,
    store: &'a dyn Store,
    local_ops: &'a mpsc::Sender<Op>,
    checkpoints: &'a mut Checkpointer,
    broken: Option<EngineError>,
}

impl<'a> Run<'a> {
    fn new(
        shared: &'a Arc<Shared>,
        store: &'a dyn Store,
        local_ops: &'a mpsc::Sender<Op>,
        checkpoints: &'a mut Checkpointer,
    ) -> Self {
        Self {
            shared,
            store,
            local_ops,
            checkpoints,
            broken: None,
        }
    }

    /// One batch, then a checkpoint if one is due.
    fn batch(&mut self, first: Job, jobs: &mut mpsc::Receiver<Job>) {
        let mut w = Writer {
            shared: self.shared,
            store: self.store,
            broken: &mut self.broken,
            local_ops: self.local_ops,
            checkpoints: self.checkpoints,
        };
        w.batch(first, jobs);
        if self.broken.is_none() && !self.shared.recovering() {
            self.checkpoints.tick(self.shared);
        }
    }

    /// After the last job: a last checkpoint. A partial state (recovering)
    /// is never checkpointed: only the adoption of a snapshot writes one.
    fn finish(self) {
        if self.broken.is_none() && !self.shared.recovering() {
            self.checkpoints.finish(self.shared);
        }
    }
}

/// What one batch changed.
#[derive(Default)]
struct Batch {
    /// Ops to append to the log.
    ops: Vec<Op>,
    /// New local ops, for the eager pusher once durable.
    local: Vec<Op>,
    /// Memory changed beyond the ops (snapshot entries, expiry).
    changed: bool,
    /// A snapshot covering this vector was completed: checkpoint before its
    /// vector is durable.
    adopted: Option<Vec<(OriginId, u64)>>,
    /// The op ranges that snapshot covered which this node never received.
    gaps: Vec<rescind_store::AuditGap>,
}

/// The writer's view while it runs one batch.
struct Writer<'a> {
    shared: &'a Arc<Shared>,
    store: &'a dyn Store,
    broken: &'a mut Option<EngineError>,
    local_ops: &'a mpsc::Sender<Op>,
    checkpoints: &'a mut Checkpointer,
}

impl Writer<'_> {
    /// Take `first` and every job waiting behind it, apply, commit, flush, answer.
    fn batch(&mut self, first: Job, jobs: &mut mpsc::Receiver<Job>) {
        let shared = self.shared;
        let mut queue = vec![first];
        while queue.len() < MAX_JOBS_PER_FLUSH {
            match jobs.try_recv() {
                Ok(job) => queue.push(job),
                Err(_) => break,
            }
        }
        let span = tracing::debug_span!("write_batch", jobs = queue.len());
        let _enter = span.enter();
        if let Some(e) = self.broken.as_ref() {
            for job in queue {
                Pending::failed(job).send(Some(e));
            }
            return;
        }
        let now = shared.clock.now_ms();
        let mut batch = Batch::default();
        let (pending, clock_after): (Vec<Pending>, _) = {
            let mut state = shared.state.write();
            let pending = queue
                .into_iter()
                .map(|job| apply(shared, &mut state, job, now, &mut batch))
                .collect();
            (pending, state.clock().clone())
        };
        shared.applied.send_modify(|n| *n += 1);
        let flush_started = std::time::Instant::now();
        let mut result = if batch.ops.is_empty() {
            Ok(())
        } else {
            self.store.append(&batch.ops).and_then(|()| self.store.flush())
        };
        let metrics = &shared.metrics;
        if !batch.ops.is_empty() {
            metrics
                .writer_flush_seconds
                .observe(flush_started.elapsed().as_secs_f64());
            metrics.writer_batch_ops.observe(batch.ops.len() as f64);
        }
        if batch.changed || !batch.ops.is_empty() {
            self.checkpoints.changed(batch.ops.len());
        }
        if let (Ok(()), Some(adopted)) = (&result, &batch.adopted) {
            // The adopted entries have no ops: they are durable only in this
            // checkpoint. Raising the log's floor to the adopted vector makes
            // every older checkpoint unusable, so no start can fall back to
            // one and miss them.
            let gaps = std::mem::take(&mut batch.gaps);
            // The ops this node did receive below the adopted vector leave
            // the log here: their audit records go first.
            result = crate::audit::note_gaps(self.store, gaps, now)
                .and_then(|()| self.checkpoints.now(shared))
                .and_then(|()| crate::audit::copy_before_truncation(self.store, &shared.audit, adopted, now))
                .and_then(|()| self.store.truncate_log(adopted).map(drop));
        }
        let failure = result.err().map(|e| {
            metrics.writer_errors.inc();
            tracing::error!(error = %e, "storage failed; refusing further writes until restart");
            EngineError::from(e)
        });
        if failure.is_none() {
            // Before the durable vector moves, so a Watch stream planning up
            // to it finds every op in memory.
            shared.recent.extend(&batch.ops);
            let moved = {
                let mut durable = shared.durable.lock();
                let moved = *durable != clock_after;
                *durable = clock_after;
                moved
            };
            if moved {
                shared.durable_moved.send_modify(|n| *n += 1);
            }
            if let (Some(first), Some(last)) = (batch.local.first(), batch.local.last()) {
                metrics.propagation.acked(first.seq, last.seq);
            }
            let local = batch.local.len() as u64;
            if local > 0 {
                metrics.ops_applied(false, local);
            }
            if batch.ops.len() as u64 > local {
                metrics.ops_applied(true, batch.ops.len() as u64 - local);
            }
            for op in batch.local {
                // A full queue only delays the op until the next anti-entropy round.
                let _ = self.local_ops.try_send(op);
            }
        }
        for p in pending {
            p.send(failure.as_ref());
        }
        *self.broken = failure;
    }
}

fn apply(shared: &Shared, state: &mut State, job: Job, now: u64, batch: &mut Batch) -> Pending {
    match job {
        Job::Prune { reply } => {
            let before = state.deny().len() as u64;
            let n = state.prune_expired(now).len();
            *shared.gc_last.lock() = (before, state.deny().len() as u64);
            shared.set_gc_watermark(now);
            batch.changed |= n > 0;
            Pending::Count(reply, n)
        }
        Job::Revoke { cmd, reply } => Pending::Revoke(reply, revoke(shared, state, cmd, now, batch)),
        Job::RevokeBatch { cmds, reply } => {
            // Each sees the ones before it: a batch that names an id twice
            // writes it once.
            let outs = cmds
                .into_iter()
                .map(|cmd| revoke(shared, state, cmd, now, batch))
                .collect();
            Pending::Many(reply, outs)
        }
        Job::Remote { ops, reply } => {
            let mut fresh = 0;
            let total = ops.len();
            for op in ops {
                let (is_new, _) = state.apply_op(&op, now);
                if is_new {
                    fresh += 1;
                    batch.ops.push(op);
                }
            }
            let dups = (total - fresh) as u64;
            shared
                .gossip
                .duplicate_ops
                .fetch_add(dups, std::sync::atomic::Ordering::Relaxed);
            shared.metrics.gossip.duplicate_ops.inc_by(dups);
            Pending::Count(reply, fresh)
        }
        Job::Snapshot {
            deny,
            cutoffs,
            clock,
            reply,
        } => {
            let mut changed = 0;
            for (id, entry) in &deny {
                let effect = state.merge_deny(id, entry, now);
                changed += usize::from(effect != rescind_core::Effect::None);
            }
            for (kind, principal, cutoff) in &cutoffs {
                let effect = state.merge_cutoff(*kind, principal, *cutoff);
                changed += usize::from(effect != rescind_core::Effect::None);
            }
            batch.changed |= changed > 0;
            if let Some(clock) = clock {
                for (origin, seq) in &clock {
                    let before = state.clock().get(origin);
                    if *seq > before {
                        batch.gaps.push(rescind_store::AuditGap {
                            origin: origin.clone(),
                            from_seq: before + 1,
                            to_seq: *seq,
                            noted_at_ms: now,
                        });
                    }
                    state.raise_clock(origin, *seq);
                }
                batch.adopted = Some(clock);
            }
            Pending::Count(reply, changed)
        }
    }
}

/// Turn a revoke into an op (or notice it changes nothing) and apply it.
fn revoke(
    shared: &Shared,
    state: &mut State,
    cmd: RevokeCommand,
    now: u64,
    batch: &mut Batch,
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
            version_only,
        } => {
            if cutoff.issued_before_ms == 0 && !version_only {
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
    state.apply_op(&op, now);
    batch.local.push(op.clone());
    batch.ops.push(op);
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
