//! The audit trail across nodes: revocations by two actors on two nodes,
//! listed on a third after convergence, by actor; some from the audit files
//! (their ops compacted), the rest from the op-log tail.

use std::collections::BTreeSet;
use std::time::Duration;

use rescind_tests::cluster::{Cluster, eventually};

fn ids(listing: &serde_json::Value) -> BTreeSet<String> {
    listing["records"]
        .as_array()
        .expect("records")
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_on_a_third_node_lists_exactly_one_actors_revocations() {
    let cluster = Cluster::start(1, 3, "checkpoint_ops = 3\n");
    // Every node knows the other two first: a node compacts only what its
    // known peers acknowledged, and one that joins later is caught up by
    // snapshot, with gaps in its audit trail instead of records.
    eventually(
        "every node to know both others",
        Duration::from_secs(30),
        || async {
            let all = cluster.statuses().await;
            all.iter().all(|s| s.peer_lag.len() == 2).then_some(())
        },
    )
    .await;
    let revoke = |node: usize, args: &[&str]| {
        let out = cluster.nodes[node].cli(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    for i in 0..4 {
        revoke(
            0,
            &[
                "revoke",
                "token",
                &format!("alice-{i}"),
                "--actor",
                "alice",
                "--reason",
                "leak",
            ],
        );
    }
    revoke(1, &["revoke", "token", "alice-4", "--actor", "alice"]);
    revoke(1, &["revoke", "token", "bob-0", "--actor", "bob"]);
    revoke(
        1,
        &[
            "revoke",
            "token",
            "bob-1",
            "--actor",
            "bob",
            "--issuer",
            "https://idp.example",
        ],
    );
    revoke(
        1,
        &["revoke", "subject", "user-9", "--before", "now", "--actor", "bob"],
    );
    cluster.converged(Duration::from_secs(30)).await;

    let third = &cluster.nodes[2];
    let alice = third.cli_json(&["audit", "--actor", "alice"]);
    assert!(
        alice["gaps"].as_array().unwrap().is_empty(),
        "no snapshot was needed: {alice}"
    );
    let want: BTreeSet<String> = (0..5).map(|i| format!("alice-{i}")).collect();
    assert_eq!(ids(&alice), want, "{alice}");
    let bob = third.cli_json(&["audit", "--actor", "bob"]);
    assert_eq!(
        ids(&bob),
        ["bob-0", "bob-1", "user-9"]
            .into_iter()
            .map(String::from)
            .collect(),
        "{bob}"
    );
    let records = bob["records"].as_array().unwrap();
    let with_issuer = records.iter().find(|r| r["id"] == "bob-1").unwrap();
    assert_eq!(with_issuer["issuer"], "https://idp.example");
    let cutoff = records.iter().find(|r| r["id"] == "user-9").unwrap();
    assert_eq!(cutoff["target"], "subject");
    // Filters combine; an unknown kind is refused naming the flag's field.
    let subjects = third.cli_json(&["audit", "--target", "subject"]);
    assert_eq!(ids(&subjects).len(), 1);
    let out = third.cli(&["audit", "--target", "users"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("target"));
    // The table form names the actor and the origin of each.
    let out = third.cli(&["audit", "--actor", "alice"]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("5 revocation(s)") && table.contains("r0n0#"),
        "{table}"
    );
}
