//! The README tour, through the real CLI against a real node.

use rescind_tests::NodeProc;

#[test]
fn revoke_check_status_tour() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProc::start(dir.path(), &["--node-name", "tour"]);

    let out = node.cli_json(&["revoke", "token", "tok-1", "--expires-in", "1h"]);
    assert_eq!(out["already_revoked"], false);
    assert_eq!(out["seq"], 1);

    let hit = node.cli_json(&["check", "--token-id", "tok-1"]);
    assert_eq!(hit["revoked"], true, "{hit}");
    assert_eq!(hit["reason"], "token_id");
    let miss = node.cli_json(&["check", "--token-id", "tok-unknown"]);
    assert_eq!(miss["revoked"], false, "{miss}");
    assert_eq!(miss["reason"], "none");

    // Revoking again changes nothing and says so; a later expiry extends the entry.
    let first = node.cli_json(&["revoke", "token", "tok-2"]);
    assert_eq!(first["already_revoked"], false);
    let again = node.cli_json(&["revoke", "token", "tok-2", "--expires-in", "1h"]);
    assert_eq!(
        again["already_revoked"], true,
        "a never-expiring entry outlives any expiry"
    );
    let extended = node.cli_json(&["revoke", "token", "tok-1", "--expires-in", "2h"]);
    assert_eq!(extended["already_revoked"], false, "a longer expiry is written");

    node.cli_json(&["revoke", "subject", "alice"]);
    let before = node.cli_json(&["check", "--subject", "alice", "--issued-at", "now-1m"]);
    assert_eq!(before["revoked"], true, "{before}");
    assert_eq!(before["reason"], "subject");
    let after = node.cli_json(&["check", "--subject", "alice", "--issued-at", "now+1m"]);
    assert_eq!(after["revoked"], false, "{after}");
    let bob = node.cli_json(&["check", "--subject", "bob", "--issued-at", "now-1m"]);
    assert_eq!(bob["revoked"], false);

    let status = node.cli_json(&["status"]);
    assert_eq!(status["deny_entries"], 2);
    assert_eq!(status["cutoffs"], 1);
    assert_eq!(status["node_name"], "tour");
    assert_eq!(status["staleness_ms"], 0);
    assert_eq!(status["digest"].as_str().map(str::len), Some(32));
    let vv = status["version_vector"].as_object().unwrap();
    assert_eq!(vv.len(), 1);
    assert_eq!(
        vv.values().next().unwrap(),
        4,
        "ops: tok-1, tok-2, tok-1 extended, alice"
    );
    for key in ["node_id", "incarnation", "region"] {
        assert!(status[key].is_string(), "status lacks {key}: {status}");
    }
}

#[test]
fn the_cli_names_an_unreachable_node_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    // Start and stop a node so the port is known to be closed.
    let mut node = NodeProc::start(dir.path(), &[]);
    node.kill9();
    let out = node.cli(&["status"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&node.addr.to_string()), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one-line error: {err}");
}

#[test]
fn revoke_without_the_admin_token_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProc::start(dir.path(), &[]);
    let out = node.cli(&["revoke", "token", "t", "--token", "not-the-admin-token-at-all"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Unauthenticated"), "{err}");
    assert_eq!(node.cli_json(&["status"])["deny_entries"], 0);
}
