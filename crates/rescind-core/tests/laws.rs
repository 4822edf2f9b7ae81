//! Property tests of the CRDT laws (docs/design.md §2) and the check rules (§1).
#![allow(clippy::unwrap_used)] // test code: a panic is a failed test

use crdts::CvRDT;
use proptest::prelude::*;
use rescind_core::check::{CheckQuery, Rule};
use rescind_core::{Cutoff, DenyEntry, Op, OriginId, Payload, PrincipalKind, State};

const GRACE: u64 = 1_000;

fn origin(i: u8) -> OriginId {
    OriginId::new(format!("n{}", i % 3), 0x1000 + u64::from(i % 3))
}

fn kind(i: u8) -> PrincipalKind {
    PrincipalKind::ALL[usize::from(i) % 5]
}

/// A payload over small pools of ids and times, so collisions are common.
fn payload() -> impl Strategy<Value = Payload> {
    prop_oneof![
        (0u8..8, 0u64..4, 0u64..6).prop_map(|(id, exp, at)| Payload::Token {
            token_id: format!("tok-{id}"),
            expires_at_ms: exp * 50_000,
            revoked_at_ms: at,
            reason: format!("r{at}"),
            actor: "ops".into(),
        }),
        (0u8..5, 0u8..4, 0u64..6, 0u64..4).prop_map(|(k, p, before, v)| Payload::Cutoff {
            kind: kind(k),
            principal: format!("p{p}"),
            cutoff: Cutoff {
                issued_before_ms: before * 10,
                min_version: v,
            },
            revoked_at_ms: 0,
            reason: String::new(),
            actor: String::new(),
        }),
    ]
}

/// Ops from three origins with dense seqs per origin.
fn ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec((0u8..3, payload()), 0..40).prop_map(|raw| {
        let mut next = [0u64; 3];
        raw.into_iter()
            .map(|(o, payload)| {
                next[usize::from(o)] += 1;
                Op {
                    origin: origin(o),
                    seq: next[usize::from(o)],
                    payload,
                }
            })
            .collect()
    })
}

fn state_of<'a>(ops: impl IntoIterator<Item = &'a Op>) -> State {
    let mut s = State::new(GRACE);
    for op in ops {
        s.apply_op(op, 0);
    }
    s
}

/// The digest recomputed from scratch must match the incremental one.
fn recomputed_digest(s: &State) -> u128 {
    let mut d = 0u128;
    for (id, m) in s.deny().iter() {
        d = d.wrapping_add(m.hash(&id));
    }
    for (k, p, c) in s.cutoffs().iter() {
        d = d.wrapping_add(c.hash(k, p));
    }
    d
}

