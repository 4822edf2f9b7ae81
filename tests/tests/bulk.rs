//! Bulk revocation for incident response: `rescind revoke tokens --from-file`
//! with 100,000 ids, interrupted by a kill and rerun, writes every id exactly
//! once, and a second node enforces all of them after convergence.

use std::process::{Command, Stdio};
use std::time::Duration;

use rescind_proto::v1 as pb;
use rescind_tests::cluster::{Cluster, eventually};
use rescind_tests::rescind_bin;

const IDS: usize = 100_000;
/// Every tenth line names this issuer.
const ISSUER: &str = "https://idp.test";

fn id(i: usize) -> String {
    format!("incident-{i:06}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_bulk_run_finishes_on_rerun_without_duplicates() {
    let cluster = Cluster::start(2, 1, "");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("leaked.txt");
    // Plain ids, with every tenth line in JSON Lines form carrying an expiry.
    let far = 4_102_444_800_000u64; // 2100-01-01
    let body: String = (0..IDS)
        .map(|i| {
            if i % 10 == 0 {
                format!(
                    "{{\"token_id\":\"{}\",\"expires_at_ms\":{far},\"issuer\":\"{ISSUER}\"}}\n",
                    id(i)
                )
            } else {
                format!("{}\n", id(i))
            }
        })
        .collect();
    std::fs::write(&file, format!("# leaked in incident 42\n{body}")).unwrap();
    let file = file.to_str().unwrap();
    let node = &cluster.nodes[0];

    let dry = node.cli_json(&["revoke", "tokens", "--from-file", file, "--dry-run"]);
    assert_eq!(dry["to_revoke"], IDS as u64);
    assert_eq!(node.status().await.deny_entries, 0, "a dry run writes nothing");

    // The first run is paced so that it is still running when it is killed.
    let mut first = Command::new(rescind_bin())
        .args([
            "revoke",
            "tokens",
            "--from-file",
            file,
            "--batch-size",
            "1000",
            "--max-rate",
            "10000",
        ])
        .arg("--addr")
        .arg(node.addr.to_string())
        .env("RESCIND_DATA_DIR", &node.data_dir)
        .env_remove("RESCIND_TOKEN")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let before_kill = eventually(
        "the first batches to be durable",
        Duration::from_secs(120),
        || async {
            let n = node.status().await.deny_entries;
            (n >= 2_000).then_some(n)
        },
    )
    .await;
    first.kill().unwrap();
    first.wait().unwrap();
    let at_kill = node.status().await.deny_entries;
    assert!(at_kill >= before_kill);
    assert!(
        at_kill < IDS as u64,
        "the first run was interrupted, not finished"
    );

    let out = node.cli(&["revoke", "tokens", "--from-file", file, "--json"]);
    assert!(
        out.status.success(),
        "rerun failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("progress: {IDS}/{IDS}")),
        "no progress shown: {stderr}"
    );
    assert_eq!(
        summary["revoked"].as_u64().unwrap() + summary["already_revoked"].as_u64().unwrap(),
        IDS as u64
    );
    assert!(
        summary["already_revoked"].as_u64().unwrap() >= at_kill,
        "what the killed run wrote is not written again: {summary}"
    );

    // Exactly one op per id at the origin: nothing was written twice.
    let status = node.status().await;
    assert_eq!(status.deny_entries, IDS as u64);
    let own = status
        .clock
        .iter()
        .find(|e| e.origin_node == status.node_name)
        .expect("the node's own clock entry");
    assert_eq!(own.seq, IDS as u64, "one op per id");

    cluster.converged(Duration::from_secs(180)).await;
    let mut other = cluster.nodes[1].client().await;
    let ids: Vec<(usize, String)> = (0..IDS).map(|i| (i, id(i))).collect();
    for chunk in ids.chunks(1024) {
        let checks: Vec<_> = chunk
            .iter()
            .map(|(i, t)| pb::CheckRequest {
                token_id: Some(t.clone()),
                issuer: (i % 10 == 0).then(|| ISSUER.to_string()),
                ..Default::default()
            })
            .collect();
        let resp = other
            .check_batch(pb::CheckBatchRequest::from(checks))
            .await
            .unwrap()
            .into_inner();
        assert!(
            resp.results.iter().all(|r| r.revoked),
            "an id is not enforced on the second node"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_revokes_in_an_issuer_namespace_and_raises_only_the_version() {
    let cluster = Cluster::start(1, 1, "");
    let node = &cluster.nodes[0];
    node.cli_json(&["revoke", "token", "jti-9", "--issuer", ISSUER]);
    let check = |args: &[&str]| {
        node.cli_json(&[&["check"], args].concat())["revoked"]
            .as_bool()
            .unwrap()
    };
    assert!(check(&["--token-id", "jti-9", "--issuer", ISSUER]));
    assert!(
        !check(&["--token-id", "jti-9"]),
        "the issuer-less namespace is another"
    );
    assert!(!check(&["--token-id", "jti-9", "--issuer", "https://other.test"]));

    node.cli_json(&[
        "revoke",
        "subject",
        "alice",
        "--min-version",
        "3",
        "--version-only",
        "--issuer",
        ISSUER,
    ]);
    let alice = |version: &str| {
        check(&[
            "--subject",
            "alice",
            "--issuer",
            ISSUER,
            "--issued-at",
            "now-1s",
            "--token-version",
            version,
        ])
    };
    assert!(
        !alice("3"),
        "a new-version token issued a second before stays valid"
    );
    assert!(alice("2"));
    let out = node.cli(&["revoke", "subject", "bob", "--version-only"]);
    assert!(
        !out.status.success(),
        "--version-only without --min-version is refused"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_line_stops_the_run_before_anything_is_written() {
    let cluster = Cluster::start(1, 1, "");
    let node = &cluster.nodes[0];
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ids.txt");
    std::fs::write(
        &file,
        format!(
            "good-1\n{}\n{{\"token_id\":\"x\",\"expires\":1}}\n",
            "y".repeat(600)
        ),
    )
    .unwrap();
    let out = node.cli(&["revoke", "tokens", "--from-file", file.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("ids.txt:2: token_id: must be at most 512 bytes"),
        "{err}"
    );
    assert!(err.contains("ids.txt:3: not a JSON revocation"), "{err}");
    assert_eq!(node.status().await.deny_entries, 0);
    // The same ids over gRPC in one RevokeBatch: a bad entry is named by index.
    let mut c = node.client().await;
    let bad = pb::RevokeBatchRequest {
        revocations: vec![
            rescind_tests::revoke_token("good-1"),
            rescind_tests::revoke_token(""),
        ],
    };
    let e = c.revoke_batch(node.admin(bad)).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert!(
        e.message().contains("revocations[1].token.token_id"),
        "{}",
        e.message()
    );
    assert_eq!(node.status().await.deny_entries, 0, "a batch is all or nothing");
}
