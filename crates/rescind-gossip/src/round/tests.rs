use rescind_core::VersionVector;

use super::*;
use crate::members::{MemberRecord, UNKNOWN};
use crate::snapshot::{self, Pull};
use crate::testing::{MemNode, info};
use crate::wire::encode_op;

/// One whole round `caller` → `peer` at time `now`, as a transport runs it
/// (snapshot included). Returns the caller's `Received`.
fn round(caller: &mut MemNode, peer: &mut MemNode, now: u64, limits: &Limits) -> Received {
    let req = request(&caller.cluster, &caller.durable);
    let ans = answer(&mut peer.cluster, &peer.log, &peer.durable, &req, now, limits).unwrap();
    let addr = peer.cluster.me().addr.clone();
    let got = receive(&mut caller.cluster, &addr, &ans, now).unwrap();
    caller.apply(&got.ops);
    if got.snapshot_needed {
        let mut pull = Pull::new();
        while !pull.is_done() {
            let page = snapshot::page(&*peer, pull.cursor(), 2).unwrap();
            caller.merge(&pull.receive(&page).unwrap());
        }
    }
    caller.flush();
    adopt(&mut caller.cluster, now, &ans, caller.state.clock());
    if let Some(ops) = push_back(&caller.log, &caller.durable, &ans.clock, limits).unwrap() {
        let push = Push {
            from: caller.cluster.me().clone(),
            ops,
        };
        let ops = on_push(&mut peer.cluster, &push, now).unwrap();
        peer.apply(&ops);
        peer.flush();
    }
    got
}

fn staleness_of(node: &MemNode, name: &str, now: u64) -> u64 {
    let view = node.cluster.view(now);
    view.iter().find(|v| v.info.name == name).unwrap().staleness_ms
}

#[test]
fn a_round_carries_ops_both_ways_and_notes_both_contacts() {
    let (mut a, mut b) = (MemNode::new("a", "eu", &["b"]), MemNode::new("b", "eu", &["a"]));
    a.revoke_token("t1");
    a.revoke_cutoff("s1", 5);
    a.flush();
    b.revoke_token("t2");
    b.flush();
    let req = request(&b.cluster, &b.durable);
    assert_eq!(req.from, info("b", "eu"));
    assert_eq!(req.clock, b.durable);
    let got = round(&mut b, &mut a, 10, &Limits::default());
    assert_eq!(got.ops.len(), 2);
    assert!(!got.more && !got.snapshot_needed);
    assert_eq!(a.state, b.state, "b pulled a's ops and pushed its own");
    assert_eq!(b.cluster.view(10)[0].last_contact_ago_ms, Some(0));
    assert_eq!(a.cluster.view(10)[0].last_contact_ago_ms, Some(0));
    assert_eq!(
        a.cluster.staleness_ms(10),
        UNKNOWN,
        "the peer side adopts nothing"
    );
    assert_eq!(
        b.cluster.staleness_ms(10),
        0,
        "b is fresh about a as of the request"
    );
}

#[test]
fn only_durable_ops_are_shipped() {
    let (mut a, b) = (MemNode::new("a", "eu", &[]), MemNode::new("b", "eu", &[]));
    a.revoke_token("t1");
    a.flush();
    a.revoke_token("t2");
    let req = request(&b.cluster, &b.durable);
    let ans = answer(&mut a.cluster, &a.log, &a.durable, &req, 0, &Limits::default()).unwrap();
    assert_eq!(ans.ops.len(), 1, "t2 is not durable yet");
    assert_eq!(ans.clock, a.durable);
    a.flush();
    let ans = answer(&mut a.cluster, &a.log, &a.durable, &req, 0, &Limits::default()).unwrap();
    assert_eq!(ans.ops.len(), 2);
}

#[test]
fn limits_say_more_and_a_log_that_cannot_serve_asks_for_a_snapshot() {
    let (mut a, mut b) = (MemNode::new("a", "eu", &[]), MemNode::new("b", "eu", &[]));
    for i in 0..5 {
        a.revoke_token(&format!("t{i}"));
    }
    a.flush();
    let few = Limits {
        max_ops: 2,
        ..Limits::default()
    };
    let got = round(&mut b, &mut a, 0, &few);
    assert!(got.more && got.ops.len() == 2);
    a.truncate_log();
    let got = round(&mut b, &mut a, 0, &few);
    assert!(got.snapshot_needed && got.ops.is_empty());
    assert_eq!(a.state, b.state, "the snapshot brought the rest and the clock");
    assert!(!round(&mut b, &mut a, 0, &few).snapshot_needed, "and only once");
}

