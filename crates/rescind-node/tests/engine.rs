//! The engine over an instrumented store: group commit, ack-after-flush,
//! consistency-token waits, expiry GC.
#![allow(clippy::unwrap_used)] // test code: a panic is a failed test

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::{Condvar, Mutex};
use rescind_core::check::CheckQuery;
use rescind_core::{ConsistencyToken, Cutoff, Op, OriginId, PrincipalKind, State};
use rescind_node::clock::WallClock;
use rescind_node::engine::{EngineOptions, RevokeCommand, RevokeTarget};
use rescind_node::{Engine, EngineError};
use rescind_store::{Identity, MemStore, Store, StoreError};

/// A MemStore that counts flushes, records the highest seq made durable, and
/// can hold its first flush until the test releases it.
struct Instrumented {
    inner: MemStore,
    flushes: AtomicU64,
    committed_seq: AtomicU64,
    durable_seq: AtomicU64,
    gate: Mutex<bool>,
    opened: Condvar,
}

impl Instrumented {
    fn new(gated: bool) -> Arc<Self> {
        Arc::new(Self {
            inner: MemStore::with_identity(Identity {
                node_name: "eng".into(),
                incarnation: 7,
            }),
            flushes: AtomicU64::new(0),
            committed_seq: AtomicU64::new(0),
            durable_seq: AtomicU64::new(0),
            gate: Mutex::new(!gated),
            opened: Condvar::new(),
        })
    }

    fn release(&self) {
        *self.gate.lock() = true;
        self.opened.notify_all();
    }
}

impl Store for Instrumented {
    fn identity(&self) -> &Identity {
        self.inner.identity()
    }
    fn append(&self, ops: &[Op]) -> Result<(), StoreError> {
        if let Some(top) = ops.iter().map(|o| o.seq).max() {
            self.committed_seq.fetch_max(top, Ordering::SeqCst);
        }
        self.inner.append(ops)
    }
    fn flush(&self) -> Result<(), StoreError> {
        let mut open = self.gate.lock();
        while !*open {
            self.opened.wait(&mut open);
        }
        drop(open);
        self.flushes.fetch_add(1, Ordering::SeqCst);
        self.durable_seq
            .store(self.committed_seq.load(Ordering::SeqCst), Ordering::SeqCst);
        self.inner.flush()
    }
    fn ops_after(&self, origin: &OriginId, after: u64, limit: usize) -> Result<Vec<Op>, StoreError> {
        self.inner.ops_after(origin, after, limit)
    }
    fn log_origins(&self) -> Result<Vec<OriginId>, StoreError> {
        self.inner.log_origins()
    }
    fn truncate_log(&self, upto: &[(OriginId, u64)]) -> Result<u64, StoreError> {
        self.inner.truncate_log(upto)
    }
    fn meta_get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.meta_get(key)
    }
    fn meta_put(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.inner.meta_put(key, value)
    }
    fn checkpoints(&self) -> &rescind_store::Checkpoints {
        self.inner.checkpoints()
    }
    fn audit(&self) -> &rescind_store::AuditLog {
        self.inner.audit()
    }
}

/// The state a restart would recover from `store`.
fn recovered(store: &dyn Store) -> State {
    match rescind_node::recovery::recover(store, 60_000).unwrap() {
        rescind_node::recovery::Recovery::Ready { state, .. } => state,
        rescind_node::recovery::Recovery::NeedsPeer { report, .. } => panic!("{}", report.problem()),
    }
}

struct FixedClock(AtomicU64);

impl WallClock for FixedClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

fn start(store: Arc<Instrumented>, clock: Arc<FixedClock>) -> (Engine, rescind_node::engine::WriterHandle) {
    start_with(store, clock, 0)
}

fn start_with(
    store: Arc<Instrumented>,
    clock: Arc<FixedClock>,
    checkpoint_ops: u64,
) -> (Engine, rescind_node::engine::WriterHandle) {
    let options = EngineOptions {
        metrics: std::sync::Arc::new(rescind_node::metrics::Metrics::new(true)),
        region: "test".into(),
        expiry_grace: Duration::from_secs(60),
        write_queue: 1024,
        seeds: Vec::new(),
        advertise_addr: "127.0.0.1:1".into(),
        clock,
        checkpoints: rescind_node::checkpointer::CheckpointPolicy {
            every: Duration::ZERO,
            every_ops: checkpoint_ops,
            op_log_retention: Duration::from_secs(3600),
        },
        recover_from_peers: false,
        audit: Default::default(),
    };
    let started = Engine::start(store, options).expect("engine starts");
    (started.engine, started.writer)
}

