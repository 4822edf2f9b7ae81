//! The test suite every [`Store`] adapter must pass.

use rescind_core::check::CheckQuery;
use rescind_core::{Cutoff, Op, OriginId, Payload, PrincipalKind, State};

use crate::{Store, WriteBatch};

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

/// Apply ops to `state` and commit exactly what they changed, as the node does.
pub fn apply_and_commit(store: &dyn Store, state: &mut State, ops: &[Op]) {
    let mut batch = WriteBatch::default();
    for op in ops {
        let (fresh, effect) = state.apply_op(op, 0);
        if fresh {
            batch.ops.push(op.clone());
            batch.add_effect(effect);
            batch
                .clock
                .push((op.origin.clone(), state.clock().get(&op.origin)));
        }
    }
    store.commit(&batch).unwrap();
    store.flush().unwrap();
}

pub fn loaded(store: &dyn Store) -> State {
    let mut s = State::new(0);
    store.load_into(&mut s).unwrap();
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

/// Load after commit reproduces the state, digest and clock exactly.
pub fn round_trip(store: &dyn Store) {
    let (me, peer) = (store.identity().origin(), OriginId::new("peer", 7));
    let mut s = State::new(0);
    apply_and_commit(
        store,
        &mut s,
        &[
            token_op(&me, 1, "a"),
            token_op(&peer, 1, "a"),
            cutoff_op(&peer, 2, "bob", 50),
        ],
    );
    // A later duplicate and a non-winning entry change nothing on disk.
    apply_and_commit(store, &mut s, &[token_op(&peer, 1, "a"), token_op(&peer, 3, "a")]);
    let back = loaded(store);
    assert_eq!(back, s);
    assert_eq!(back.digest(), s.digest());
    assert_eq!(back.clock().get(&peer), 3);
}

/// `ops_after` returns one origin's ops, in order, from the given seq, bounded.
pub fn op_log_ranges(store: &dyn Store) {
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
    assert!(
        store
            .ops_after(&OriginId::new("none", 1), 0, 10)
            .unwrap()
            .is_empty()
    );
}

/// Expiry deletes remove entries; a raised cutoff replaces the stored one.
pub fn deletes_and_raises(store: &dyn Store) {
    let me = store.identity().origin();
    let mut s = State::new(0);
    apply_and_commit(
        store,
        &mut s,
        &[token_op(&me, 1, "gone"), cutoff_op(&me, 2, "c", 10)],
    );
    apply_and_commit(store, &mut s, &[cutoff_op(&me, 3, "c", 20)]);
    store
        .commit(&WriteBatch {
            deny_delete: vec!["gone".into()],
            ..WriteBatch::default()
        })
        .unwrap();
    let back = loaded(store);
    assert!(back.deny().is_empty());
    assert_eq!(
        back.cutoffs()
            .get(PrincipalKind::Subject, "c")
            .map(|c| c.issued_before_ms),
        Some(20)
    );
}

/// Paging through deny entries and cutoffs visits each exactly once, in
/// order, and `clock` returns the committed version vector.
pub fn snapshot_pages(store: &dyn Store) {
    let me = store.identity().origin();
    let mut s = State::new(0);
    let mut ops: Vec<Op> = (1..=25)
        .map(|i| token_op(&me, i, &format!("id-{i:03}")))
        .collect();
    ops.extend((26..=32).map(|i| cutoff_op(&me, i, &format!("who-{i}"), 100)));
    apply_and_commit(store, &mut s, &ops);
    assert_eq!(store.clock().unwrap(), vec![(me.clone(), 32)]);
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store.deny_page(after.as_deref(), 10).unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 10);
        after = page.last().map(|(id, _)| id.clone());
        seen.extend(page.into_iter().map(|(id, _)| id));
    }
    let expected: Vec<String> = (1..=25).map(|i| format!("id-{i:03}")).collect();
    assert_eq!(seen, expected);
    let mut cutoffs = Vec::new();
    let mut cursor: Option<(PrincipalKind, String)> = None;
    loop {
        let page = store
            .cutoff_page(cursor.as_ref().map(|(k, p)| (*k, p.as_str())), 3)
            .unwrap();
        if page.is_empty() {
            break;
        }
        cursor = page.last().map(|(k, p, _)| (*k, p.clone()));
        cutoffs.extend(page.into_iter().map(|(_, p, _)| p));
    }
    assert_eq!(cutoffs.len(), 7);
    // A fresh state built only from the pages equals the original's observable state.
    let mut rebuilt = State::new(0);
    for (id, e) in store.deny_page(None, 1000).unwrap() {
        rebuilt.merge_deny(&id, &e, 0);
    }
    for (k, p, c) in store.cutoff_page(None, 1000).unwrap() {
        rebuilt.merge_cutoff(k, &p, c);
    }
    assert_eq!(rebuilt.digest(), s.digest());
}
