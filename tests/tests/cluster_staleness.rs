//! Staleness tells the truth: when a whole region stops, every other node's
//! staleness for that region grows; when it resumes, staleness falls back and
//! the digests agree.

use std::time::Duration;

use rescind_proto::v1 as pb;
use rescind_tests::cluster::{Cluster, eventually, revoke_token};
use rescind_tests::with_bearer;

fn lag(status: &pb::StatusResponse, node: &str) -> Option<u64> {
    status
        .peer_lag
        .iter()
        .find(|p| p.node == node)
        .map(|p| p.staleness_ms)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_region_shows_in_staleness_and_recovers() {
    let cluster = Cluster::start(3, 2, "");
    // Everyone knows everyone and is fresh.
    eventually("a fresh cluster", Duration::from_secs(20), || async {
        let all = cluster.statuses().await;
        all.iter()
            .all(|s| s.peer_lag.len() == 5 && s.staleness_ms < 2_000)
            .then_some(())
    })
    .await;

    // Freeze region 2 (nodes 4 and 5), then revoke in region 0.
    cluster.nodes[4].signal("STOP");
    cluster.nodes[5].signal("STOP");
    let mut a = cluster.nodes[0].client().await;
    let token = cluster.nodes[0].admin_token();
    for i in 0..20 {
        a.revoke(with_bearer(revoke_token(&format!("while-stopped-{i}")), &token))
            .await
            .unwrap();
    }
    let stale = eventually(
        "staleness for the stopped region to pass 3 s",
        Duration::from_secs(20),
        || async {
            let s = cluster.nodes[0].status().await;
            (lag(&s, "r2n0")? > 3_000 && lag(&s, "r2n1")? > 3_000).then_some(s)
        },
    )
    .await;
    // The running regions stay fresh, and the node's own staleness is the worst lag.
    assert!(lag(&stale, "r1n0").unwrap() < 2_000, "{:?}", stale.peer_lag);
    assert!(stale.staleness_ms > 3_000);
    let check = a
        .check(pb::CheckRequest {
            token_id: Some("while-stopped-0".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(check.revoked);
    assert!(
        check.staleness_ms > 3_000,
        "Check reports staleness too: {}",
        check.staleness_ms
    );

    // Resume: staleness falls below 2 s everywhere and the digests agree.
    cluster.nodes[4].signal("CONT");
    cluster.nodes[5].signal("CONT");
    eventually(
        "staleness below 2 s on every node",
        Duration::from_secs(20),
        || async {
            let all = cluster.statuses().await;
            all.iter().all(|s| s.staleness_ms < 2_000).then_some(())
        },
    )
    .await;
    let agreed = cluster.converged(Duration::from_secs(10)).await;
    assert_eq!(agreed.deny_entries, 20);

    // Region 2 goes away for good: staleness grows until an operator retires it.
    let mut cluster = cluster;
    cluster.nodes[4].kill9();
    cluster.nodes[5].kill9();
    eventually(
        "staleness for the dead region",
        Duration::from_secs(20),
        || async {
            let s = cluster.nodes[0].status().await;
            (s.staleness_ms > 3_000).then_some(())
        },
    )
    .await;
    let out = cluster.nodes[0].cli(&["peers", "remove", "r2n0"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Client flags before the subcommand count too (they used to be ignored).
    let out = std::process::Command::new(rescind_tests::rescind_bin())
        .args([
            "peers",
            "--addr",
            &cluster.nodes[0].addr.to_string(),
            "--json",
            "remove",
            "r2n1",
        ])
        .env("RESCIND_DATA_DIR", &cluster.nodes[0].data_dir)
        .env_remove("RESCIND_TOKEN")
        .env_remove("RESCIND_ADDR")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let answer: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("--json before the subcommand");
    assert_eq!(answer["removed"], true, "{answer}");
    let unknown = cluster.nodes[0].cli(&["peers", "remove", "nobody"]);
    assert!(!unknown.status.success(), "removing an unknown node fails");
    // The retirement spreads: every live node is fresh again and lists them as removed.
    let live = &cluster.nodes[..4];
    eventually(
        "live nodes fresh after the retirement",
        Duration::from_secs(20),
        || async {
            for n in live {
                let s = n.status().await;
                if s.staleness_ms >= 2_000 || s.peer_lag.iter().any(|p| p.node.starts_with("r2")) {
                    return None;
                }
            }
            Some(())
        },
    )
    .await;
    let listed = live[3].cli_json(&["peers"]);
    let peers = listed["peers"].as_array().unwrap();
    assert!(
        peers
            .iter()
            .filter(|p| p["name"].as_str().unwrap().starts_with("r2"))
            .all(|p| p["removed"] == true),
        "{listed}"
    );
}
