//! Health as orchestrators and probes see it: a standard `grpc.health.v1`
//! client, `rescind health` (the container HEALTHCHECK), `/readyz` and
//! `/metrics`, on a node that is recovering and then recovered. (Loading is
//! covered by `rescind-node`'s `health` unit test, which holds the load.)

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use rescind_tests::cluster::{Cluster, eventually};
use rescind_tests::gateway::http;
use rescind_tests::{NodeProc, rescind_bin, revoke_token};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

async fn grpc_health(node: &NodeProc, service: &str) -> ServingStatus {
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", node.addr))
        .expect("url")
        .connect()
        .await
        .expect("connect");
    let mut client = HealthClient::new(channel);
    client
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .expect("health check")
        .into_inner()
        .status()
}

/// `rescind health` against `node`: (exit success, stdout).
fn cli_health(node: &NodeProc) -> (bool, String) {
    let out = Command::new(rescind_bin())
        .args(["health", "--addr", &node.addr.to_string()])
        .output()
        .expect("run rescind health");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

async fn get(node: &NodeProc, path: &str) -> (u16, String) {
    let url = format!("http://{}{path}", node.http.expect("http listener"));
    let r = http().get(url).send().await.expect("GET");
    (r.status().as_u16(), r.text().await.unwrap_or_default())
}

fn checkpoint_files(data_dir: &Path) -> Vec<PathBuf> {
    let dir = data_dir.join("checkpoints");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "rsc"));
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recovering_node_is_not_serving_until_a_peer_gives_it_its_state() {
    let mut cluster = Cluster::start(1, 2, "checkpoint_ops = 1\n");
    for i in 0..10 {
        let n = &cluster.nodes[0];
        n.client()
            .await
            .revoke(n.admin(revoke_token(&format!("health-{i}"))))
            .await
            .unwrap();
    }
    cluster.converged(Duration::from_secs(30)).await;
    assert_eq!(grpc_health(&cluster.nodes[1], "").await, ServingStatus::Serving);
    assert!(cli_health(&cluster.nodes[1]).0);

    // Node 1 loses its checkpoints while its only peer is frozen: it starts
    // in recovery and stays there.
    let dir = cluster.specs[1].2.clone();
    cluster.nodes[1].terminate();
    for f in checkpoint_files(&dir) {
        let mut bytes = std::fs::read(&f).unwrap();
        let at = bytes.len() / 2;
        bytes[at] ^= 0x40;
        std::fs::write(&f, bytes).unwrap();
    }
    cluster.nodes[0].signal("STOP");
    let node = cluster.spawn(1);
    for service in ["", "rescind.v1.Revocations"] {
        assert_eq!(
            grpc_health(&node, service).await,
            ServingStatus::NotServing,
            "{service:?}"
        );
    }
    let (ok, said) = cli_health(&node);
    assert!(!ok && said.contains("NOT_SERVING"), "rescind health: {said}");
    let (code, body) = get(&node, "/readyz").await;
    assert!(code == 503 && body.contains("recovering"), "{code} {body}");
    assert_eq!(get(&node, "/healthz").await.0, 200, "alive while recovering");
    let (_, metrics) = get(&node, "/metrics").await;
    assert!(metrics.contains("\nrescind_recovering 1\n"), "{metrics}");

    // The peer thaws: the node adopts its snapshot and serves.
    cluster.nodes[0].signal("CONT");
    eventually(
        "the recovered node to report SERVING",
        Duration::from_secs(60),
        || async { (grpc_health(&node, "").await == ServingStatus::Serving).then_some(()) },
    )
    .await;
    assert_eq!(
        grpc_health(&node, "rescind.v1.Revocations").await,
        ServingStatus::Serving
    );
    let (ok, said) = cli_health(&node);
    assert!(ok && said.contains("SERVING"), "rescind health: {said}");
    let (code, body) = get(&node, "/readyz").await;
    assert_eq!(code, 200, "{body}");
    assert!(!node.status().await.recovering);
    cluster.nodes[1] = node;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_cluster_key_and_peers_without_a_key_are_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let serve = |extra: &[&str]| {
        Command::new(rescind_bin())
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--http-listen",
                "off",
                "--data-dir",
            ])
            .arg(dir.path())
            .args(extra)
            .env_remove("RESCIND_CLUSTER_KEY")
            .env_remove("RESCIND_CONFIG")
            .output()
            .expect("run rescind serve")
    };
    let out = serve(&["--cluster-key", "short-key", "--peer", "127.0.0.1:9"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("cluster_key") && err.contains("16..=256") && err.contains("got 9"),
        "{err}"
    );
    let out = serve(&["--peer", "127.0.0.1:9"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("no cluster key") && err.contains("peer"), "{err}");
    let key_file = dir.path().join("keys");
    std::fs::write(&key_file, "a-good-key-0123456789\nbad key with spaces\n").unwrap();
    let out = serve(&["--cluster-key-file", key_file.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("line 2") && err.contains("visible ASCII"), "{err}");
    assert!(
        !dir.path().join("db").exists(),
        "a refused config touches no data dir"
    );
}
