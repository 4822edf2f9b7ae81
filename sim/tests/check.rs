//! `rescind-sim check` on files: three broken scenarios, each mistake at its
//! line and column; every shipped scenario passes.

use std::path::{Path, PathBuf};
use std::process::Command;

const GOOD: &str = r#"name = "three"
duration = "10s"

[[regions]]
name = "eu"
nodes = 2

[[regions]]
name = "us"
nodes = 2

[[regions]]
name = "ap"
nodes = 1

[[network.links]]
between = ["eu", "us"]
latency = "40ms"

[[network.links]]
between = ["us", "ap"]
latency = "70ms"

[[network.links]]
between = ["eu", "ap"]
latency = "110ms"

[[events]]
at = "3s"
crash = "us-1"

[[events]]
at = "6s"
restart = "us-1"

[workload]
revokes_per_sec = 10
checks_per_sec = 10
"#;

/// A directory of its own for this test process.
fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rescind-sim-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Run `rescind-sim check` on `files`: (exit code, stdout, stderr).
fn check(files: &[&Path]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_rescind-sim"))
        .arg("check")
        .args(files)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Write `text` as `name` and check it alone.
fn check_text(dir: &Path, name: &str, text: &str) -> (i32, String, String) {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    check(&[&path])
}

/// Check `text` as `name`: exit status 2 and `expected` among the findings; the stderr.
fn rejected(dir: &Path, name: &str, text: &str, expected: &str) -> String {
    let (code, _, err) = check_text(dir, name, text);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(expected), "wanted {expected:?} in:\n{err}");
    err
}

#[test]
fn three_broken_scenarios_are_rejected_at_their_line_and_column() {
    let dir = scratch();
    let (code, out, err) = check_text(&dir, "good.toml", GOOD);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("good.toml: ok (3 regions, 5 nodes, 2 events, 0 edges)"),
        "{out}"
    );

    // An unknown region in the latency matrix: line 21 `between = ["us", "asia"]`.
    let unknown = GOOD.replace(r#"between = ["us", "ap"]"#, r#"between = ["us", "asia"]"#);
    rejected(
        &dir,
        "unknown-region.toml",
        &unknown,
        "unknown-region.toml:21:18: network.links[1].between[1]: no region asia (regions: ap, eu, us)",
    );
    // Overlapping events: a second event acts on us-1 at the same 3s.
    let overlap = GOOD.replace(
        "[workload]",
        "[[events]]\nat = \"3s\"\nwipe = \"us-1\"\n\n[workload]",
    );
    rejected(
        &dir,
        "overlap.toml",
        &overlap,
        "overlap.toml:36:1: events[2]: overlaps events[0]: both act on us-1 at 3s",
    );
    // A latency matrix missing a pair: the eu–ap link left out.
    let missing = GOOD.replace(
        "[[network.links]]\nbetween = [\"eu\", \"ap\"]\nlatency = \"110ms\"\n\n",
        "",
    );
    let err = rejected(
        &dir,
        "missing-pair.toml",
        &missing,
        "missing-pair.toml:16:1: network.links: the latency matrix misses 1 pair(s) of regions: eu–ap",
    );
    assert!(
        err.contains("    [[network.links]]\n    ^"),
        "the line is shown with a caret: {err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn every_shipped_scenario_checks_clean_and_an_unreadable_file_is_an_error() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let refs: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let (code, out, err) = check(&refs);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        out.lines().filter(|l| l.contains(": ok (")).count(),
        files.len(),
        "{out}"
    );

    let (code, _, err) = check(&[Path::new("/nonexistent/scenario.toml")]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("cannot read /nonexistent/scenario.toml"), "{err}");
}
