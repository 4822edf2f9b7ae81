//! Checkpoints and compaction, scheduled by the writer.
//!
//! Between two batches memory equals what is durable, so that is when the
//! writer takes an image (a copy of the state under the read lock). Writing
//! the file and compacting the log then run on a thread of their own while
//! the writer goes on: revokes wait only for the copy, never for the disk.
//! One checkpoint at a time; the next starts once it is `checkpoint_interval`
//! or `checkpoint_ops` ops later. After a checkpoint is durable the log drops
//! what [`crate::compaction`] allows, and the node's meta (peers' vectors,
//! retired members) is saved with it.
//!
//! A failed checkpoint loses nothing: the log was not compacted past the
//! previous one. The generation number is used up all the same.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rescind_core::{OriginId, State};
use rescind_store::{Saved, Store, StoreError};

use crate::engine::Shared;

/// When checkpoints are taken.
#[derive(Debug, Clone, Copy)]
pub struct CheckpointPolicy {
    /// At most this long between two (zero: only at shutdown and adoption).
    pub every: Duration,
    /// Or after this many ops.
    pub every_ops: u64,
    /// Unacknowledged ops older than this may be compacted away.
    pub op_log_retention: Duration,
}

/// The last checkpoint, for `Status` and logs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CheckpointStatus {
    /// Generation of the newest durable checkpoint (0: none yet).
    pub generation: u64,
    /// Its size.
    pub bytes: u64,
    /// When it was written (unix ms).
    pub at_ms: u64,
    /// How long writing it took.
    pub took_ms: u64,
    /// Ops the log dropped since start.
    pub log_ops_dropped: u64,
    /// Checkpoints that failed since start.
    pub failures: u64,
}

/// What one checkpoint did.
struct Outcome {
    clock: Vec<(OriginId, u64)>,
    result: Result<(Saved, u64), StoreError>,
}

/// The writer's checkpoint scheduler.
pub(crate) struct Checkpointer {
    store: Arc<dyn Store>,
    policy: CheckpointPolicy,
    next_generation: u64,
    /// Vector of the newest durable checkpoint.
    newest: Option<Vec<(OriginId, u64)>>,
    /// When the last checkpoint was taken, on tokio's clock: the OS clock
    /// on the writer thread, simulated time in the simulator (whose writer
    /// is a task), so the cadence never depends on how fast a run goes.
    since: tokio::time::Instant,
    ops_since: u64,
    dirty: bool,
    running: Option<std::thread::JoinHandle<Outcome>>,
}

impl Checkpointer {
    /// A scheduler whose next checkpoint is `next_generation`, `newest`
    /// being the vector of the checkpoint the state was loaded from.
    pub(crate) fn new(
        store: Arc<dyn Store>,
        policy: CheckpointPolicy,
        next_generation: u64,
        newest: Option<Vec<(OriginId, u64)>>,
    ) -> Self {
        Self {
            store,
            policy,
            next_generation,
            newest,
            since: tokio::time::Instant::now(),
            ops_since: 0,
            dirty: false,
            running: None,
        }
    }

    /// The state changed (`ops` new ops logged).
    pub(crate) fn changed(&mut self, ops: usize) {
        self.ops_since += ops as u64;
        self.dirty = true;
    }

    /// Called by the writer between batches: collect a finished checkpoint,
    /// start the next if one is due.
    pub(crate) fn tick(&mut self, shared: &Arc<Shared>) {
        if self.running.as_ref().is_some_and(|t| t.is_finished()) {
            self.collect();
        }
        let due = self.dirty
            && self.running.is_none()
            && ((!self.policy.every.is_zero() && self.since.elapsed() >= self.policy.every)
                || (self.policy.every_ops > 0 && self.ops_since >= self.policy.every_ops));
        if !due {
            return;
        }
        if !self.store.blocks() {
            // In memory (the simulator): inline, deterministic.
            let _ = self.now(shared);
            return;
        }
        let (image, generation, watermark) = self.take_image(shared);
        let (store, shared2, older, retention) = (
            self.store.clone(),
            shared.clone(),
            self.newest.clone(),
            self.policy.op_log_retention,
        );
        let spawned = std::thread::Builder::new()
            .name("rescind-checkpoint".into())
            .spawn(move || {
                write(
                    &*store,
                    &shared2,
                    &image,
                    (generation, watermark),
                    older,
                    retention,
                )
            });
        match spawned {
            Ok(t) => self.running = Some(t),
            Err(e) => tracing::warn!(error = %e, "cannot start the checkpoint thread; retrying later"),
        }
    }

