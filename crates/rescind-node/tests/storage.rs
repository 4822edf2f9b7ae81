//! Disk follows what is live: an hour of revocations that expire after a
//! minute, on a faked clock, leaves checkpoints sized by the live entries
//! and an op-log tail, not everything ever revoked.

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
const MINUTES: u64 = 60;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_hour_of_one_minute_revocations_leaves_disk_bounded_by_the_live_ones() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(FakeClock(AtomicU64::new(1_800_000_000_000)));
    let store: Arc<dyn Store> = Arc::new(SledStore::open(dir.path(), Some("steady"), "x").unwrap());
    let options = EngineOptions {
        region: "test".into(),
        expiry_grace: Duration::from_secs(1),
        write_queue: 1024,
        seeds: Vec::new(),
        advertise_addr: "127.0.0.1:1".into(),
        clock: clock.clone(),
        checkpoints: CheckpointPolicy {
            every: Duration::ZERO,
            every_ops: PER_MINUTE,
            op_log_retention: Duration::from_secs(3600),
        },
        recover_from_peers: false,
    };
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
        engine.revoke_many(cmds).await.unwrap();
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
    // The log keeps only what follows the older kept checkpoint.
    assert!(tail <= 3 * PER_MINUTE, "the op log kept {tail} ops");
    let floor = store.log_floor().unwrap();
    assert!(
        floor
            .iter()
            .any(|(o, s)| *o == me && *s >= (MINUTES - 3) * PER_MINUTE),
        "{floor:?}"
    );
}
