//! A cluster of real `rescind serve` processes on loopback.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use rescind_proto::v1 as pb;

use crate::NodeProc;

/// The cluster key every test cluster uses.
pub const KEY: &str = "test-cluster-key-0123456789";

/// Nodes `r{region}n{i}` in `regions` regions; node 0 is every other node's seed.
pub struct Cluster {
    /// The running nodes (None while stopped by a test).
    pub nodes: Vec<NodeProc>,
    /// Each node's name, region and data dir.
    pub specs: Vec<(String, String, PathBuf)>,
    /// Extra `serve` flags every node gets.
    pub extra: Vec<String>,
    _dirs: tempfile::TempDir,
}

impl Cluster {
    /// Start `regions` × `per_region` nodes; `config` is written to a TOML file
    /// every node loads (for keys that have no flag).
    pub fn start(regions: usize, per_region: usize, config: &str) -> Cluster {
        let dirs = tempfile::tempdir().unwrap();
        let config_path = dirs.path().join("cluster.toml");
        std::fs::write(&config_path, config).unwrap();
        let extra = vec![
            "--cluster-key".to_string(),
            KEY.to_string(),
            "--config".to_string(),
            config_path.display().to_string(),
        ];
        let mut specs = Vec::new();
        for r in 0..regions {
            for i in 0..per_region {
                let name = format!("r{r}n{i}");
                specs.push((name.clone(), format!("region-{r}"), dirs.path().join(&name)));
            }
        }
        let mut cluster = Cluster {
            nodes: Vec::new(),
            specs,
            extra,
            _dirs: dirs,
        };
        for i in 0..cluster.specs.len() {
            let node = cluster.spawn(i);
            cluster.nodes.push(node);
        }
        cluster
    }

    /// Start node `i` (again), seeded with node 0 (or node 1 for node 0 itself
    /// once others exist).
    pub fn spawn(&self, i: usize) -> NodeProc {
        let (name, region, dir) = &self.specs[i];
        let mut args: Vec<String> = vec![
            "--node-name".into(),
            name.clone(),
            "--region".into(),
            region.clone(),
        ];
        args.extend(self.extra.iter().cloned());
        let seed = match i {
            0 => self.nodes.get(1).map(|n| n.addr),
            _ => self.nodes.first().map(|n| n.addr),
        };
        if let Some(seed) = seed {
            args.push("--peer".into());
            args.push(seed.to_string());
        }
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        NodeProc::start(dir, &refs)
    }

    /// Status of every node.
    pub async fn statuses(&self) -> Vec<pb::StatusResponse> {
        let mut out = Vec::new();
        for n in &self.nodes {
            out.push(
                n.client()
                    .await
                    .status(pb::StatusRequest {})
                    .await
                    .unwrap()
                    .into_inner(),
            );
        }
        out
    }

    /// Wait until every node reports the same digest, counts and version
    /// vector (so each knows it holds the same ops); returns one status.
    pub async fn converged(&self, within: Duration) -> pb::StatusResponse {
        let deadline = Instant::now() + within;
        loop {
            let all = self.statuses().await;
            let first = &all[0];
            let key = |s: &pb::StatusResponse| {
                let mut vv: Vec<_> = s
                    .version_vector
                    .iter()
                    .map(|e| (e.origin.clone(), e.seq))
                    .collect();
                vv.sort();
                (s.digest.clone(), s.deny_entries, s.cutoffs, vv)
            };
            if all.iter().all(|s| key(s) == key(first)) {
                return first.clone();
            }
            if Instant::now() > deadline {
                let summary: Vec<_> = all
                    .iter()
                    .map(|s| (s.node_name.clone(), s.deny_entries, s.digest.clone()))
                    .collect();
                panic!("no convergence within {within:?}: {summary:#?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Poll `f` until it returns Some, or panic at the deadline.
pub async fn eventually<T, F, Fut>(what: &str, within: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub use crate::revoke_token;