#[test]
fn freshness_is_adopted_only_for_nodes_held_as_far_as_the_peer() {
    let mut a = MemNode::new("a", "eu", &["b"]);
    let mut b = MemNode::new("b", "eu", &["c"]);
    let mut c = MemNode::new("c", "eu", &[]);
    c.revoke_token("t1");
    c.flush();
    round(&mut b, &mut c, 100, &Limits::default());
    assert_eq!(staleness_of(&b, "c", 100), 0);
    // a asks b at 200 and is answered, but has not applied c's op yet.
    let req = request(&a.cluster, &a.durable);
    let ans = answer(&mut b.cluster, &b.log, &b.durable, &req, 250, &Limits::default()).unwrap();
    assert_eq!(ans.freshness, vec![("b".to_string(), 0), ("c".to_string(), 150)]);
    let got = receive(&mut a.cluster, "b:1", &ans, 300).unwrap();
    adopt(&mut a.cluster, 200, &ans, a.state.clock());
    assert_eq!(staleness_of(&a, "b", 300), 100, "b holds no ops of its own");
    assert_eq!(staleness_of(&a, "c", 300), UNKNOWN, "c's op is not held yet");
    a.apply(&got.ops);
    adopt(&mut a.cluster, 200, &ans, a.state.clock());
    assert_eq!(staleness_of(&a, "c", 300), 250, "as of b's knowledge: 200 - 150");
}

#[test]
fn an_invalid_answer_changes_nothing() {
    let (mut a, b) = (MemNode::new("a", "eu", &["b"]), MemNode::new("b", "eu", &[]));
    let mut ans = Greeting {
        me: b.cluster.me().clone(),
        freshness: Vec::new(),
        members: b.cluster.records(),
    }
    .answer(&VersionVector::new(), Plan::UpToDate);
    ans.ops = vec![vec![0xff, 0xff]];
    assert_eq!(
        receive(&mut a.cluster, "b:1", &ans, 0).unwrap_err().field,
        "ops[0]"
    );
    assert!(a.cluster.view(0).is_empty(), "no contact noted");
}

#[test]
fn a_push_is_validated_whole_before_its_sender_is_noted() {
    let (mut a, mut b) = (MemNode::new("a", "eu", &[]), MemNode::new("b", "eu", &[]));
    let op = a.revoke_token("t1");
    let mut push = Push {
        from: a.cluster.me().clone(),
        ops: vec![encode_op(&op), vec![0xff]],
    };
    assert_eq!(on_push(&mut b.cluster, &push, 0).unwrap_err().field, "ops[1]");
    assert!(b.cluster.view(0).is_empty());
    push.ops.pop();
    assert_eq!(on_push(&mut b.cluster, &push, 0).unwrap(), vec![op]);
    assert_eq!(b.cluster.view(0).len(), 1);
}

#[test]
fn push_back_sends_what_the_peer_lacks_from_the_log_only() {
    let mut a = MemNode::new("a", "eu", &[]);
    a.revoke_token("t1");
    a.flush();
    let theirs = VersionVector::new();
    let ops = push_back(&a.log, &a.durable, &theirs, &Limits::default()).unwrap();
    assert_eq!(ops.map(|o| o.len()), Some(1));
    assert_eq!(
        push_back(&a.log, &a.durable, &a.durable, &Limits::default()).unwrap(),
        None
    );
    a.truncate_log();
    assert_eq!(
        push_back(&a.log, &a.durable, &theirs, &Limits::default()).unwrap(),
        None,
        "a peer that needs a snapshot pulls it in its own round"
    );
}

#[test]
fn ops_from_another_region_are_relayed_to_this_region_only() {
    let mut c = Cluster::new(info("e0", "eu"), Vec::new());
    for (n, r) in [("e1", "eu"), ("e2", "eu"), ("u1", "us"), ("u2", "us")] {
        c.contact(None, &info(n, r), 0);
    }
    c.learn(&[MemberRecord {
        info: info("e3", "eu"),
        removed: true,
    }]);
    assert_eq!(relay_targets(&c, &info("u1", "us")), vec!["e1:1", "e2:1"]);
    assert!(
        relay_targets(&c, &info("e1", "eu")).is_empty(),
        "own region: no relay"
    );
    // A sender that moved region is still never relayed its own ops.
    let mut moved = info("e2", "ap");
    moved.addr = "e2:1".into();
    assert_eq!(relay_targets(&c, &moved), vec!["e1:1"]);
}