fn merged(a: &State, b: &State) -> State {
    let mut out = a.clone();
    out.merge(b.clone());
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_order_and_duplication_gives_the_same_state(
        ops in ops(),
        shuffle in any::<prop::sample::Index>(),
        dups in prop::collection::vec(any::<prop::sample::Index>(), 0..10),
        seed in any::<u64>(),
    ) {
        let in_order = state_of(&ops);
        let mut delivered: Vec<&Op> = ops.iter().collect();
        if !ops.is_empty() {
            for d in &dups {
                delivered.push(&ops[d.index(ops.len())]);
            }
        }
        // Deterministic Fisher-Yates shuffle driven by the generated seed.
        let mut x = seed | 1;
        for i in (1..delivered.len()).rev() {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            let j = (x as usize ^ shuffle.index(i + 1)) % (i + 1);
            delivered.swap(i, j);
        }
        let shuffled = state_of(delivered);
        prop_assert_eq!(&shuffled, &in_order);
        prop_assert_eq!(shuffled.digest(), in_order.digest());
        prop_assert_eq!(in_order.digest().0, recomputed_digest(&in_order));
        // Every origin's clock reached its last seq: nothing is left pending.
        for op in &ops {
            prop_assert!(shuffled.clock().get(&op.origin) >= op.seq);
        }
    }

    #[test]
    fn merge_commutes_associates_and_is_idempotent(a in ops(), b in ops(), c in ops()) {
        // Three replicas that saw different (overlapping) histories of the same ops.
        let all: Vec<Op> = a.iter().chain(&b).chain(&c).cloned().collect();
        let (sa, sb, sc) = (state_of(&all[..a.len()]), state_of(&b), state_of(&c));
        prop_assert_eq!(merged(&sa, &sb), merged(&sb, &sa));
        prop_assert_eq!(merged(&merged(&sa, &sb), &sc), merged(&sa, &merged(&sb, &sc)));
        prop_assert_eq!(merged(&sa, &sa), sa.clone());
        let ab = merged(&sa, &sb);
        prop_assert_eq!(ab.digest().0, recomputed_digest(&ab));
    }

    #[test]
    fn merging_a_peer_never_unrevokes(a in ops(), b in ops(), id in 0u8..8, p in 0u8..4, k in 0u8..5, at in 0u64..70, v in 0u64..4) {
        let (sa, sb) = (state_of(&a), state_of(&b));
        let ab = merged(&sa, &sb);
        let token = format!("tok-{id}");
        let principal = format!("p{p}");
        let q = CheckQuery { token_version: v, ..CheckQuery::token(&token).with(kind(k), &principal).issued_at(at) };
        if sa.check(&q).revoked() || sb.check(&q).revoked() {
            prop_assert!(ab.check(&q).revoked());
        }
    }

    #[test]
    fn check_matches_a_brute_force_model(ops in ops(), id in 0u8..8, ps in prop::collection::vec(prop::option::of(0u8..4), 5), at in 0u64..70, v in 0u64..4) {
        let s = state_of(&ops);
        let token = format!("tok-{id}");
        let names: Vec<Option<String>> = ps.iter().map(|p| p.map(|p| format!("p{p}"))).collect();
        let mut q = CheckQuery { token_version: v, ..CheckQuery::token(&token).issued_at(at) };
        for (i, n) in names.iter().enumerate() {
            q.principals[i] = n.as_deref();
        }
        // Model: revoked iff some op revokes this token directly.
        let by_id = ops.iter().any(|op| matches!(&op.payload, Payload::Token { token_id, .. } if *token_id == token));
        let by_cutoff = ops.iter().any(|op| match &op.payload {
            Payload::Cutoff { kind, principal, cutoff, .. } => {
                names[kind.index()].as_deref() == Some(principal.as_str())
                    && ((cutoff.issued_before_ms != 0 && at <= cutoff.issued_before_ms) || v < cutoff.min_version)
            }
            Payload::Token { .. } => false,
        });
        let d = s.check(&q);
        prop_assert_eq!(d.revoked(), by_id || by_cutoff);
        if by_id {
            prop_assert_eq!(d.rule, Some(Rule::TokenId));
        }
        // A batch decides each query as one check would: this one among
        // the other token ids and a query without one, over two chunks.
        let others: Vec<String> = (0..20).map(|i| format!("tok-{}", i % 9)).collect();
        let mut batch: Vec<CheckQuery<'_>> = others.iter().map(|t| CheckQuery::token(t)).collect();
        batch.insert(17, q);
        batch.insert(3, CheckQuery { token_id: None, ..q });
        let one_by_one: Vec<_> = batch.iter().map(|q| s.check(q)).collect();
        prop_assert_eq!(s.check_many(&batch), one_by_one);
    }
}

fn token_op(origin: &OriginId, seq: u64, id: &str, expires_at_ms: u64, revoked_at_ms: u64) -> Op {
    Op {
        origin: origin.clone(),
        seq,
        payload: Payload::Token {
            token_id: id.into(),
            expires_at_ms,
            revoked_at_ms,
            reason: String::new(),
            actor: String::new(),
        },
    }
}

fn cutoff_op(
    origin: &OriginId,
    seq: u64,
    kind: PrincipalKind,
    who: &str,
    before: u64,
    min_version: u64,
) -> Op {
    Op {
        origin: origin.clone(),
        seq,
        payload: Payload::Cutoff {
            kind,
            principal: who.into(),
            cutoff: Cutoff {
                issued_before_ms: before,
                min_version,
            },
            revoked_at_ms: before,
            reason: String::new(),
            actor: String::new(),
        },
    }
}

