//! Named credentials from a file: each admin's revocations are named in the
//! audit trail, a reader reads but cannot revoke, reads then need a token,
//! and the file is reloaded without a restart.

use std::path::Path;
use std::time::Duration;

use rescind_proto::v1 as pb;
use rescind_tests::cluster::eventually;
use rescind_tests::{NodeProc, revoke_token, with_bearer};
use tonic::Code;

const ALICE: &str = "alice-token-00000000000000000000000001";
const CI_BOT: &str = "ci-bot-token-0000000000000000000000002";
const EDGE: &str = "edge-reader-token-000000000000000000003";
const CAROL: &str = "carol-token-00000000000000000000000004";

/// The file line for one credential, made by the CLI as an operator would.
fn line(name: &str, role: &str, token: &str) -> String {
    let out = std::process::Command::new(rescind_tests::rescind_bin())
        .args(["credential", "new", "--name", name, "--role", role, "--hash-only"])
        .env("RESCIND_TOKEN", token)
        .output()
        .expect("rescind credential new");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains(token), "the file line must not hold the token");
    text.trim().to_owned()
}

fn write(path: &Path, lines: &[String]) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, lines.join("\n") + "\n").unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn check(id: &str) -> pb::CheckRequest {
    pb::CheckRequest {
        token_id: Some(id.into()),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn named_credentials_are_audited_roled_and_reloaded() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("credentials");
    let alice = line("alice", "admin", ALICE);
    let ci_bot = line("ci-bot", "admin", CI_BOT);
    let edge = line("edge-eu", "reader", EDGE);
    write(&file, &[alice.clone(), ci_bot.clone(), edge.clone()]);
    // The reload wait below fails many times on purpose: no throttling here.
    let node = NodeProc::start(
        &dir.path().join("data"),
        &[
            "--credentials-file",
            file.to_str().unwrap(),
            "--auth-failure-burst",
            "100000",
        ],
    );
    let mut client = node.client().await;

    // Each admin revokes; the audit trail names the credential (and what
    // the caller declared, after a colon).
    let mut undeclared = revoke_token("by-alice");
    undeclared.actor = String::new();
    client
        .revoke(with_bearer(undeclared, ALICE))
        .await
        .expect("alice revokes");
    let mut declared = revoke_token("by-the-pipeline");
    declared.actor = "pipeline-42".into();
    client
        .revoke(with_bearer(declared, CI_BOT))
        .await
        .expect("ci-bot revokes");
    let audit = node.cli_json(&["audit", "--since", "now-1h"]);
    let actors: Vec<(String, String)> = audit["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_owned(),
                r["actor"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        actors.contains(&("by-alice".into(), "alice".into())),
        "{actors:?}"
    );
    assert!(
        actors.contains(&("by-the-pipeline".into(), "ci-bot:pipeline-42".into())),
        "{actors:?}"
    );

    // The reader reads, cannot revoke; with a reader listed, reads need a token.
    let answer = client
        .check(with_bearer(check("by-alice"), EDGE))
        .await
        .expect("reader checks");
    assert!(answer.into_inner().revoked);
    let err = client
        .revoke(with_bearer(revoke_token("by-edge"), EDGE))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    let err = client.check(check("by-alice")).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");

    // Carol is added and alice removed, with the node running.
    write(&file, &[ci_bot, edge, line("carol", "admin", CAROL)]);
    eventually("carol's credential to be loaded", Duration::from_secs(30), || {
        let mut c = client.clone();
        async move { c.revoke(with_bearer(revoke_token("by-carol"), CAROL)).await.ok() }
    })
    .await;
    let err = client
        .revoke(with_bearer(revoke_token("by-alice-again"), ALICE))
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Code::Unauthenticated,
        "a removed credential still revoked: {err:?}"
    );
    // The node's own admin token still works (named `admin` nowhere: it
    // records what the caller declared).
    client
        .revoke(node.admin(revoke_token("by-the-admin-token")))
        .await
        .expect("admin token");
}

#[test]
fn a_malformed_credentials_file_is_refused_at_start_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("credentials");
    std::fs::write(&file, "# ok\nalice owner blake3:00\n").unwrap();
    let out = std::process::Command::new(rescind_tests::rescind_bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--http-listen", "off"])
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--credentials-file")
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 2") && err.contains("role `owner`"), "{err}");
}
