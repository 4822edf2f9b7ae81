//! Edges: a `rescind edge` process and an in-process `Replica` follow a
//! 3 × 2 cluster, fail over when their node dies, and a Watch subscriber
//! that stops reading is cut off without hurting the node.

use std::time::Duration;

use rescind_client::{ClientConfig, Replica, ReplicaConfig};
use rescind_proto::v1 as pb;
use rescind_tests::cluster::{Cluster, eventually, revoke_token};
use rescind_tests::edge::EdgeProc;
use rescind_tests::{NodeProc, with_bearer};

/// Revoke `n` ids `{prefix}-{i}` spread over every node, 12 at a time.
async fn revoke_many(cluster: &Cluster, prefix: &str, n: usize) {
    let mut tasks = Vec::new();
    for c in 0..12 {
        let node = &cluster.nodes[c % cluster.nodes.len()];
        let mut client = node.client().await;
        let token = node.admin_token();
        let prefix = prefix.to_owned();
        tasks.push(tokio::spawn(async move {
            for i in (c..n).step_by(12) {
                let req = with_bearer(revoke_token(&format!("{prefix}-{i}")), &token);
                client.revoke(req).await.expect("revoke acked");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

fn replica_config(cluster: &Cluster) -> ReplicaConfig {
    let endpoints: Vec<String> = cluster.nodes.iter().map(|n| n.addr.to_string()).collect();
    ReplicaConfig::new(ClientConfig::new(endpoints))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edge_and_a_replica_hold_the_clusters_digest_after_3000_revokes() {
    let cluster = Cluster::start(3, 2, "");
    let addrs: Vec<_> = cluster.nodes.iter().map(|n| n.addr).collect();
    let edge = EdgeProc::start(&addrs, &[]);
    let replica = Replica::start(replica_config(&cluster)).await.unwrap();
    revoke_many(&cluster, "t", 3000).await;
    let want = cluster.converged(Duration::from_secs(30)).await;
    assert_eq!(want.deny_entries, 3000);
    let edge_status = eventually(
        "the edge to hold the cluster's digest",
        Duration::from_secs(10),
        || async {
            let s = edge.status().await;
            (s.digest == want.digest).then_some(s)
        },
    )
    .await;
    assert_eq!(edge_status.deny_entries, 3000);
    assert!(
        !edge_status.upstream.is_empty(),
        "the edge's Status names its upstream"
    );
    eventually(
        "the replica to hold the cluster's digest",
        Duration::from_secs(10),
        || async { (replica.status().digest.to_string() == want.digest).then_some(()) },
    )
    .await;
    // Its answers come from memory, and know their staleness.
    let a = replica.check(&rescind_core::CheckQuery::token("t-2999"));
    assert!(a.decision.revoked());
    eventually(
        "the replica to know its staleness",
        Duration::from_secs(10),
        || async { replica.staleness() },
    )
    .await;
    let mut edge_client = edge.client().await;
    let r = edge_client
        .check(pb::CheckRequest {
            token_id: Some("t-17".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(r.revoked && r.node_id.starts_with("edge-"), "{r:?}");
    let batch = edge_client
        .check_batch(pb::CheckBatchRequest::from(vec![
            pb::CheckRequest {
                token_id: Some("t-1".into()),
                ..Default::default()
            },
            pb::CheckRequest {
                token_id: Some("never-revoked".into()),
                ..Default::default()
            },
        ]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        batch.results.iter().map(|r| r.revoked).collect::<Vec<_>>(),
        vec![true, false]
    );
    let refused = edge_client
        .revoke(with_bearer(revoke_token("x"), "whatever"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unimplemented);
    assert!(
        refused.message().contains("send revocations to a node"),
        "{refused:?}"
    );
}

/// Which node (index) an upstream string `name#inc at addr` names.
fn followed(cluster: &Cluster, upstream: &str) -> Option<usize> {
    let addr = upstream.rsplit(" at ").next()?;
    cluster.nodes.iter().position(|n| n.addr.to_string() == addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edge_resumes_on_another_node_when_its_node_is_killed() {
    let mut cluster = Cluster::start(1, 3, "");
    let addrs: Vec<_> = cluster.nodes.iter().map(|n| n.addr).collect();
    let edge = EdgeProc::start(&addrs, &[]);
    revoke_many(&cluster, "before", 300).await;
    cluster.converged(Duration::from_secs(30)).await;
    let first = eventually("the edge to follow a node", Duration::from_secs(10), || async {
        followed(&cluster, &edge.status().await.upstream)
    })
    .await;
    cluster.nodes[first].kill9();
    let killed_addr = cluster.nodes[first].addr;
    // Within 2 s it follows another node.
    let next = eventually(
        "the edge to follow another node",
        Duration::from_secs(2),
        || async { followed(&cluster, &edge.status().await.upstream).filter(|i| *i != first) },
    )
    .await;
    assert_ne!(cluster.nodes[next].addr, killed_addr);
    // Revocations made meanwhile on the survivors reach it, nothing missed.
    let survivor = &cluster.nodes[next];
    let mut client = survivor.client().await;
    for i in 0..200 {
        let req = with_bearer(revoke_token(&format!("after-{i}")), &survivor.admin_token());
        client.revoke(req).await.expect("revoke on a survivor");
    }
    let want = eventually("the survivors to converge", Duration::from_secs(30), || async {
        let mut digests = Vec::new();
        for (i, n) in cluster.nodes.iter().enumerate() {
            if i != first {
                digests.push(n.status().await);
            }
        }
        digests
            .iter()
            .all(|s| s.digest == digests[0].digest)
            .then(|| digests[0].clone())
    })
    .await;
    assert_eq!(want.deny_entries, 500);
    eventually(
        "the edge to hold the survivors' digest",
        Duration::from_secs(10),
        || async { (edge.status().await.digest == want.digest).then_some(()) },
    )
    .await;
}

/// Resident memory of a process, KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_subscriber_that_stops_reading_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProc::start(dir.path(), &["--watch-stall-timeout", "1s"]);
    // A subscriber with a small receive window that never reads.
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", node.addr))
        .unwrap()
        .initial_stream_window_size(65_535)
        .initial_connection_window_size(65_535)
        .connect()
        .await
        .unwrap();
    let mut stalled = pb::revocations_client::RevocationsClient::new(channel);
    let stream = stalled
        .watch(pb::WatchRequest::default())
        .await
        .unwrap()
        .into_inner();
    let pid = node.pid();
    let rss_before = rss_kib(pid);
    // 200 revokes/s for 10 s, with long ids so the stream's windows fill.
    let mut writer = node.client().await;
    let token = node.admin_token();
    let mut tick = tokio::time::interval(Duration::from_millis(5));
    let mut acks = Vec::new();
    let pad = "x".repeat(400);
    for i in 0..2000 {
        tick.tick().await;
        let started = std::time::Instant::now();
        let req = with_bearer(revoke_token(&format!("{pad}-{i}")), &token);
        writer
            .revoke(req)
            .await
            .expect("revokes go on while a subscriber stalls");
        acks.push(started.elapsed());
    }
    let status = node.status().await;
    assert!(
        status.watchers_cut_off >= 1,
        "the stalled subscriber was not cut off: {status:?}"
    );
    let rss_after = rss_kib(pid);
    // Flat: the stalled stream holds at most its buffer and windows.
    assert!(
        rss_after < rss_before + 32 * 1024,
        "RSS grew from {rss_before} KiB to {rss_after} KiB"
    );
    let p50 = |v: &[Duration]| {
        let mut v = v.to_vec();
        v.sort();
        v[v.len() / 2]
    };
    println!(
        "revoke ack p50: first second {:?}, last second {:?}; RSS {rss_before} -> {rss_after} KiB",
        p50(&acks[..200]),
        p50(&acks[1800..])
    );
    // Once it reads again it gets the cut-off status.
    let mut stream = stream;
    let ended = loop {
        match tokio::time::timeout(Duration::from_secs(10), stream.message()).await {
            Ok(Ok(Some(_))) => continue,
            Ok(Ok(None)) => panic!("the stream ended without a status"),
            Ok(Err(status)) => break status,
            Err(_) => panic!("no cut-off status within 10 s of reading again"),
        }
    };
    assert_eq!(ended.code(), tonic::Code::ResourceExhausted, "{ended:?}");
    assert!(ended.message().contains("cut off"), "{ended:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_refuses_bad_vectors_other_clusters_and_too_many_watchers() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = NodeProc::start(dir.path(), &["--max-watchers", "1"]);
    let mut client = node.client().await;
    let entry = |name: &str, seq| pb::ClockEntry {
        origin_node: name.into(),
        incarnation: 1,
        seq,
    };
    let bad = client
        .watch(pb::WatchRequest {
            from: vec![entry("bad\u{1}name", 1)],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
    assert!(bad.message().contains("from[0].origin_node"), "{bad:?}");
    let ahead = client
        .watch(pb::WatchRequest {
            from: vec![entry("elsewhere", 5)],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(ahead.code(), tonic::Code::FailedPrecondition);
    assert!(ahead.message().contains("has not caught up"), "{ahead:?}");
    let foreign = client
        .watch(pb::WatchRequest {
            cluster_id: "key-0000000000000000".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(foreign.code(), tonic::Code::FailedPrecondition);
    assert!(foreign.message().contains("belongs to cluster"), "{foreign:?}");
    // One watcher fits; the second is refused.
    let mut first = client
        .watch(pb::WatchRequest::default())
        .await
        .unwrap()
        .into_inner();
    let second = client.watch(pb::WatchRequest::default()).await.unwrap_err();
    assert_eq!(second.code(), tonic::Code::ResourceExhausted);
    assert!(second.message().contains("max_watchers"), "{second:?}");
    // A replica pointed at a node of another cluster refuses to follow it.
    let mut config = ReplicaConfig::new(ClientConfig::new([node.addr.to_string()]));
    config.cluster_id = Some("key-0000000000000000".into());
    let replica = Replica::start(config).await.unwrap();
    let why = eventually(
        "the replica to refuse the node",
        Duration::from_secs(10),
        || async { replica.status().last_error },
    )
    .await;
    assert!(why.contains("belongs to cluster"), "{why}");
    assert!(replica.status().upstream.is_none());
    // SIGTERM with a stream open: the node ends the stream and exits cleanly.
    node.terminate();
    let ended = loop {
        match first.message().await {
            Ok(Some(_)) => continue,
            other => break other,
        }
    };
    assert!(
        matches!(&ended, Err(s) if s.code() == tonic::Code::Unavailable && s.message().contains("shutting down")),
        "{ended:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_edge_serves_from_its_checkpoint_with_every_node_down() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = NodeProc::start(&dir.path().join("node"), &[]);
    let mut client = node.client().await;
    for i in 0..50 {
        let req = with_bearer(revoke_token(&format!("kept-{i}")), &node.admin_token());
        client.revoke(req).await.unwrap();
    }
    let want = node.status().await;
    let checkpoint = dir.path().join("edge.ckpt");
    let ckpt = checkpoint.display().to_string();
    let mut edge = EdgeProc::start(&[node.addr], &["--checkpoint", &ckpt]);
    eventually(
        "the edge to hold the node's digest",
        Duration::from_secs(10),
        || async { (edge.status().await.digest == want.digest).then_some(()) },
    )
    .await;
    edge.terminate();
    assert!(checkpoint.exists(), "a clean stop saves the checkpoint");
    node.kill9();
    // Every upstream is down: the restarted edge answers from its file.
    let edge = EdgeProc::start(&[node.addr], &["--checkpoint", &ckpt]);
    let s = edge.status().await;
    assert_eq!((s.digest.as_str(), s.deny_entries), (want.digest.as_str(), 50));
    assert!(s.upstream.is_empty(), "it follows nobody: {s:?}");
    assert_eq!(s.staleness_ms, u64::MAX, "and says its staleness is unknown");
    let r = edge
        .client()
        .await
        .check(pb::CheckRequest {
            token_id: Some("kept-7".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(r.revoked);
}
