//! The test suite every [`Store`] adapter must pass.

use rescind_core::check::CheckQuery;
use rescind_core::{Cutoff, Op, OriginId, Payload, PrincipalKind, State};

use crate::{SnapshotPosition, Store};

pub fn token_op(origin: &OriginId, seq: u64, id: &str) -> Op {
    Op {
        origin: origin.clone(),
        seq,
        payload: Payload::Token {
            token_id: id.into(),
            expires_at_ms: 0,
            revoked_at_ms: seq,
            reason: "leaked".into(),
            actor: "ops".into(),
        },
    }
}

fn cutoff_op(origin: &OriginId, seq: u64, who: &str, before: u64) -> Op {
    Op {
        origin: origin.clone(),
        seq,
        payload: Payload::Cutoff {
            kind: PrincipalKind::Subject,
            principal: who.into(),
            cutoff: Cutoff {
                issued_before_ms: before,
                min_version: 0,
            },
            revoked_at_ms: before,
            reason: String::new(),
            actor: String::new(),
        },
    }
}

/// Apply ops to `state` and append the fresh ones, durably, as the node does.
pub fn apply_and_commit(store: &dyn Store, state: &mut State, ops: &[Op]) {
    let fresh: Vec<Op> = ops.iter().filter(|op| state.apply_op(op, 0).0).cloned().collect();
    store.append(&fresh).unwrap();
    store.flush().unwrap();
}

/// The newest checkpoint plus every op logged after it (the node's recovery
/// without its policy for damage).
pub fn loaded(store: &dyn Store) -> State {
    let mut s = match store.checkpoints().generations().unwrap().first() {
        Some(&g) => store.checkpoints().load(g, 0).unwrap().0,
        None => State::new(0),
    };
    for origin in store.log_origins().unwrap() {
        let from = s.clock().get(&origin);
        for op in store.ops_after(&origin, from, usize::MAX).unwrap() {
            s.apply_op(&op, 0);
        }
    }
    s
}

/// A small known state: three tokens and a cutoff from the store's own origin.
pub fn write_sample(store: &dyn Store) {
    let me = store.identity().origin();
    let mut s = loaded(store);
    apply_and_commit(
        store,
        &mut s,
        &[
            token_op(&me, 1, "t1"),
            token_op(&me, 2, "t2"),
            cutoff_op(&me, 3, "alice", 1_000),
            token_op(&me, 4, "t3"),
        ],
    );
}

/// What [`write_sample`] wrote is all there.
pub fn assert_sample(store: &dyn Store) {
    let me = store.identity().origin();
    let s = loaded(store);
    assert_eq!(s.deny().len(), 3);
    assert_eq!(s.cutoffs().len(), 1);
    assert_eq!(s.clock().get(&me), 4);
    assert!(s.check(&CheckQuery::token("t2")).revoked());
    assert!(
        s.check(
            &CheckQuery::default()
                .with(PrincipalKind::Subject, "alice")
                .issued_at(999)
        )
        .revoked()
    );
    assert_eq!(store.ops_after(&me, 0, 100).unwrap().len(), 4);
}

/// Every test of the suite, each on a fresh store from `make`.
pub fn all(make: impl Fn() -> Box<dyn Store>) {
    op_log_ranges(&*make());
    truncation_raises_the_floor(&*make());
    meta_round_trips(&*make());
    checkpoints_keep_two_generations(&*make());
    snapshot_pages_cover_the_checkpoint(&*make());
}

/// `ops_after` returns one origin's ops, in order, from the given seq, bounded.
fn op_log_ranges(store: &dyn Store) {
    let (me, other) = (store.identity().origin(), OriginId::new("zz", 1));
    let mut s = State::new(0);
    let mut ops: Vec<Op> = (1..=10).map(|i| token_op(&me, i, &format!("m{i}"))).collect();
    ops.extend((1..=3).map(|i| token_op(&other, i, &format!("o{i}"))));
    apply_and_commit(store, &mut s, &ops);
    let seqs = |after, limit| -> Vec<u64> {
        store
            .ops_after(&me, after, limit)
            .unwrap()
            .iter()
            .map(|o| o.seq)
            .collect()
    };
    assert_eq!(seqs(0, 3), vec![1, 2, 3]);
    assert_eq!(seqs(8, 100), vec![9, 10]);
    assert!(seqs(10, 100).is_empty());
    assert!(seqs(u64::MAX, 100).is_empty());
    assert_eq!(store.ops_after(&other, 1, 100).unwrap(), ops[11..].to_vec());
    let mut origins = store.log_origins().unwrap();
    origins.sort();
    let mut want = vec![me, other];
    want.sort();
    assert_eq!(origins, want);
}

