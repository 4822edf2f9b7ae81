//! Replay every checked-in fuzz corpus file through its target: what the
//! fuzzers found interesting stays covered by `cargo test`.

use std::path::PathBuf;

fn corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target)
}

#[test]
fn every_target_has_a_seed_corpus_and_replays_it_without_a_panic() {
    for (name, target) in rescind_fuzz::TARGETS {
        let dir = corpus_dir(name);
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let mut replayed = 0;
        for entry in entries {
            let path = entry.expect("corpus entry").path();
            let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            target(&data);
            replayed += 1;
        }
        assert!(replayed > 0, "{name}: no seeds in {}", dir.display());
    }
}

#[test]
fn every_target_has_a_cargo_fuzz_binary() {
    let fuzz = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let manifest = std::fs::read_to_string(fuzz.join("Cargo.toml")).expect("fuzz/Cargo.toml");
    for (name, _) in rescind_fuzz::TARGETS {
        let bin = fuzz.join("fuzz_targets").join(format!("{name}.rs"));
        let text = std::fs::read_to_string(&bin).unwrap_or_else(|e| panic!("{}: {e}", bin.display()));
        assert!(
            text.contains(&format!("rescind_fuzz::{name}")),
            "{} does not call its target",
            bin.display()
        );
        assert!(
            manifest.contains(&format!("name = \"{name}\"")),
            "fuzz/Cargo.toml lacks [[bin]] {name}"
        );
    }
}

#[test]
fn empty_and_short_inputs_do_not_panic() {
    for (_, target) in rescind_fuzz::TARGETS {
        for len in 0..64u8 {
            let data: Vec<u8> = (0..len).map(|i| i.wrapping_mul(37).wrapping_add(len)).collect();
            target(&data);
        }
    }
}

/// The seeds are valid inputs, so fuzzing starts from deep in each decoder
/// rather than at its first length check.
#[test]
fn the_seeds_decode() {
    let read = |target: &str, name: &str| std::fs::read(corpus_dir(target).join(name)).expect("seed");
    for name in ["op-token", "op-cutoff"] {
        let op = rescind_core::codec::wire::decode_ops(&[read("peer_messages", name)]);
        assert!(op.is_ok(), "{name}: {op:?}");
    }
    for name in ["checkpoint-0", "checkpoint-1"] {
        let bytes = read("checkpoint", name);
        let cp = rescind_core::codec::checkpoint::read(std::io::Cursor::new(&bytes), 0);
        assert!(cp.is_ok(), "{name}: {:?}", cp.err());
    }
    assert!(rescind_core::ConsistencyToken::decode(&read("consistency_token", "one-dot")).is_ok());
    for name in ["revoke-token", "revoke-subject"] {
        let body = read("http_bodies", name);
        let cmd = rescind_node::http::api::decode_revoke(&body[1..]);
        assert!(cmd.is_ok(), "{name}: {:?}", cmd.err().map(|e| e.error));
    }
    let batch = read("http_bodies", "revoke-batch");
    assert_eq!(
        rescind_node::http::api::decode_revoke_batch(&batch[1..])
            .map(|v| v.len())
            .ok(),
        Some(2)
    );
    assert!(rescind_node::http::api::decode_check(&read("http_bodies", "check")[1..]).is_ok());
    let form = read("http_bodies", "oauth-form");
    let (token, hint) = rescind_node::http::oauth::decode_token_form(&form[1..]).expect("form");
    assert_eq!(
        (token.as_str(), hint.as_deref()),
        ("abc.def.ghi", Some("access_token"))
    );
    let scenario = String::from_utf8(read("scenario", "five-regions")).expect("utf-8");
    assert!(rescind_sim::scenario::Scenario::parse(&scenario).is_ok());
}
