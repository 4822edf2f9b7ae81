//! Storage v2 end to end, on real processes: kill -9 at random moments of
//! checkpoints and compaction, damaged checkpoints (alone and with a peer),
//! and a data dir of format 1 opened by this build.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rescind_proto::v1 as pb;
use rescind_tests::cluster::{Cluster, eventually};
use rescind_tests::{NodeProc, rescind_bin, revoke_token, with_bearer};

/// Checkpoint every few ops, so checkpoints and compaction run all the time.
const BUSY: &[&str] = &[
    "--node-name",
    "crashy",
    "--checkpoint-ops",
    "8",
    "--checkpoint-interval",
    "0s",
];

/// The checkpoint files of a data dir, newest first.
fn checkpoint_files(data_dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(data_dir.join("checkpoints"))
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "rsc"));
    files.sort();
    files.reverse();
    files
}

/// Every id in `ids` is revoked on `node` (checked in batches).
async fn assert_all_revoked(node: &NodeProc, ids: &BTreeSet<String>, context: &str) {
    let mut client = node.client().await;
    let ids: Vec<&String> = ids.iter().collect();
    for chunk in ids.chunks(1000) {
        let checks: Vec<_> = chunk
            .iter()
            .map(|id| pb::CheckRequest {
                token_id: Some((*id).clone()),
                ..Default::default()
            })
            .collect();
        let results = client
            .check_batch(pb::CheckBatchRequest::from(checks))
            .await
            .unwrap_or_else(|e| panic!("{context}: check_batch failed: {e}"))
            .into_inner()
            .results;
        for (id, r) in chunk.iter().zip(results) {
            assert!(r.revoked, "{context}: acknowledged id {id} was lost");
        }
    }
}

/// Revoke `ids` in one RevokeBatch.
async fn revoke_batch(node: &NodeProc, ids: &[String]) {
    let revocations = ids.iter().map(|id| revoke_token(id)).collect();
    node.client()
        .await
        .revoke_batch(node.admin(pb::RevokeBatchRequest { revocations }))
        .await
        .expect("revoke batch");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_checkpoints_and_compaction_loses_no_acknowledged_revocation() {
    let seed: u64 = std::env::var("RESCIND_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("kill -9 schedule seed {seed} (RESCIND_TEST_SEED={seed} replays it)");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let mut acked: BTreeSet<String> = BTreeSet::new();
    // A few thousand entries first, so each checkpoint takes a while.
    {
        let node = NodeProc::start(dir.path(), BUSY);
        let base: Vec<String> = (0..5_000).map(|i| format!("base-{i}")).collect();
        revoke_batch(&node, &base).await;
        acked.extend(base);
    }
    for round in 0..50 {
        let mut node = NodeProc::start(dir.path(), BUSY);
        assert_all_revoked(&node, &acked, &format!("round {round}, seed {seed}")).await;
        // Revokes from 4 clients; kill -9 after a random number of acks.
        let target = rng.random_range(5..120);
        let (tx, mut rx) = tokio::sync::mpsc::channel::<String>(1024);
        let token = node.admin_token();
        let mut clients = Vec::new();
        for c in 0..4 {
            let (mut client, tx, token) = (node.client().await, tx.clone(), token.clone());
            clients.push(tokio::spawn(async move {
                // Bounded: the node dies long before this many.
                for i in 0..10_000 {
                    let id = format!("r{round}-c{c}-{i}");
                    let req = with_bearer(revoke_token(&id), &token);
                    match client.revoke(req).await {
                        Ok(_) => {
                            if tx.send(id).await.is_err() {
                                return;
                            }
                        }
                        Err(_) => return,
                    }
                }
            }));
        }
        drop(tx);
        let mut got = 0;
        while got < target {
            let Some(id) = rx.recv().await else { break };
            acked.insert(id);
            got += 1;
        }
        node.kill9();
        // Acks that raced the kill count too: they were acknowledged.
        while let Some(id) = rx.recv().await {
            acked.insert(id);
        }
        for c in clients {
            c.await.unwrap();
        }
        assert!(
            got >= target,
            "round {round}: the node stopped acknowledging early"
        );
    }
    let node = NodeProc::start(dir.path(), BUSY);
    assert_all_revoked(&node, &acked, &format!("after 50 kills, seed {seed}")).await;
    let status = node.status().await;
    // Durable-but-unanswered revokes at a kill may be there too; never fewer.
    assert!(
        status.deny_entries as usize >= acked.len(),
        "{} < {}",
        status.deny_entries,
        acked.len()
    );
    // Compaction ran: the log kept only the tail, the checkpoint is the base.
    assert!(
        status.log_ops_dropped > 0 || status.checkpoint_generation > 1,
        "{status:?}"
    );
    // At rest (no checkpoint being written), at most two generations are
    // kept, even when a kill fell between a save's rename and its prune.
    let mut node = node;
    node.terminate();
    let files = checkpoint_files(dir.path());
    assert!(files.len() <= 2, "seed {seed}: {files:?}");
}

/// Revocations, then a clean stop: checkpoints written and the log compacted.
async fn node_with_compacted_log(dir: &Path) -> BTreeSet<String> {
    let mut node = NodeProc::start(dir, &["--node-name", "lonely", "--checkpoint-ops", "1"]);
    let mut ids = BTreeSet::new();
    for i in 0..20 {
        let id = format!("lonely-{i}");
        node.client()
            .await
            .revoke(node.admin(revoke_token(&id)))
            .await
            .unwrap();
        ids.insert(id);
    }
    node.terminate();
    assert_eq!(checkpoint_files(dir).len(), 2);
    ids
}

/// Run `rescind serve` on `dir` with `extra` flags until it exits.
fn serve_to_exit(dir: &Path, extra: &[&str]) -> std::process::Output {
    std::process::Command::new(rescind_bin())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--http-listen",
            "off",
            "--log",
            "error",
        ])
        .args(extra)
        .arg("--data-dir")
        .arg(dir)
        .output()
        .expect("run rescind serve")
}