/// Truncation drops ops at or below the bound, keeps the rest, and the
/// floor only rises.
fn truncation_raises_the_floor(store: &dyn Store) {
    let (me, other) = (store.identity().origin(), OriginId::new("zz", 1));
    let mut s = State::new(0);
    let mut ops: Vec<Op> = (1..=10).map(|i| token_op(&me, i, &format!("m{i}"))).collect();
    ops.extend((1..=3).map(|i| token_op(&other, i, &format!("o{i}"))));
    apply_and_commit(store, &mut s, &ops);
    assert!(store.log_floor().unwrap().is_empty());
    assert_eq!(store.truncate_log(&[(me.clone(), 4)]).unwrap(), 4);
    assert_eq!(store.ops_after(&me, 0, 100).unwrap()[0].seq, 5);
    assert_eq!(store.ops_after(&other, 0, 100).unwrap().len(), 3);
    assert_eq!(
        store
            .truncate_log(&[(me.clone(), 2), (other.clone(), 3)])
            .unwrap(),
        3
    );
    let mut floor = store.log_floor().unwrap();
    floor.sort();
    let mut want = vec![(me.clone(), 4), (other.clone(), 3)];
    want.sort();
    assert_eq!(floor, want, "the floor never goes down");
    assert_eq!(store.log_origins().unwrap(), vec![me]);
}

fn meta_round_trips(store: &dyn Store) {
    assert_eq!(store.meta_get("peer_vectors").unwrap(), None);
    store.meta_put("peer_vectors", b"one").unwrap();
    store.meta_put("peer_vectors", b"two").unwrap();
    store.flush().unwrap();
    assert_eq!(
        store.meta_get("peer_vectors").unwrap().as_deref(),
        Some(&b"two"[..])
    );
}

fn sample_state(n: u64) -> State {
    let mut s = State::new(0);
    let o = OriginId::new("peer", 7);
    let ops: Vec<Op> = (1..=n)
        .map(|i| match i % 5 {
            0 => cutoff_op(&o, i, &format!("user-{i}"), i),
            _ => token_op(&o, i, &format!("tok-{i}")),
        })
        .collect();
    for op in &ops {
        s.apply_op(op, 0);
    }
    s
}

fn checkpoints_keep_two_generations(store: &dyn Store) {
    let cps = store.checkpoints();
    assert!(cps.generations().unwrap().is_empty());
    for g in 1..=4 {
        let s = sample_state(g * 10);
        let saved = cps.save(&s, g, 5, 6).unwrap();
        assert!(saved.bytes > 0);
        let (back, header) = cps.load(g, 0).unwrap();
        assert_eq!(back, s);
        assert_eq!(
            (header.generation, header.pruned_before_ms, header.written_at_ms),
            (g, 5, 6)
        );
    }
    assert_eq!(cps.generations().unwrap(), vec![4, 3]);
    assert!(cps.load(2, 0).is_err(), "older generations are deleted");
}

fn snapshot_pages_cover_the_checkpoint(store: &dyn Store) {
    let cps = store.checkpoints();
    assert!(
        cps.snapshot_start().unwrap().is_none(),
        "no checkpoint: no snapshot"
    );
    let s = sample_state(103);
    cps.save(&s, 1, 0, 0).unwrap();
    let (header, mut at) = cps.snapshot_start().unwrap().unwrap();
    assert_eq!(header.clock, vec![(OriginId::new("peer", 7), 103)]);
    let mut back = State::new(0);
    let mut pages = 0;
    loop {
        let page = cps.snapshot_page(at, 7).unwrap().expect("a position it made");
        assert!(page.deny.len() + page.cutoffs.len() <= 7);
        for (id, e) in &page.deny {
            back.merge_deny(id, e, 0);
        }
        for (k, p, c) in &page.cutoffs {
            back.merge_cutoff(*k, p, *c);
        }
        pages += 1;
        match page.next {
            Some(next) => at = next,
            None => break,
        }
    }
    assert_eq!(pages, 103usize.div_ceil(7));
    // A position that is not one of this checkpoint's is refused, never read.
    let (_, first) = cps.snapshot_start().unwrap().unwrap();
    for bad in [
        SnapshotPosition {
            offset: first.offset + 1,
            ..first
        },
        SnapshotPosition { section: 2, ..first },
        SnapshotPosition {
            records_left: first.records_left + 1,
            ..first
        },
        SnapshotPosition {
            bytes_left: 0,
            ..first
        },
    ] {
        assert!(cps.snapshot_page(bad, 7).unwrap().is_none(), "{bad:?}");
    }
    assert_eq!(back.deny(), s.deny());
    assert_eq!(back.cutoffs(), s.cutoffs());
}
