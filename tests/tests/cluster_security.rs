//! Read-your-revocations across nodes, and peer authentication: a wrong
//! cluster key is refused, and garbage from a peer changes nothing.

use std::time::{Duration, Instant};

use rescind_proto::v1 as pb;
use rescind_proto::v1::peers_client::PeersClient;
use rescind_tests::cluster::{Cluster, KEY, revoke_token};
use rescind_tests::{NodeProc, with_bearer};
use tonic::Code;

fn peer_request<T>(message: T, key: Option<&str>, cluster_id: &str) -> tonic::Request<T> {
    let mut req = tonic::Request::new(message);
    req.metadata_mut()
        .insert("rescind-cluster-id", cluster_id.parse().unwrap());
    if let Some(k) = key {
        req.metadata_mut()
            .insert("rescind-cluster-key", k.parse().unwrap());
    }
    req
}

fn from() -> Option<pb::NodeInfo> {
    Some(pb::NodeInfo {
        name: "intruder".into(),
        incarnation: 1,
        region: "nowhere".into(),
        addr: "127.0.0.1:9".into(),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consistency_tokens_and_peer_authentication() {
    let cluster = Cluster::start(3, 1, "");
    let (a, b) = (&cluster.nodes[0], &cluster.nodes[2]);
    // An outsider with the wrong cluster key, seeded with node A: cut off from
    // the cluster as surely as by a partition.
    let outsider_dir = tempfile::tempdir().unwrap();
    let seed = a.addr.to_string();
    let outsider = NodeProc::start(
        outsider_dir.path(),
        &[
            "--node-name",
            "outsider",
            "--cluster-key",
            "not-the-cluster-key-000",
            "--peer",
            &seed,
        ],
    );

    // Revoke on A; B, asked with the consistency token, answers revoked — never allowed.
    let mut ca = a.client().await;
    let ack = ca
        .revoke(with_bearer(
            revoke_token("read-your-revocation"),
            &a.admin_token(),
        ))
        .await
        .unwrap()
        .into_inner();
    let ask = |ct: Vec<u8>| pb::CheckRequest {
        token_id: Some("read-your-revocation".into()),
        consistency_token: Some(ct),
        ..Default::default()
    };
    let on_b = b
        .client()
        .await
        .check(ask(ack.consistency_token.clone()))
        .await
        .unwrap()
        .into_inner();
    assert!(on_b.revoked);
    assert_eq!(on_b.reason, pb::Reason::TokenId as i32);

    // The outsider cannot get A's op: with a 1 s deadline it says UNAVAILABLE in time.
    let mut req = tonic::Request::new(ask(ack.consistency_token.clone()));
    req.set_timeout(Duration::from_secs(1));
    let started = Instant::now();
    let err = outsider
        .client()
        .await
        .check(req)
        .await
        .expect_err("the outsider cannot have caught up");
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert!(err.message().contains("not caught up"), "{}", err.message());
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "answered within its deadline"
    );

    // Peer calls with a wrong or missing key are refused (each carrying
    // the cluster's id, which is checked first).
    let cluster_id = ca
        .status(pb::StatusRequest {})
        .await
        .unwrap()
        .into_inner()
        .cluster_id;
    let mut peers = PeersClient::connect(format!("http://{}", a.addr)).await.unwrap();
    let exchange = || pb::ExchangeRequest {
        from: from(),
        ..Default::default()
    };
    for key in [Some("not-the-cluster-key-000"), None] {
        let err = peers
            .exchange(peer_request(exchange(), key, &cluster_id))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
    }
    // The outsider learned nothing and the cluster did not learn it.
    let status = outsider.status().await;
    assert_eq!(status.deny_entries, 0);
    let members = ca.list_peers(pb::ListPeersRequest {}).await.unwrap().into_inner();
    assert!(
        members
            .peers
            .iter()
            .all(|p| p.name != "outsider" && p.name != "intruder")
    );

    // Garbage from an authenticated peer is rejected whole; the digest does not move.
    let before = ca.status(pb::StatusRequest {}).await.unwrap().into_inner().digest;
    let garbage = pb::PushRequest {
        from: from(),
        ops: vec![vec![0xde, 0xad, 0xbe, 0xef], Vec::new()],
    };
    let err = peers
        .push(peer_request(garbage, Some(KEY), &cluster_id))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(err.message().contains("ops[0]"), "{}", err.message());
    let no_from = pb::PushRequest {
        from: None,
        ops: Vec::new(),
    };
    let err = peers
        .push(peer_request(no_from, Some(KEY), &cluster_id))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let bad_clock = pb::ExchangeRequest {
        from: from(),
        clock: vec![pb::ClockEntry {
            origin_node: "bad name!".into(),
            incarnation: 1,
            seq: 5,
        }],
        members: Vec::new(),
    };
    let err = peers
        .exchange(peer_request(bad_clock, Some(KEY), &cluster_id))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let bad_cursor = pb::SnapshotRequest {
        from: from(),
        cursor: vec![0xff; 8],
    };
    let err = peers
        .snapshot(peer_request(bad_cursor, Some(KEY), &cluster_id))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let after = ca.status(pb::StatusRequest {}).await.unwrap().into_inner().digest;
    assert_eq!(before, after, "garbage changed the state");
    cluster.converged(Duration::from_secs(10)).await;
}
