//! Disk follows what is live: an hour of revocations that expire after a
//! minute, on a faked clock, leaves checkpoints sized by the live entries
//! and an op-log tail, not everything ever revoked.
#![allow(clippy::unwrap_used)] // test code: a panic is a failed test

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rescind_node::Engine;
use rescind_node::checkpointer::CheckpointPolicy;
use rescind_node::clock::WallClock;
use rescind_node::engine::{EngineOptions, RevokeCommand, RevokeTarget};
use rescind_store::{SledStore, Store};

struct FakeClock(AtomicU64);

impl WallClock for FakeClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

fn uuid(minute: u64, i: u64) -> String {
    let x = minute * 1_000_000 + i;
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        x >> 16,
        x & 0xffff,
        x % 4096,
        (x / 7) % 4096,
        (x * 2_654_435_761) & 0xffff_ffff_ffff
    )
}

const PER_MINUTE: u64 = 1000;

/// Engine options for these tests: a checkpoint every `every_ops` ops
/// (0: only at shutdown and adoption), one seed peer when `seeded`.
fn options(clock: &Arc<FakeClock>, every_ops: u64, seeded: bool, recover_from_peers: bool) -> EngineOptions {
    EngineOptions {
        metrics: std::sync::Arc::new(rescind_node::metrics::Metrics::new(true)),
        region: "test".into(),
        expiry_grace: Duration::from_secs(1),
        write_queue: 1024,
        seeds: if seeded {
            vec!["127.0.0.1:1".into()]
        } else {
            Vec::new()
        },
        advertise_addr: "127.0.0.1:2".into(),
        clock: clock.clone(),
        checkpoints: CheckpointPolicy {
            every: Duration::ZERO,
            every_ops,
            op_log_retention: Duration::from_secs(3600),
        },
        recover_from_peers,
        audit: Default::default(),
    }
}
const MINUTES: u64 = 60;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_hour_of_one_minute_revocations_leaves_disk_bounded_by_the_live_ones() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(FakeClock(AtomicU64::new(1_800_000_000_000)));
    let store: Arc<dyn Store> = Arc::new(SledStore::open(dir.path(), Some("steady"), "x").unwrap());
    let options = options(&clock, PER_MINUTE, false, false);
    let started = Engine::start(store.clone(), options).unwrap();
    let engine = started.engine;
    for minute in 0..MINUTES {
        clock.0.fetch_add(60_000, Ordering::SeqCst);
        engine.prune_expired().await.unwrap();
        let now = clock.now_ms();
        let cmds = (0..PER_MINUTE)
            .map(|i| RevokeCommand {
                target: RevokeTarget::Token {
                    token_id: uuid(minute, i),
                    expires_at_ms: now + 60_000,
                },
                reason: String::new(),
                actor: "ops".into(),
            })
            .collect();
        let before = engine.status().checkpoint.generation;
        engine.revoke_many(cmds).await.unwrap();
        // The minute's checkpoint runs on a thread of its own; on a loaded
        // machine it could still be writing when the next minute's batch
        // comes, which skips a checkpoint and keeps more of the log. Wait
        // for it, nudging the writer (which starts a due checkpoint only
        // between batches) with empty prunes.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while engine.status().checkpoint.generation <= before {
            assert!(
                tokio::time::Instant::now() < deadline,
                "minute {minute}: no checkpoint after {PER_MINUTE} ops"
            );
            engine.prune_expired().await.unwrap();
            tokio::task::yield_now().await;
        }
    }
    let live = engine.status().deny_entries;
    assert!(live <= 2 * PER_MINUTE, "expired entries left memory: {live}");
    drop(engine);
    started.writer.join().await;

    let checkpoint_bytes = store.checkpoints().disk_bytes();
    let me = store.identity().origin();
    let tail = store.ops_after(&me, 0, usize::MAX).unwrap().len() as u64;
    let database = store.database_bytes();
    eprintln!(
        "{} revoked over the hour, {live} live: checkpoints {checkpoint_bytes} B ({:.1} B per live entry, 2 generations), \
         log tail {tail} ops, database {database} B",
        PER_MINUTE * MINUTES,
        checkpoint_bytes as f64 / live as f64
    );
    assert!(
        checkpoint_bytes <= 60 * live,
        "{checkpoint_bytes} B of checkpoints for {live} live entries"
    );
    // The log keeps only what follows the older kept checkpoint, and its
    // files shrink with it (an op takes ~80 B there: the hour's would be
    // ~4.8 MB).
    assert!(tail <= 3 * PER_MINUTE, "the op log kept {tail} ops");
    assert!(
        database < 480_000,
        "{database} B of op-log files and meta for a tail of {tail} ops"
    );
    let floor = store.log_floor().unwrap();
    assert!(
        floor
            .iter()
            .any(|(o, s)| *o == me && *s >= (MINUTES - 3) * PER_MINUTE),
        "{floor:?}"
    );
}

