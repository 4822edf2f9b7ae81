//! `--help` tells the truth about the commands and flags the README promises.
#![allow(clippy::unwrap_used)] // test code: a panic is a failed test

use std::process::Command;

fn help(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_rescind"))
        .args(args)
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success(), "{args:?} --help failed");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn help_lists_every_command_and_flag() {
    let top = help(&[]);
    for cmd in ["serve", "revoke", "check", "status", "peers", "edge"] {
        assert!(top.contains(cmd), "top-level help lacks {cmd}");
    }
    let serve = help(&["serve"]);
    for flag in [
        "--data-dir",
        "--listen",
        "--node-name",
        "--region",
        "--config",
        "RESCIND_LISTEN",
        "--http-listen",
        "RESCIND_HTTP_LISTEN",
        "--jwks-file",
        "--jwks-url",
        "--jwt-issuer",
        "--jwt-audience",
        "--gateway-on-stale",
        "--opaque-tokens",
        "--token-hash-key-file",
        "--oauth-clients-file",
    ] {
        assert!(serve.contains(flag), "serve --help lacks {flag}");
    }
    let bulk = help(&["revoke", "tokens"]);
    for flag in [
        "--from-file",
        "--dry-run",
        "--batch-size",
        "--max-rate",
        "--issuer",
    ] {
        assert!(bulk.contains(flag), "revoke tokens --help lacks {flag}");
    }
    assert!(help(&["revoke", "subject"]).contains("--version-only"));
    assert!(help(&["check"]).contains("--issuer"));
    let revoke = help(&["revoke"]);
    for kind in ["token", "subject", "client", "tenant", "key", "session"] {
        assert!(revoke.contains(kind), "revoke --help lacks {kind}");
    }
    let token = help(&["revoke", "token"]);
    for flag in [
        "--expires-in",
        "--expires-at",
        "--reason",
        "--json",
        "--addr",
        "RESCIND_TOKEN",
    ] {
        assert!(token.contains(flag), "revoke token --help lacks {flag}");
    }
    let check = help(&["check"]);
    for flag in [
        "--token-id",
        "--subject",
        "--client-id",
        "--tenant",
        "--key-id",
        "--session-id",
        "--issued-at",
        "--token-version",
        "--json",
    ] {
        assert!(check.contains(flag), "check --help lacks {flag}");
    }
    let edge = help(&["edge"]);
    for flag in [
        "--listen",
        "127.0.0.1:7401",
        "--upstream",
        "RESCIND_UPSTREAMS",
        "--checkpoint",
        "--cluster-id",
        "--serve-threads",
    ] {
        assert!(edge.contains(flag), "edge --help lacks {flag}");
    }
    let peers = help(&["peers", "remove"]);
    for flag in ["--addr", "--json", "--token"] {
        assert!(peers.contains(flag), "peers remove --help lacks {flag}");
    }
}

#[test]
fn edge_needs_an_upstream() {
    let out = Command::new(env!("CARGO_BIN_EXE_rescind"))
        .arg("edge")
        .env_remove("RESCIND_UPSTREAMS")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--upstream"));
}

#[test]
fn bad_arguments_fail_with_a_message() {
    let out = Command::new(env!("CARGO_BIN_EXE_rescind"))
        .args([
            "revoke",
            "token",
            "t",
            "--expires-in",
            "soon",
            "--addr",
            "127.0.0.1:1",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a duration"));
    let out = Command::new(env!("CARGO_BIN_EXE_rescind"))
        .args(["check", "--issued-at", "yesterday", "--addr", "127.0.0.1:1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--issued-at"));
}
