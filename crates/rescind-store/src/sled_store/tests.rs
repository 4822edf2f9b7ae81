use super::*;
use crate::fs::{Fault, FaultyFs};
use crate::suite;
use rescind_core::State;

fn open(dir: &Path) -> SledStore {
    SledStore::open(dir, Some("node-a"), "unused").expect("open sled store")
}

#[test]
fn shared_suite() {
    let dirs: std::cell::RefCell<Vec<tempfile::TempDir>> = Default::default();
    suite::all(|| {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        dirs.borrow_mut().push(dir);
        Box::new(store)
    });
}

#[test]
fn reopen_keeps_identity_and_data() {
    let dir = tempfile::tempdir().unwrap();
    let first = open(dir.path());
    let identity = first.identity().clone();
    suite::write_sample(&first);
    drop(first);
    let again = open(dir.path());
    assert_eq!(again.identity(), &identity);
    suite::assert_sample(&again);
    drop(again);
    // With no name asked for, the recorded one is kept.
    let unnamed = SledStore::open(dir.path(), None, "other").unwrap();
    assert_eq!(unnamed.identity(), &identity);
}

#[test]
fn a_wiped_dir_gets_a_new_incarnation_and_names_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let first = open(dir.path()).identity().clone();
    let err = SledStore::open(dir.path(), Some("node-b"), "x").unwrap_err();
    assert!(err.to_string().contains("--node-name node-a"), "{err}");
    std::fs::remove_dir_all(dir.path()).unwrap();
    let second = open(dir.path()).identity().clone();
    assert_eq!(second.node_name, first.node_name);
    assert_ne!(second.incarnation, first.incarnation);
}

#[test]
fn a_data_dir_of_a_newer_format_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.meta.insert(FORMAT_KEY, &meta::encode_format(3)).unwrap();
    store.flush().unwrap();
    drop(store);
    let err = SledStore::open(dir.path(), None, "x").unwrap_err().to_string();
    assert!(err.contains("newer Rescind") && err.contains("format 3"), "{err}");
}

/// Copy a checked-in fixture data dir somewhere writable.
fn fixture(name: &str) -> tempfile::TempDir {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&src, dir.path());
    dir
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// The digest and vector of the fixtures (tests/fixtures/README.md).
const FIXTURE_DIGEST: &str = "0dd042d1009f78a32ec8c045abc60f35";

#[test]
fn format_one_data_dirs_migrate_with_the_same_state() {
    for name in ["v1-killed", "v1-clean"] {
        let dir = fixture(name);
        let (store, opened) =
            SledStore::open_with(dir.path(), None, "x", 8 << 20, Arc::new(RealFs)).expect("open format 1");
        assert_eq!(opened, Opened::Migrated, "{name}");
        assert_eq!(store.identity().node_name, "fixture-a");
        assert_eq!(store.identity().incarnation, 0x32300d52b0b45c79);
        let state = suite::loaded(&store);
        assert_eq!(state.digest().to_string(), FIXTURE_DIGEST, "{name}");
        assert_eq!(state.clock().get(&store.identity().origin()), 5);
        assert_eq!((state.deny().len(), state.cutoffs().len()), (3, 2));
        // The old ops (format 0) are still served.
        let ops = store.ops_after(&store.identity().origin(), 0, 10).unwrap();
        assert_eq!(ops.len(), 5);
        assert!(matches!(&ops[0].payload, rescind_core::Payload::Token { actor, .. } if actor == "alice"));
        assert!(!legacy::present(&store.db).unwrap(), "old trees dropped");
        assert!(!dir.path().join(legacy::CHECKPOINT_FILE).exists());
        drop(store);
        let (again, opened) = SledStore::open_with(dir.path(), None, "x", 8 << 20, Arc::new(RealFs)).unwrap();
        assert_eq!(opened, Opened::Current, "migrated once");
        assert_eq!(suite::loaded(&again).digest().to_string(), FIXTURE_DIGEST);
    }
}

#[test]
fn a_failed_step_of_a_checkpoint_leaves_the_older_generations_whole() {
    for fault in Fault::ALL {
        let dir = tempfile::tempdir().unwrap();
        let fs = FaultyFs::new(RealFs);
        let (store, _) =
            SledStore::open_with(dir.path(), Some("node-a"), "x", 8 << 20, Arc::new(fs.clone())).unwrap();
        let me = store.identity().origin();
        let cps = store.checkpoints();
        let mut state = State::new(0);
        let mut generation = 0;
        for round in 0..4u64 {
            let ops: Vec<Op> = (1..=10)
                .map(|i| suite::token_op(&me, round * 10 + i, &format!("t{round}-{i}")))
                .collect();
            suite::apply_and_commit(&store, &mut state, &ops);
            fs.arm(fault, 0);
            generation += 1;
            let result = cps.save(&state, generation, 0, 0);
            // A failed delete of an old generation is not a failed save.
            let fired = !fs.armed();
            assert_eq!(
                result.is_err(),
                fired && fault != Fault::Remove,
                "{fault:?} round {round}"
            );
            // Whatever happened, the newest readable generation plus the
            // log gives back every acknowledged op.
            let back = suite::loaded(&store);
            assert_eq!(back.digest(), state.digest(), "{fault:?} round {round}");
            for g in cps.generations().unwrap() {
                cps.load(g, 0)
                    .unwrap_or_else(|e| panic!("{fault:?}: generation {g} unreadable: {e}"));
            }
        }
        let names: Vec<_> = std::fs::read_dir(dir.path().join("checkpoints"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{fault:?}: {names:?}");
    }
}

#[test]
fn prune_finishes_what_an_interrupted_save_left_behind() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultyFs::new(RealFs);
    let (store, _) =
        SledStore::open_with(dir.path(), Some("node-a"), "x", 8 << 20, Arc::new(fs.clone())).unwrap();
    let state = State::new(0);
    for generation in 1..=3 {
        if generation == 3 {
            // As if killed between the rename and the delete.
            fs.arm(Fault::Remove, 0);
        }
        store.checkpoints().save(&state, generation, 0, 0).unwrap();
    }
    assert_eq!(
        store.checkpoints().generations().unwrap(),
        vec![3, 2, 1],
        "the prune failed"
    );
    drop(store);
    let (again, _) = SledStore::open_with(dir.path(), None, "x", 8 << 20, Arc::new(RealFs)).unwrap();
    assert_eq!(
        again.checkpoints().generations().unwrap(),
        vec![3, 2, 1],
        "opening deletes nothing (the start may yet refuse the dir)"
    );
    again.checkpoints().prune().unwrap();
    assert_eq!(again.checkpoints().generations().unwrap(), vec![3, 2]);
    again.checkpoints().load(3, 0).unwrap();
}
