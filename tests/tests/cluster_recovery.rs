//! Catch-up without an operator: after kill -9 and downtime, and after a wiped
//! data dir (a new incarnation, caught up through a snapshot).

use std::time::Duration;

use rescind_proto::v1 as pb;
use rescind_tests::cluster::{Cluster, revoke_token};
use rescind_tests::with_bearer;

/// `n` revokes spread evenly over every node but `skip`.
async fn revoke_many(cluster: &Cluster, skip: usize, prefix: &str, n: usize) {
    let writers = cluster.nodes.len() - usize::from(skip < cluster.nodes.len());
    assert_eq!(
        n % writers,
        0,
        "{n} revokes do not split evenly over {writers} nodes"
    );
    let mut tasks = Vec::new();
    for (i, node) in cluster.nodes.iter().enumerate() {
        if i == skip {
            continue;
        }
        let mut client = node.client().await;
        let token = node.admin_token();
        let prefix = format!("{prefix}-{i}");
        let share = n / writers;
        tasks.push(tokio::spawn(async move {
            for k in 0..share {
                client
                    .revoke(with_bearer(revoke_token(&format!("{prefix}-{k}")), &token))
                    .await
                    .expect("revoke acked");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

fn seq_of(status: &pb::StatusResponse, origin: &str) -> u64 {
    status
        .version_vector
        .iter()
        .find(|e| e.origin == origin)
        .map_or(0, |e| e.seq)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_and_wiped_nodes_catch_up_by_themselves() {
    // A low snapshot threshold so the wiped node is caught up by a snapshot.
    let mut cluster = Cluster::start(3, 2, "[gossip]\nsnapshot_after_ops = 50\n");
    revoke_many(&cluster, usize::MAX, "warm", 300).await;
    cluster.converged(Duration::from_secs(20)).await;

    // kill -9 node 3, revoke 500 more elsewhere, restart it.
    let victim = 3;
    cluster.nodes[victim].kill9();
    revoke_many(&cluster, victim, "down", 500).await;
    cluster.nodes[victim] = cluster.spawn(victim);
    let agreed = cluster.converged(Duration::from_secs(20)).await;
    assert_eq!(agreed.deny_entries, 300 + 500);

    // The victim writes too, so its own origin has ops the cluster must keep.
    let origin = cluster.statuses().await[victim].node_id.clone();
    let warm_seq = seq_of(&cluster.statuses().await[victim], &origin);
    assert_eq!(warm_seq, 50, "its share of the warm-up, kept across kill -9");
    let mut c = cluster.nodes[victim].client().await;
    let token = cluster.nodes[victim].admin_token();
    for k in 0..40 {
        c.revoke(with_bearer(revoke_token(&format!("own-{k}")), &token))
            .await
            .unwrap();
    }
    let before_wipe = cluster.converged(Duration::from_secs(20)).await;
    let statuses = cluster.statuses().await;
    let old_origin = statuses[victim].node_id.clone();
    let old_incarnation = statuses[victim].incarnation.clone();
    assert_eq!(old_origin, origin, "kill -9 keeps the incarnation");
    let total = warm_seq + 40;
    assert_eq!(seq_of(&statuses[victim], &old_origin), total);

    // Wipe its data dir: it comes back as a new incarnation and catches up.
    cluster.nodes[victim].kill9();
    std::fs::remove_dir_all(&cluster.specs[victim].2).unwrap();
    cluster.nodes[victim] = cluster.spawn(victim);
    let after = cluster.converged(Duration::from_secs(30)).await;
    assert_eq!(after.digest, before_wipe.digest, "nothing lost, nothing added");
    let statuses = cluster.statuses().await;
    assert_ne!(
        statuses[victim].incarnation, old_incarnation,
        "a wiped disk is a new incarnation"
    );
    for s in &statuses {
        // Every node, the reborn one included, holds every op of the old incarnation.
        assert_eq!(
            seq_of(s, &old_origin),
            total,
            "{} lost ops of {old_origin}: {:?}",
            s.node_name,
            s.version_vector
        );
    }
    // Every revocation of the old incarnation is still enforced everywhere.
    for n in &cluster.nodes {
        let r = n
            .client()
            .await
            .check(pb::CheckRequest {
                token_id: Some("own-39".into()),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(r.revoked);
    }
    // And the new incarnation starts its own op sequence at 1.
    let mut c = cluster.nodes[victim].client().await;
    let token = cluster.nodes[victim].admin_token();
    let fresh = c
        .revoke(with_bearer(revoke_token("reborn-1"), &token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(fresh.seq, 1);
    assert_ne!(fresh.node_id, old_origin);
    cluster.converged(Duration::from_secs(20)).await;
}
