//! `rescind-client` against real nodes: nearest-first with failover, every
//! answer naming its node, and fail policies when every node is down.

use std::time::Duration;

use rescind_client::{Client, ClientConfig, FailPolicy, Query, Why};
use rescind_tests::cluster::{Cluster, revoke_token};
use rescind_tests::with_bearer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checks_survive_the_nearest_node_and_policies_decide_when_all_are_down() {
    let mut cluster = Cluster::start(1, 3, "");
    let endpoints: Vec<String> = cluster.nodes.iter().map(|n| n.addr.to_string()).collect();
    let budget = Duration::from_millis(1500);
    let client = Client::connect(ClientConfig::new(endpoints.clone()).timeout(budget))
        .await
        .unwrap();
    assert!(
        client
            .endpoints()
            .iter()
            .all(|e| e.rtt.is_some() && e.node_id.is_some()),
        "every endpoint was probed: {:?}",
        client.endpoints()
    );
    let node0 = &cluster.nodes[0];
    let mut admin = node0.client().await;
    admin
        .revoke(with_bearer(revoke_token("leaked"), &node0.admin_token()))
        .await
        .unwrap();
    cluster.converged(Duration::from_secs(30)).await;
    let nearest = client.order()[0].1.clone();
    let nearest_idx = endpoints.iter().position(|e| *e == nearest).unwrap();
    let nearest_name = cluster.specs[nearest_idx].0.clone();
    let mut answered_by = Vec::new();
    for i in 0..200 {
        if i == 50 {
            cluster.nodes[nearest_idx].kill9();
        }
        let c = client
            .check(&Query::token("leaked"))
            .await
            .expect("checks keep succeeding");
        assert!(c.revoked(), "answer {i} said allowed: {c:?}");
        assert!(!c.node_id.is_empty() && !c.endpoint.is_empty());
        answered_by.push((i, c.node_id, c.endpoint));
    }
    assert!(
        answered_by[..50]
            .iter()
            .all(|(_, n, _)| n.starts_with(&format!("{nearest_name}#")))
    );
    assert!(
        answered_by[50..]
            .iter()
            .all(|(_, n, e)| !n.starts_with(&format!("{nearest_name}#")) && *e != nearest),
        "checks after the kill were answered by the dead node?"
    );
    // Every endpoint down: Closed denies, Open allows, both say why, within the deadline.
    for (i, n) in cluster.nodes.iter_mut().enumerate() {
        if i != nearest_idx {
            n.kill9();
        }
    }
    let closed = FailPolicy::Closed {
        max_staleness: Duration::from_secs(30),
    };
    let bound = budget + Duration::from_secs(1);
    let v = tokio::time::timeout(bound, client.decide(&Query::token("anything"), closed))
        .await
        .expect("Closed decided within the deadline");
    assert!(!v.allow);
    assert!(matches!(v.why, Why::Unreachable(_)), "{:?}", v.why);
    assert!(
        v.why.to_string().contains("no rescind node answered"),
        "{}",
        v.why
    );
    let v = tokio::time::timeout(bound, client.decide(&Query::token("anything"), FailPolicy::Open))
        .await
        .expect("Open decided within the deadline");
    assert!(v.allow);
    assert!(v.why.to_string().starts_with("no answer:"), "{}", v.why);
}