/// A store whose checkpoints are gone and whose log was compacted: the
/// engine starts in recovery, refuses checks and revokes, and serves once a
/// snapshot covering the floor is adopted; the floor then rises to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recovering_engine_refuses_reads_and_writes_until_a_whole_snapshot_is_adopted() {
    use rescind_core::{DenyEntry, OriginId};
    use rescind_store::{Fs, Identity, MemStore};

    let store = MemStore::with_identity(Identity {
        node_name: "rec".into(),
        incarnation: 3,
    });
    let peer = OriginId::new("peer", 1);
    let mut whole = rescind_core::State::new(0);
    let entry = DenyEntry {
        expires_at_ms: 0,
        revoked_at_ms: 5,
        origin: peer.clone(),
    };
    whole.merge_deny("gone-1", &entry, 0);
    whole.raise_clock(&peer, 10);
    store.checkpoints().save(&whole, 1, 0, 0).unwrap();
    store.truncate_log(&[(peer.clone(), 10)]).unwrap();
    store.files().remove(&store.checkpoints().path(1)).unwrap();

    let clock = Arc::new(FakeClock(AtomicU64::new(1_000)));
    let options = |recover| options(&clock, 1, true, recover);
    let shared: Arc<dyn Store> = Arc::new(store.clone());
    let refused = Engine::start(shared.clone(), options(false))
        .err()
        .expect("no peer: refused");
    assert!(refused.to_string().contains("--peer"), "{refused}");

    let started = Engine::start(shared, options(true)).unwrap();
    let engine = started.engine;
    assert!(engine.is_recovering());
    assert!(engine.serving().is_err());
    let revoke = RevokeCommand {
        target: RevokeTarget::Token {
            token_id: "new".into(),
            expires_at_ms: 0,
        },
        reason: String::new(),
        actor: String::new(),
    };
    assert!(matches!(
        engine.revoke(revoke.clone()).await,
        Err(rescind_node::EngineError::Recovering)
    ));
    // A snapshot that does not reach the floor does not end recovery.
    let mut short = rescind_core::VersionVector::new();
    short.raise_to(&peer, 4);
    engine
        .merge_snapshot(Vec::new(), Vec::new(), Some(vec![(peer.clone(), 4)]))
        .await
        .unwrap();
    engine.recovery_snapshot_adopted();
    engine.finish_recovery_if_covers(&short);
    assert!(engine.is_recovering(), "the floor (10) is not covered by 4");
    // The whole one does; it was checkpointed and the floor follows it.
    engine
        .merge_snapshot(
            vec![("gone-1".into(), entry)],
            Vec::new(),
            Some(vec![(peer.clone(), 10)]),
        )
        .await
        .unwrap();
    let mut full = rescind_core::VersionVector::new();
    full.raise_to(&peer, 10);
    engine.finish_recovery_if_covers(&full);
    assert!(!engine.is_recovering());
    assert!(engine.check(&rescind_core::CheckQuery::token("gone-1")).revoked());
    assert!(
        !store.checkpoints().generations().unwrap().is_empty(),
        "adoption checkpointed"
    );
    // The audit trail says which ops it never received.
    let listing = engine
        .list_revocations(rescind_node::audit::AuditFilter::default(), Vec::new(), 100)
        .await
        .unwrap()
        .unwrap();
    let gaps: Vec<(u64, u64)> = listing.gaps.iter().map(|g| (g.from_seq, g.to_seq)).collect();
    assert_eq!(gaps, vec![(1, 4), (5, 10)]);
    engine.revoke(revoke).await.unwrap();
}