    /// Take a checkpoint now, synchronously (at shutdown, and when adopting
    /// a snapshot, whose entries have no ops in the log and are durable
    /// only once checkpointed).
    pub(crate) fn now(&mut self, shared: &Arc<Shared>) -> Result<(), StoreError> {
        if self.running.is_some() {
            self.collect();
        }
        let (image, generation, watermark) = self.take_image(shared);
        let older = self.newest.clone();
        let retention = self.policy.op_log_retention;
        let outcome = write(
            &*self.store,
            shared,
            &image,
            (generation, watermark),
            older,
            retention,
        );
        let failed = outcome
            .result
            .as_ref()
            .err()
            .map(|e| StoreError::Checkpoint(e.to_string()));
        self.apply(outcome);
        failed.map_or(Ok(()), Err)
    }

    /// At shutdown: wait for a running checkpoint, then take a last one if
    /// anything changed since.
    pub(crate) fn finish(&mut self, shared: &Arc<Shared>) {
        if self.running.is_some() {
            self.collect();
        }
        if self.dirty {
            let _ = self.now(shared);
        }
    }

    /// A copy of the state, its generation and its expiry watermark.
    fn take_image(&mut self, shared: &Shared) -> (State, u64, u64) {
        let image = shared.state.read().clone();
        let watermark = shared.gc_watermark();
        let generation = self.next_generation;
        self.next_generation += 1;
        self.since = tokio::time::Instant::now();
        self.ops_since = 0;
        self.dirty = false;
        (image, generation, watermark)
    }

    fn collect(&mut self) {
        if let Some(t) = self.running.take() {
            match t.join() {
                Ok(outcome) => self.apply(outcome),
                Err(_) => tracing::error!("the checkpoint thread panicked; the log was not compacted"),
            }
        }
    }

    /// What the writer keeps of a finished checkpoint (its status was
    /// reported when it finished: see [`report`]).
    fn apply(&mut self, outcome: Outcome) {
        match outcome.result {
            Ok(_) => self.newest = Some(outcome.clock),
            // Changes since stay to be checkpointed.
            Err(_) => self.dirty = true,
        }
    }
}

/// Report a finished checkpoint as soon as it finishes (status, metrics,
/// log), even if no write comes after it to collect it.
fn report(shared: &Shared, result: &Result<(Saved, u64), StoreError>, took: Duration) {
    let mut status = shared.checkpoint.lock();
    match result {
        Ok((saved, dropped)) => {
            status.generation = saved.generation;
            status.bytes = saved.bytes;
            status.at_ms = shared.clock.now_ms();
            status.took_ms = took.as_millis() as u64;
            status.log_ops_dropped += dropped;
            shared.metrics.checkpoint_seconds.observe(took.as_secs_f64());
            tracing::info!(
                generation = saved.generation,
                bytes = saved.bytes,
                ms = status.took_ms,
                log_ops_dropped = dropped,
                "checkpoint saved"
            );
        }
        Err(e) => {
            status.failures += 1;
            tracing::warn!(error = %e, "checkpoint failed; nothing is lost, the op log keeps everything since the last one");
        }
    }
}

/// Save `image` as `generation` (with its expiry watermark), then compact the log below `older` (the
/// newest checkpoint before it) as far as peers and retention allow, and
/// save the node's meta.
fn write(
    store: &dyn Store,
    shared: &Shared,
    image: &State,
    (generation, watermark): (u64, u64),
    older: Option<Vec<(OriginId, u64)>>,
    retention: Duration,
) -> Outcome {
    let started = Instant::now();
    let clock: Vec<(OriginId, u64)> = image.clock().iter().map(|(o, s)| (o.clone(), s)).collect();
    let now = shared.clock.now_ms();
    let result = store
        .checkpoints()
        .save(image, generation, watermark, now)
        .and_then(|saved| {
            let dropped = match &older {
                Some(older) => {
                    let (acked, no_peers) = shared.acknowledged();
                    let retain_after = now.saturating_sub(retention.as_millis() as u64);
                    let upto = crate::compaction::plan(store, older, &acked, no_peers, retain_after)?;
                    // The audit trail outlives the log: its records go
                    // first, durably, then the ops.
                    crate::audit::copy_before_truncation(store, &shared.audit, &upto, now)?;
                    if upto.is_empty() {
                        0
                    } else {
                        store.truncate_log(&upto)?
                    }
                }
                None => 0,
            };
            shared.save_meta(store)?;
            store.flush()?;
            Ok((saved, dropped))
        });
    let took = started.elapsed();
    report(shared, &result, took);
    Outcome { clock, result }
}