fn damage(files: &[PathBuf], how: &str) {
    for f in files {
        let mut bytes = std::fs::read(f).unwrap();
        match how {
            "truncated" => bytes.truncate(bytes.len() / 2),
            _ => {
                let at = bytes.len() / 2;
                bytes[at] ^= 0x40;
            }
        }
        std::fs::write(f, bytes).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_checkpoint_alone_refuses_to_start_naming_the_file() {
    for how in ["truncated", "flipped"] {
        let dir = tempfile::tempdir().unwrap();
        node_with_compacted_log(dir.path()).await;
        let files = checkpoint_files(dir.path());
        damage(&files, how);
        let out = serve_to_exit(dir.path(), &[]);
        assert!(
            !out.status.success(),
            "{how}: a node with damaged state must not start"
        );
        let err = String::from_utf8_lossy(&out.stderr);
        let named = files[0].display().to_string();
        assert!(err.contains(&named), "{how}: the error names {named}: {err}");
        assert!(err.contains("--peer"), "{how}: and says what to do: {err}");
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains("listening"),
            "{how}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_node_whose_peers_never_answer_gives_up_after_the_recovery_timeout() {
    let dir = tempfile::tempdir().unwrap();
    node_with_compacted_log(dir.path()).await;
    damage(&checkpoint_files(dir.path()), "flipped");
    let out = serve_to_exit(
        dir.path(),
        &[
            "--peer",
            "127.0.0.1:9",
            "--cluster-key",
            "test-cluster-key-0123456789",
            "--recovery-timeout",
            "1s",
        ],
    );
    assert!(
        !out.status.success(),
        "it must not keep serving UNAVAILABLE forever"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("recovery_timeout") && err.contains("--peer"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_checkpoint_with_a_peer_recovers_by_snapshot_never_allowing_a_revoked_id() {
    for how in ["truncated", "flipped"] {
        let mut cluster = Cluster::start(1, 2, "checkpoint_ops = 1\n");
        let ids: Vec<String> = (0..30).map(|i| format!("{how}-{i}")).collect();
        for id in &ids {
            let n = &cluster.nodes[0];
            n.client().await.revoke(n.admin(revoke_token(id))).await.unwrap();
        }
        cluster.converged(Duration::from_secs(30)).await;
        // Node 1's log is compacted once node 0 has acknowledged its ops.
        let dir = cluster.specs[1].2.clone();
        cluster.nodes[1].terminate();
        damage(&checkpoint_files(&dir), how);
        let node = cluster.spawn(1);
        let client = node.client().await;
        // Until it has recovered it answers UNAVAILABLE, never "allowed".
        let revoked = eventually("the recovered node to answer", Duration::from_secs(60), || {
            let mut client = client.clone();
            let id = ids[0].clone();
            async move {
                let r = client
                    .check(pb::CheckRequest {
                        token_id: Some(id),
                        ..Default::default()
                    })
                    .await;
                match r {
                    Ok(resp) => Some(resp.into_inner().revoked),
                    Err(status) => {
                        assert_eq!(status.code(), tonic::Code::Unavailable, "{status}");
                        None
                    }
                }
            }
        })
        .await;
        assert!(revoked, "{how}: a revoked id answered allowed");
        cluster.nodes[1] = node;
        assert_all_revoked(&cluster.nodes[1], &ids.iter().cloned().collect(), how).await;
        let status = cluster.nodes[1].status().await;
        assert!(!status.recovering, "{how}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_format_one_data_dir_opens_migrated_with_the_same_digest() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/rescind-store/tests/fixtures");
    for name in ["v1-killed", "v1-clean"] {
        let dir = tempfile::tempdir().unwrap();
        copy_tree(&fixtures.join(name), dir.path());
        let node = NodeProc::start(dir.path(), &["--http-listen", "off"]);
        let status = node.status().await;
        assert_eq!(status.digest, "0dd042d1009f78a32ec8c045abc60f35", "{name}");
        assert_eq!((status.deny_entries, status.cutoffs), (3, 2), "{name}");
        assert_eq!(status.node_name, "fixture-a");
        assert_eq!(
            checkpoint_files(dir.path()).len(),
            1,
            "{name}: migrated into a checkpoint"
        );
        assert!(!dir.path().join("db.deny-checkpoint").exists());
    }
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
