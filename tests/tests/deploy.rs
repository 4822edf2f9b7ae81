//! The deploy files: alert rules (`promtool check` and `promtool test`),
//! Kubernetes manifests (validated offline against the Kubernetes schemas),
//! and the names they use, checked against what a real node serves.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use rescind_tests::cluster::{Cluster, eventually};
use rescind_tests::gateway::http;
use rescind_tests::revoke_token;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn run(script: &str) {
    let out = Command::new("bash")
        .arg(repo().join(script))
        .output()
        .unwrap_or_else(|e| panic!("run {script}: {e}"));
    assert!(
        out.status.success(),
        "{script} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn alert_rules_pass_promtool_check_and_their_unit_tests() {
    run("deploy/prometheus/check.sh");
}

#[test]
fn kubernetes_manifests_validate_against_the_schemas() {
    run("deploy/kubernetes/validate.sh");
}

/// Every `rescind_*` / `process_*` name in `text`.
fn names_in(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for prefix in ["rescind_", "process_"] {
        let mut rest = text;
        while let Some(i) = rest.find(prefix) {
            let before = rest[..i].chars().next_back();
            let tail = &rest[i..];
            let len = tail
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(tail.len());
            if !before
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '/' || c == '-' || c == ':')
            {
                out.insert(tail[..len].to_owned());
            }
            rest = &tail[len..];
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_alerts_and_dashboard_use_is_served_by_a_node() {
    // Two nodes, one revocation and a checkpoint: every family has a series.
    let cluster = Cluster::start(2, 1, "checkpoint_ops = 1\n");
    let node = &cluster.nodes[0];
    let url = format!("http://{}/metrics", node.http.unwrap());
    eventually(
        "node 0 to track its peer",
        std::time::Duration::from_secs(60),
        || async {
            let text = http().get(&url).send().await.ok()?.text().await.ok()?;
            text.contains("rescind_propagation_seconds_count{peer_region=\"region-1\"} 0")
                .then_some(())
        },
    )
    .await;
    node.client()
        .await
        .revoke(node.admin(revoke_token("deploy-1")))
        .await
        .unwrap();
    cluster.converged(std::time::Duration::from_secs(30)).await;
    let served = eventually(
        "a propagation observation",
        std::time::Duration::from_secs(30),
        || async {
            let text = http().get(&url).send().await.ok()?.text().await.ok()?;
            let seen = text.contains("rescind_propagation_seconds_count{peer_region=\"region-1\"} 1");
            let staleness = ["rescind_staleness_seconds ", "rescind_peer_staleness_seconds{"];
            let known = staleness.iter().all(|n| text.contains(n));
            (seen && known && text.contains("rescind_checkpoint_age_seconds ")).then_some(text)
        },
    )
    .await;
    let mut exposed = BTreeSet::new();
    for line in served.lines().filter(|l| !l.starts_with('#')) {
        let name = line.split(['{', ' ']).next().unwrap_or_default();
        exposed.insert(name.to_owned());
    }
    for line in served.lines().filter_map(|l| l.strip_prefix("# TYPE ")) {
        exposed.insert(line.split(' ').next().unwrap().to_owned());
    }
    for file in [
        "deploy/prometheus/alerts.yml",
        "deploy/grafana/dashboards/rescind.json",
    ] {
        let text = std::fs::read_to_string(repo().join(file)).unwrap();
        // Recording rules define names of their own (`rescind:...` use a colon).
        let missing: Vec<String> = names_in(&text)
            .into_iter()
            .filter(|n| !exposed.contains(n))
            .collect();
        assert!(
            missing.is_empty(),
            "{file} uses metrics no node serves: {missing:?}"
        );
    }
}

#[test]
fn every_alert_links_a_runbook_that_exists() {
    let alerts = std::fs::read_to_string(repo().join("deploy/prometheus/alerts.yml")).unwrap();
    let ops = std::fs::read_to_string(repo().join("docs/operations.md")).unwrap();
    // GitHub's anchors: lower case, spaces to '-', punctuation dropped.
    let mut anchors: BTreeSet<String> = ops
        .lines()
        .filter(|l| l.starts_with('#'))
        .map(|l| {
            l.trim_start_matches('#')
                .trim()
                .to_lowercase()
                .chars()
                .filter_map(|c| match c {
                    ' ' => Some('-'),
                    c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
                    _ => None,
                })
                .collect()
        })
        .collect();
    for l in ops.lines() {
        if let Some(rest) = l.split("id=\"").nth(1) {
            anchors.insert(rest.split('"').next().unwrap().to_owned());
        }
    }
    let mut linked = 0;
    for line in alerts.lines() {
        if let Some(url) = line.split("runbook_url:").nth(1) {
            let anchor = url.trim().trim_matches(['"', '\'']).rsplit('#').next().unwrap();
            assert!(
                anchors.contains(anchor),
                "runbook anchor #{anchor} is not in docs/operations.md"
            );
            linked += 1;
        }
    }
    assert!(linked >= 10, "only {linked} alerts link a runbook");
}