#[test]
fn ties_revoke_for_every_principal_kind() {
    let o = origin(0);
    for (seq, kind) in PrincipalKind::ALL.into_iter().enumerate() {
        let s = state_of(&[cutoff_op(&o, 1 + seq as u64, kind, "alice", 5_000, 0)]);
        let at = |ms| CheckQuery::default().with(kind, "alice").issued_at(ms);
        assert_eq!(s.check(&at(5_000)).rule, Some(Rule::Cutoff(kind)), "{kind:?} tie");
        assert_eq!(s.check(&at(4_999)).revoked_at_ms, 5_000);
        assert!(!s.check(&at(5_001)).revoked(), "{kind:?} after cutoff");
        // Another principal of the same kind, or the same id under another kind, is untouched.
        assert!(
            !s.check(&CheckQuery::default().with(kind, "bob").issued_at(1))
                .revoked()
        );
        let other = PrincipalKind::ALL[(kind.index() + 1) % 5];
        assert!(
            !s.check(&CheckQuery::default().with(other, "alice").issued_at(1))
                .revoked()
        );
    }
}

#[test]
fn min_version_revokes_older_versions_only() {
    let o = origin(0);
    let s = state_of(&[cutoff_op(&o, 1, PrincipalKind::Session, "s1", 0, 4)]);
    let q = |v| CheckQuery {
        token_version: v,
        ..CheckQuery::default()
            .with(PrincipalKind::Session, "s1")
            .issued_at(10)
    };
    assert!(s.check(&q(3)).revoked());
    assert_eq!(s.check(&q(3)).revoked_at_ms, 0);
    assert!(!s.check(&q(4)).revoked());
    // An unknown version counts as 0: revoked (security first).
    assert!(s.check(&q(0)).revoked());
}

#[test]
fn cutoffs_at_several_scopes_combine_by_max() {
    // tenant cut at 100, client at 300, subject at 200: a token carrying all three
    // is revoked up to 300, whichever scope is consulted first.
    let o = origin(0);
    let s = state_of(&[
        cutoff_op(&o, 1, PrincipalKind::Tenant, "acme", 100, 0),
        cutoff_op(&o, 2, PrincipalKind::Client, "ci", 300, 0),
        cutoff_op(&o, 3, PrincipalKind::Subject, "alice", 200, 0),
    ]);
    let q = |at| {
        CheckQuery::default()
            .with(PrincipalKind::Tenant, "acme")
            .with(PrincipalKind::Client, "ci")
            .with(PrincipalKind::Subject, "alice")
            .issued_at(at)
    };
    assert!(s.check(&q(250)).revoked());
    assert_eq!(s.check(&q(250)).rule, Some(Rule::Cutoff(PrincipalKind::Client)));
    assert!(s.check(&q(300)).revoked());
    assert!(!s.check(&q(301)).revoked());
    // Lowering a cutoff is impossible: a later, smaller cutoff changes nothing.
    let mut s2 = s.clone();
    s2.apply_op(&cutoff_op(&o, 4, PrincipalKind::Client, "ci", 50, 0), 0);
    assert!(s2.check(&q(300)).revoked());
    assert_eq!(s2.digest(), s.digest());
}

#[test]
fn same_id_keeps_the_smallest_revoked_at_then_origin() {
    let (a, b) = (origin(0), origin(1));
    let e1 = token_op(&a, 1, "t", 0, 20);
    let e2 = token_op(&b, 1, "t", 0, 10);
    let e3 = token_op(&b, 2, "t", 0, 20);
    let s = state_of(&[e1.clone(), e2.clone(), e3.clone()]);
    let meta = s.deny().get("t").unwrap();
    assert_eq!((meta.revoked_at_ms, &*meta.origin), (10, &b));
    let only_ties = state_of(&[e3, e1]);
    // Equal revoked_at: the smaller origin ("n0" < "n1") wins, whatever the order.
    assert_eq!(&*only_ties.deny().get("t").unwrap().origin, &a);
    // Expiry is the longest of all entries for the id, whoever wins the identity.
    let s = state_of(&[
        token_op(&a, 1, "u", 500, 1),
        token_op(&b, 1, "u", 900, 2),
        token_op(&a, 2, "u", 700, 3),
    ]);
    let meta = s.deny().get("u").unwrap();
    assert_eq!((meta.revoked_at_ms, meta.expires_at_ms), (1, 900));
}

