//! Acknowledged means durable: kill -9 after 1,000 acks loses nothing.

use std::collections::BTreeSet;

use rescind_proto::v1 as pb;
use rescind_tests::NodeProc;

const CLIENTS: usize = 8;
const PER_CLIENT: usize = 125;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_acks_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = NodeProc::start(dir.path(), &["--node-name", "durable"]);
    let status = node.status().await;
    let incarnation = status.incarnation.clone();

    // 8 concurrent clients, 125 revokes each; record every acknowledged seq.
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let mut client = node.client().await;
        let token = node.admin_token();
        tasks.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for i in 0..PER_CLIENT {
                let req =
                    rescind_tests::with_bearer(rescind_tests::revoke_token(&format!("dur-{c}-{i}")), &token);
                let resp = client
                    .revoke(req)
                    .await
                    .expect("revoke acknowledged")
                    .into_inner();
                assert!(!resp.already_revoked);
                seqs.push(resp.seq);
            }
            seqs
        }));
    }
    let mut seqs = BTreeSet::new();
    for t in tasks {
        seqs.extend(t.await.unwrap());
    }
    let total = (CLIENTS * PER_CLIENT) as u64;
    assert_eq!(seqs.len() as u64, total, "every ack has its own seq");
    assert_eq!(
        seqs.iter().copied().collect::<Vec<_>>(),
        (1..=total).collect::<Vec<_>>(),
        "seqs are dense"
    );

    let before_kill = node.status().await;
    assert_eq!(before_kill.deny_entries, total);
    node.kill9();
    let node = NodeProc::start(dir.path(), &["--node-name", "durable"]);
    let mut client = node.client().await;
    let after = client.status(pb::StatusRequest {}).await.unwrap().into_inner();
    assert_eq!(after.incarnation, incarnation, "same data dir, same incarnation");
    assert_eq!(after.deny_entries, total);
    assert_eq!(after.version_vector.len(), 1);
    assert_eq!(after.version_vector[0].seq, total);
    // Equal digests: nothing was lost or altered by the crash.
    assert_eq!(after.digest, before_kill.digest);

    // Every acknowledged id is revoked, checked in batches of 1000.
    let checks = (0..CLIENTS)
        .flat_map(|c| {
            (0..PER_CLIENT).map(move |i| pb::CheckRequest {
                token_id: Some(format!("dur-{c}-{i}")),
                ..Default::default()
            })
        })
        .collect::<Vec<_>>();
    let batch = client
        .check_batch(pb::CheckBatchRequest::from(checks))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        batch.node_id, after.node_id,
        "the batch names the node that answered, once"
    );
    let results = batch.results;
    assert_eq!(results.len(), CLIENTS * PER_CLIENT);
    assert!(
        results.iter().all(|r| r.revoked),
        "an acknowledged revocation was lost"
    );

    // The seq continues where it stopped.
    let next = client
        .revoke(node.admin(rescind_tests::revoke_token("after-restart")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(next.seq, total + 1);
}

/// A clean stop saves a checkpoint that the next start reads; after a
/// crash, a start reads it and replays the ops logged since, and everything
/// acknowledged is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_stop_checkpoints_and_a_later_crash_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let checkpoints = || -> usize {
        std::fs::read_dir(dir.path().join("checkpoints"))
            .map(|d| {
                d.filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "rsc"))
                    .count()
            })
            .unwrap_or(0)
    };
    let mut node = NodeProc::start(dir.path(), &[]);
    let mut client = node.client().await;
    for i in 0..200 {
        client
            .revoke(node.admin(rescind_tests::revoke_token(&format!("cp-{i}"))))
            .await
            .unwrap();
    }
    let before = node.status().await;
    node.terminate();
    assert_eq!(checkpoints(), 1, "a clean stop saves a checkpoint");

    let mut node = NodeProc::start(dir.path(), &[]);
    assert_eq!(checkpoints(), 1, "the checkpoint stays for the next start");
    let restored = node.status().await;
    assert_eq!((restored.deny_entries, &restored.digest), (200, &before.digest));
    let mut client = node.client().await;
    client
        .revoke(node.admin(rescind_tests::revoke_token("after-checkpoint")))
        .await
        .unwrap();
    let acked = node.status().await;
    node.kill9();

    let node = NodeProc::start(dir.path(), &[]);
    let mut client = node.client().await;
    let after = node.status().await;
    assert_eq!((after.deny_entries, &after.digest), (201, &acked.digest));
    for id in ["cp-0", "cp-199", "after-checkpoint"] {
        let r = client
            .check(pb::CheckRequest {
                token_id: Some(id.into()),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(r.revoked, "{id}");
    }
}