/// Retired members and peers' vectors are saved with a checkpoint and read
/// back at start: a restart does not count a retired member live again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retired_members_survive_a_restart() {
    use rescind_gossip::{MemberRecord, NodeInfo};
    use rescind_store::{Identity, MemStore};

    let store = MemStore::with_identity(Identity {
        node_name: "keeper".into(),
        incarnation: 9,
    });
    let clock = Arc::new(FakeClock(AtomicU64::new(1_000)));
    let options = || options(&clock, 1, false, false);
    let gone = NodeInfo {
        name: "old-node".into(),
        incarnation: 4,
        region: "eu".into(),
        addr: "127.0.0.1:9".into(),
    };
    let started = Engine::start(Arc::new(store.clone()), options()).unwrap();
    started.engine.with_cluster(|c| {
        c.learn(&[MemberRecord {
            info: gone.clone(),
            removed: false,
        }]);
        assert!(c.remove("old-node"));
    });
    let revoke = RevokeCommand {
        target: RevokeTarget::Token {
            token_id: "t".into(),
            expires_at_ms: 0,
        },
        reason: String::new(),
        actor: String::new(),
    };
    started.engine.revoke(revoke).await.unwrap();
    drop(started.engine);
    started.writer.join().await;

    let again = Engine::start(Arc::new(store), options()).unwrap();
    let view = again.engine.with_cluster(|c| c.view(0));
    let member = view
        .iter()
        .find(|p| p.info.name == "old-node")
        .expect("remembered");
    assert!(member.removed, "still retired after the restart");
}

/// Adopting a snapshot drops the log below the adopted vector: the audit
/// records of the ops this node had go to the audit files first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adopting_a_snapshot_keeps_the_audit_records_of_ops_it_had() {
    use rescind_store::{Identity, MemStore};

    let store = MemStore::with_identity(Identity {
        node_name: "adopter".into(),
        incarnation: 5,
    });
    let me = store.identity().origin();
    let clock = Arc::new(FakeClock(AtomicU64::new(1_000)));
    let options = options(&clock, 0, false, false);
    let started = Engine::start(Arc::new(store.clone()), options).unwrap();
    let engine = started.engine;
    for i in 0..3 {
        engine
            .revoke(RevokeCommand {
                target: RevokeTarget::Token {
                    token_id: format!("mine-{i}"),
                    expires_at_ms: 0,
                },
                reason: "kept".into(),
                actor: "carol".into(),
            })
            .await
            .unwrap();
    }
    let peer = rescind_core::OriginId::new("peer", 1);
    engine
        .merge_snapshot(Vec::new(), Vec::new(), Some(vec![(peer, 4), (me.clone(), 3)]))
        .await
        .unwrap();
    assert!(
        store.ops_after(&me, 0, 10).unwrap().is_empty(),
        "the log below the adopted vector went"
    );
    let filter = rescind_node::audit::AuditFilter {
        actor: Some("carol".into()),
        ..Default::default()
    };
    let listing = engine
        .list_revocations(filter, Vec::new(), 100)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(listing.records.len(), 3, "{listing:?}");
    assert_eq!(listing.gaps.len(), 1, "only the peer's ops were never received");
}

/// A kill between a checkpoint's rename and its prune leaves three
/// generations; the next start deletes the oldest once the newest loaded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_finishes_the_prune_a_kill_cut_short() {
    use rescind_store::{Fault, FaultyFs, RealFs};

    let dir = tempfile::tempdir().unwrap();
    let fs = FaultyFs::new(RealFs);
    let (store, _) =
        SledStore::open_with(dir.path(), Some("pruner"), "x", 8 << 20, Arc::new(fs.clone())).unwrap();
    let state = rescind_core::State::new(0);
    for generation in 1..=3 {
        if generation == 3 {
            fs.arm(Fault::Remove, 0);
        }
        store.checkpoints().save(&state, generation, 0, 0).unwrap();
    }
    assert_eq!(store.checkpoints().generations().unwrap(), vec![3, 2, 1]);
    drop(store);
    let store: Arc<dyn Store> = Arc::new(SledStore::open(dir.path(), None, "x").unwrap());
    let clock = Arc::new(FakeClock(AtomicU64::new(1_000)));
    let started = Engine::start(store.clone(), options(&clock, 0, false, false)).unwrap();
    assert_eq!(store.checkpoints().generations().unwrap(), vec![3, 2]);
    drop(started.engine);
    started.writer.join().await;
}
