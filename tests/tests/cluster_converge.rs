//! 6 nodes in 3 regions: 3,000 revokes from concurrent clients converge, and
//! the propagation time (ack on the origin → answered "revoked" by every other
//! node) is measured.

use std::time::{Duration, Instant};

use rescind_proto::v1 as pb;
use rescind_tests::cluster::{Cluster, revoke_token};

const CLIENTS: usize = 12;
const PER_CLIENT: usize = 250;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_thousand_revokes_converge_on_six_nodes() {
    let cluster = Cluster::start(3, 2, "");
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let origin = c % cluster.nodes.len();
        let mut writer = cluster.nodes[origin].client().await;
        let token = cluster.nodes[origin].admin_token();
        let mut readers = Vec::new();
        for (i, n) in cluster.nodes.iter().enumerate() {
            if i != origin {
                readers.push(n.client().await);
            }
        }
        tasks.push(tokio::spawn(async move {
            let mut delays = Vec::new();
            for i in 0..PER_CLIENT {
                let req = rescind_tests::with_bearer(revoke_token(&format!("c{c}-{i}")), &token);
                let ack = writer.revoke(req).await.expect("revoke acked").into_inner();
                let acked = Instant::now();
                // Ask every other node, with the consistency token: each answers
                // once it has applied the revocation, and must say revoked.
                let checks = readers.iter_mut().map(|r| {
                    let ct = ack.consistency_token.clone();
                    async move {
                        let resp = r
                            .check(pb::CheckRequest {
                                token_id: Some(format!("c{c}-{i}")),
                                consistency_token: Some(ct),
                                ..Default::default()
                            })
                            .await
                            .expect("check with consistency token")
                            .into_inner();
                        assert!(resp.revoked, "a node said allowed for an acknowledged revocation");
                        acked.elapsed()
                    }
                });
                delays.extend(futures_util::future::join_all(checks).await);
            }
            delays
        }));
    }
    let mut delays = Vec::new();
    for t in tasks {
        delays.extend(t.await.unwrap());
    }
    let last_ack = Instant::now();
    let agreed = cluster.converged(Duration::from_secs(10)).await;
    let took = last_ack.elapsed();
    assert_eq!(agreed.deny_entries, (CLIENTS * PER_CLIENT) as u64);
    assert!(took < Duration::from_secs(10));

    delays.sort_unstable();
    let pct = |p: f64| delays[((delays.len() as f64 * p) as usize).min(delays.len() - 1)];
    println!(
        "propagation over {} (revoke, other node) pairs: p50 {:?}, p99 {:?}, max {:?}; converged {:?} after the last ack",
        delays.len(),
        pct(0.50),
        pct(0.99),
        delays[delays.len() - 1],
        took
    );
    assert_eq!(delays.len(), CLIENTS * PER_CLIENT * 5);
}
