//! `rescind-bench` tells the truth in `--help`, and `ids` prints the ids
//! `check --preload` revokes (what compare-redis.sh loads into Redis).

use std::process::Command;

fn bench(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_rescind-bench"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn help_lists_every_mode_and_bound() {
    let top = String::from_utf8(bench(&["--help"]).stdout).unwrap();
    for mode in ["check", "revoke", "propagate", "ids"] {
        assert!(top.contains(mode), "--help lacks {mode}");
    }
    let check = String::from_utf8(bench(&["check", "--help"]).stdout).unwrap();
    for flag in [
        "--addr",
        "--connections",
        "--concurrency",
        "--duration",
        "--preload",
        "--hit-ratio",
        "--batch",
        "--json",
    ] {
        assert!(check.contains(flag), "check --help lacks {flag}");
    }
}

#[test]
fn ids_are_the_preloaded_ones() {
    let out = bench(&["ids", "--count", "3"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let ids: Vec<&str> = text.lines().collect();
    assert_eq!(ids.len(), 3);
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(*id, rescind_benches::uuid_like(0, i as u64));
        assert_eq!(id.len(), 36);
    }
}

#[test]
fn absent_ids_and_grpc_bodies_are_the_misses_h2load_sends() {
    let out = bench(&["ids", "--count", "2", "--absent"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let ids: Vec<&str> = text.lines().collect();
    assert_eq!(
        ids,
        [rescind_benches::uuid_like(1, 0), rescind_benches::uuid_like(1, 1)]
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("batch.bin");
    let out = bench(&["grpc-body", "--batch", "16", "--out", path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read(&path).unwrap(), rescind_benches::check_body(16));
    let out = bench(&["grpc-body", "--batch", "0", "--out", path.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--batch"));
}

#[test]
fn bad_arguments_are_refused_with_a_message() {
    let out = bench(&[
        "check",
        "--hit-ratio",
        "2",
        "--addr",
        "127.0.0.1:1",
        "--preload",
        "0",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--hit-ratio"));
    let out = bench(&["propagate", "--addrs", "127.0.0.1:1"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least two"));
}