#[test]
fn expired_entries_are_pruned_and_dropped_on_arrival() {
    let o = origin(0);
    let mut s = State::new(GRACE);
    s.apply_op(&token_op(&o, 1, "short", 10_000, 1), 0);
    s.apply_op(&token_op(&o, 2, "forever", 0, 1), 0);
    let before = s.digest();
    // Within the grace period nothing goes.
    assert!(s.prune_expired(10_000 + GRACE).is_empty());
    assert_eq!(s.prune_expired(10_001 + GRACE), vec!["short".into()]);
    assert!(!s.check(&CheckQuery::token("short")).revoked());
    assert!(s.check(&CheckQuery::token("forever")).revoked());
    assert_ne!(s.digest(), before);
    assert_eq!(s.digest().0, recomputed_digest(&s));
    assert_eq!(s.pruned(), 1);
    // A lagging peer sending the old entry again does not bring it back, but its seq counts.
    let late = token_op(&origin(1), 1, "short", 10_000, 1);
    let (fresh, effect) = s.apply_op(&late, 20_000 + GRACE);
    assert!(fresh);
    assert_eq!(effect, rescind_core::Effect::None);
    assert_eq!(s.clock().get(&origin(1)), 1);
    assert!(s.deny().get("short").is_none());
}

#[test]
fn merge_deny_reports_only_real_changes() {
    let mut s = State::new(GRACE);
    let e = DenyEntry {
        expires_at_ms: 100,
        revoked_at_ms: 5,
        origin: origin(1),
    };
    assert!(matches!(
        s.merge_deny("x", &e, 0),
        rescind_core::Effect::Deny { .. }
    ));
    assert_eq!(s.merge_deny("x", &e, 0), rescind_core::Effect::None);
    let later = DenyEntry {
        revoked_at_ms: 6,
        ..e.clone()
    };
    assert_eq!(s.merge_deny("x", &later, 0), rescind_core::Effect::None);
    // A later revocation with a longer expiry extends the entry but keeps its identity.
    let longer = DenyEntry {
        revoked_at_ms: 9,
        expires_at_ms: 0,
        origin: origin(2),
    };
    let joined = DenyEntry {
        expires_at_ms: 0,
        ..e.clone()
    };
    assert_eq!(
        s.merge_deny("x", &longer, 0),
        rescind_core::Effect::Deny {
            id: "x".into(),
            entry: joined
        }
    );
}

#[test]
fn issuers_are_separate_namespaces() {
    use rescind_core::scope;
    let o = origin(0);
    let a = scope::key("https://a.example", "jti-1");
    let s = state_of(&[
        token_op(&o, 1, &a, 0, 10),
        cutoff_op(
            &o,
            2,
            PrincipalKind::Subject,
            &scope::key("https://a.example", "alice"),
            500,
            0,
        ),
    ]);
    let token = |issuer| CheckQuery::token("jti-1").in_issuer(issuer);
    assert_eq!(s.check(&token("https://a.example")).rule, Some(Rule::TokenId));
    assert!(
        !s.check(&token("https://b.example")).revoked(),
        "same jti, other issuer"
    );
    assert!(!s.check(&token("")).revoked(), "same jti, no issuer");
    let subject = |issuer| {
        CheckQuery::default()
            .with(PrincipalKind::Subject, "alice")
            .issued_at(400)
            .in_issuer(issuer)
    };
    assert!(s.check(&subject("https://a.example")).revoked());
    assert!(!s.check(&subject("https://b.example")).revoked());
    let many = s.check_many(&[token("https://a.example"), token("https://b.example")]);
    assert_eq!(
        many.iter().map(|d| d.revoked()).collect::<Vec<_>>(),
        [true, false]
    );
}
