//! A real Prometheus (Debian's `prometheus`, which `.ci/run` installs)
//! scrapes a 3-node loopback cluster; the test revokes and checks, then asks
//! Prometheus's HTTP API what it saw.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rescind_proto::v1 as pb;
use rescind_tests::cluster::{Cluster, eventually};
use rescind_tests::gateway::http;
use rescind_tests::revoke_token;
use serde_json::Value;

/// The Prometheus server binary.
fn prometheus_bin() -> PathBuf {
    for p in ["/usr/bin/prometheus", "/usr/local/bin/prometheus"] {
        if Path::new(p).exists() {
            return p.into();
        }
    }
    panic!("prometheus is not installed: `apt-get install prometheus` (.ci/run does)");
}

/// A port free a moment ago (Prometheus cannot report a port 0 it bound).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Prometheus {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    /// Scrape `targets` every second.
    fn start(targets: &[SocketAddr]) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let list: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: rescind\n    \
             static_configs:\n      - targets: [{}]\n",
            list.join(", ")
        );
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config).unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let child = Command::new(prometheus_bin())
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("prometheus.log")).unwrap())
            .spawn()
            .expect("start prometheus");
        Prometheus {
            child,
            addr,
            _dir: dir,
        }
    }

    /// The result vector of an instant query (None while Prometheus is not up).
    async fn query(&self, q: &str) -> Option<Vec<Value>> {
        let url = format!("http://{}/api/v1/query", self.addr);
        let r = http().post(url).form(&[("query", q)]).send().await.ok()?;
        let v: Value = r.json().await.ok()?;
        assert_eq!(v["status"], "success", "{q}: {v}");
        v["data"]["result"].as_array().cloned()
    }

    /// The single value of a scalar-like query.
    async fn value(&self, q: &str) -> Option<f64> {
        let result = self.query(q).await?;
        result.first()?["value"][1].as_str()?.parse().ok()
    }
}

async fn check(node: &rescind_tests::NodeProc, id: &str) -> bool {
    node.client()
        .await
        .check(pb::CheckRequest {
            token_id: Some(id.into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .revoked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_propagation_and_check_counters_of_a_three_node_cluster() {
    let cluster = Cluster::start(3, 1, "");
    // Every node has heard from every other: propagation is tracked per peer.
    eventually(
        "every node to know its peers",
        Duration::from_secs(60),
        || async {
            let all = cluster.statuses().await;
            all.iter()
                .all(|s| s.staleness_ms != u64::MAX && s.peer_lag.len() == 2)
                .then_some(())
        },
    )
    .await;
    let targets: Vec<SocketAddr> = cluster.nodes.iter().map(|n| n.http.unwrap()).collect();
    let prom = Prometheus::start(&targets);
    eventually(
        "Prometheus to scrape all three nodes",
        Duration::from_secs(60),
        || async { (prom.value("sum(up{job=\"rescind\"})").await? == 3.0).then_some(()) },
    )
    .await;
    // Each node tracks each peer (3 nodes × 2 peer regions), scraped before
    // any revocation: rate() then sees the first ones.
    eventually(
        "a scrape with every empty propagation series",
        Duration::from_secs(30),
        || async {
            let n = prom.query("rescind_propagation_seconds_count").await?.len();
            (n == 6).then_some(())
        },
    )
    .await;

    let ids: Vec<String> = (0..12).map(|i| format!("prom-{i}")).collect();
    for (i, id) in ids.iter().enumerate() {
        let n = &cluster.nodes[i % 3];
        n.client().await.revoke(n.admin(revoke_token(id))).await.unwrap();
    }
    cluster.converged(Duration::from_secs(30)).await;
    // Checks: every id revoked on every node, and some never revoked.
    let (mut revoked, mut allowed) = (0, 0);
    for node in &cluster.nodes {
        for id in &ids {
            assert!(check(node, id).await, "{id}");
            revoked += 1;
        }
        for i in 0..5 {
            assert!(!check(node, &format!("never-{i}")).await);
            allowed += 1;
        }
    }

    let p99 = "histogram_quantile(0.99, rate(rescind_propagation_seconds_bucket[1m]))";
    let quantiles = eventually(
        "a p99 propagation from Prometheus",
        Duration::from_secs(60),
        || async {
            let rows = prom.query(p99).await?;
            let numbers: Vec<f64> = rows
                .iter()
                .filter_map(|r| r["value"][1].as_str()?.parse::<f64>().ok())
                .filter(|v| v.is_finite())
                .collect();
            (!numbers.is_empty()).then_some(numbers)
        },
    )
    .await;
    assert!(
        quantiles.iter().all(|q| *q >= 0.0 && *q <= 30.0),
        "p99 propagation within the 30 s SLO: {quantiles:?}"
    );
    // 12 ops, each observed once for each of the 2 other nodes.
    eventually("24 propagation observations", Duration::from_secs(30), || async {
        let total = prom.value("sum(rescind_propagation_seconds_count)").await?;
        assert!(total <= 24.0, "an op observed twice: {total}");
        (total == 24.0).then_some(())
    })
    .await;

    let want = [("revoked", revoked as f64), ("allowed", allowed as f64)];
    for (result, n) in want {
        let q = format!("sum(rescind_checks_total{{api=\"grpc\",result=\"{result}\"}})");
        eventually(&format!("{q} == {n}"), Duration::from_secs(30), || async {
            (prom.value(&q).await? == n).then_some(())
        })
        .await;
    }
    let by_reason = prom
        .value("sum(rescind_checks_total{result=\"revoked\",reason=\"token_id\"})")
        .await
        .unwrap();
    assert_eq!(by_reason, revoked as f64);
    let unavailable = prom
        .value("sum(rescind_checks_total{result=\"unavailable\"})")
        .await
        .unwrap();
    assert_eq!(unavailable, 0.0);
}