fn token(id: &str, expires_at_ms: u64) -> RevokeCommand {
    RevokeCommand {
        target: RevokeTarget::Token {
            token_id: id.into(),
            expires_at_ms,
        },
        reason: String::new(),
        actor: String::new(),
    }
}

/// Wait for a condition with a deadline (no sleeping as synchronisation).
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::task::yield_now().await;
    }
}

/// Checkpoints are taken between batches, when memory equals what is
/// durable (a checkpoint ahead of the log would claim seqs it never got),
/// once more at shutdown, and only two generations stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_see_only_durable_state() {
    let store = Instrumented::new(false);
    let clock = Arc::new(FixedClock(AtomicU64::new(1_000)));
    let (engine, writer) = start_with(store.clone(), clock, 1);
    let me = store.identity().origin();
    for i in 0..3 {
        engine.revoke(token(&format!("cp-{i}"), 0)).await.unwrap();
        let cps = store.checkpoints();
        for g in cps.generations().unwrap() {
            let (state, _) = cps.load(g, 0).unwrap();
            assert!(state.clock().get(&me) <= store.durable_seq.load(Ordering::SeqCst));
        }
    }
    drop(engine);
    writer.join().await;
    let cps = store.checkpoints();
    let generations = cps.generations().unwrap();
    assert_eq!(generations.len(), 2, "two kept: {generations:?}");
    let (last, _) = cps.load(generations[0], 0).unwrap();
    assert_eq!(
        last.clock().get(&me),
        3,
        "the last one, at shutdown, has everything"
    );
    // No peer: the log below the older kept checkpoint is gone.
    let (older, _) = cps.load(generations[1], 0).unwrap();
    let floor = store.log_floor().unwrap();
    assert!(
        floor.iter().all(|(_, s)| *s <= older.clock().get(&me)),
        "{floor:?}"
    );
    assert_eq!(recovered(&*store).deny().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_revokes_share_flushes_and_are_acked_only_after_one() {
    let store = Instrumented::new(true);
    let clock = Arc::new(FixedClock(AtomicU64::new(1_000)));
    let (engine, writer) = start(store.clone(), clock);
    let mut tasks = Vec::new();
    for i in 0..64 {
        let (engine, store) = (engine.clone(), store.clone());
        tasks.push(tokio::spawn(async move {
            let out = engine.revoke(token(&format!("t{i}"), 0)).await.expect("acked");
            // The ack may only come once this op is durable.
            assert!(
                store.durable_seq.load(Ordering::SeqCst) >= out.seq,
                "acked before flush"
            );
            out.seq
        }));
    }
    // The first batch (however many jobs it took) is stuck in its flush; wait
    // until every other revoke is queued behind it.
    eventually("64 revokes committed or queued", || {
        let in_flush = store.committed_seq.load(Ordering::SeqCst) as usize;
        in_flush > 0 && in_flush + engine.queued_writes() == 64
    })
    .await;
    store.release();
    let mut seqs = Vec::new();
    for t in tasks {
        seqs.push(t.await.unwrap());
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=64).collect::<Vec<_>>());
    let flushes = store.flushes.load(Ordering::SeqCst);
    assert!((1..=2).contains(&flushes), "64 revokes took {flushes} flushes");
    drop(engine);
    writer.join().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consistency_tokens_wait_until_applied_or_time_out() {
    let store = Instrumented::new(false);
    let clock = Arc::new(FixedClock(AtomicU64::new(1_000)));
    let (engine, _writer) = start(store.clone(), clock);
    let me = OriginId::new("eng", 7);
    // A token for an op nobody has written yet: times out with a clear error.
    let future = ConsistencyToken::for_op(me.clone(), 1);
    let err = engine
        .wait_for(&future, Duration::from_millis(20))
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::NotCaughtUp { .. }), "{err:?}");
    assert!(err.to_string().contains("not caught up"));
    // A waiter is woken when the op is applied.
    let waiter = {
        let engine = engine.clone();
        let token = future.clone();
        tokio::spawn(async move { engine.wait_for(&token, Duration::from_secs(20)).await })
    };
    let out = engine.revoke(token("x", 0)).await.unwrap();
    assert_eq!(out.token, future);
    waiter.await.unwrap().expect("woken once applied");
    // A token from another origin this node has never heard of cannot be satisfied.
    let foreign = ConsistencyToken::for_op(OriginId::new("elsewhere", 1), 1);
    assert!(
        engine
            .wait_for(&foreign, Duration::from_millis(10))
            .await
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_is_one_flush_and_names_each_id_once() {
    let store = Instrumented::new(false);
    let clock = Arc::new(FixedClock(AtomicU64::new(1_000)));
    let (engine, _writer) = start(store.clone(), clock);
    engine.revoke(token("old", 0)).await.unwrap();
    let flushes = store.flushes.load(Ordering::SeqCst);
    let cmds = ["a", "old", "b", "a"].map(|id| token(id, 0)).to_vec();
    let outs = engine.revoke_many(cmds).await.unwrap();
    assert_eq!(
        store.flushes.load(Ordering::SeqCst),
        flushes + 1,
        "one durable write"
    );
    let already: Vec<bool> = outs.iter().map(|o| o.already_revoked).collect();
    assert_eq!(already, [false, true, false, true]);
    assert_eq!(outs[0].seq, 2);
    assert_eq!(outs[2].seq, 3);
    assert_eq!(store.durable_seq.load(Ordering::SeqCst), 3);
    // A rerun of the same batch writes nothing.
    let again = engine
        .revoke_many(["a", "b"].map(|id| token(id, 0)).to_vec())
        .await
        .unwrap();
    assert!(again.iter().all(|o| o.already_revoked));
    assert_eq!(store.committed_seq.load(Ordering::SeqCst), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_only_cutoff_leaves_the_time_alone() {
    let store = Instrumented::new(false);
    let clock = Arc::new(FixedClock(AtomicU64::new(10_000)));
    let (engine, _writer) = start(store, clock);
    let cutoff = |min_version, version_only| RevokeCommand {
        target: RevokeTarget::Cutoff {
            kind: PrincipalKind::Subject,
            principal: "alice".into(),
            cutoff: Cutoff {
                issued_before_ms: 0,
                min_version,
            },
            version_only,
        },
        reason: String::new(),
        actor: String::new(),
    };
    engine.revoke(cutoff(2, true)).await.unwrap();
    let q = CheckQuery::default()
        .with(PrincipalKind::Subject, "alice")
        .issued_at(9_999);
    let new_version = CheckQuery {
        token_version: 2,
        ..q
    };
    assert!(
        !engine.check(&new_version).revoked(),
        "a new-version token issued just before stays valid"
    );
    assert!(
        engine
            .check(&CheckQuery {
                token_version: 1,
                ..q
            })
            .revoked()
    );
    // Without version_only, 0 still means now.
    engine.revoke(cutoff(2, false)).await.unwrap();
    assert!(engine.check(&new_version).revoked());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn already_revoked_writes_nothing_and_gc_prunes_expired_entries() {
    let store = Instrumented::new(false);
    let clock = Arc::new(FixedClock(AtomicU64::new(1_000)));
    let (engine, writer) = start(store.clone(), clock.clone());
    engine.revoke(token("short", 5_000)).await.unwrap();
    let again = engine.revoke(token("short", 4_000)).await.unwrap();
    assert!(again.already_revoked);
    assert_eq!(again.seq, 0);
    assert!(again.token.is_covered_by(recovered(&*store).clock()));
    // A cutoff at "now" (issued_before 0) takes the node's clock.
    let cutoff = RevokeCommand {
        target: RevokeTarget::Cutoff {
            kind: PrincipalKind::Tenant,
            principal: "acme".into(),
            cutoff: Cutoff::default(),
            version_only: false,
        },
        reason: String::new(),
        actor: String::new(),
    };
    engine.revoke(cutoff).await.unwrap();
    let q = CheckQuery::default().with(PrincipalKind::Tenant, "acme");
    assert!(engine.check(&q.issued_at(1_000)).revoked());
    assert!(!engine.check(&q.issued_at(1_001)).revoked());

    assert_eq!(engine.prune_expired().await.unwrap(), 0, "within grace");
    clock.0.store(5_000 + 60_001, Ordering::SeqCst);
    assert_eq!(engine.prune_expired().await.unwrap(), 1);
    assert_eq!(engine.status().deny_entries, 0);
    assert_eq!(engine.status().expired_pruned, 1);
    let digest = engine.status().digest;
    // The checkpoint at shutdown leaves it out, and its expiry watermark
    // keeps the replayed op from bringing it back.
    drop(engine);
    writer.join().await;
    let reloaded = recovered(&*store);
    assert!(reloaded.deny().is_empty());
    assert_eq!(reloaded.digest(), digest);
}
