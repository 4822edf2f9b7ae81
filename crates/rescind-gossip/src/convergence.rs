//! Convergence without a network: three in-memory nodes (two regions) run
//! rounds, pushes, relays and snapshot pulls through a message queue whose
//! messages proptest loses, duplicates and reorders. At every step no node's
//! staleness may under-report; once the schedule ends, rounds run loss-free
//! until nothing changes, and every node must hold the same state.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use proptest::sample::Index;
use rescind_core::{OriginId, PrincipalKind, VersionVector};

use crate::members::UNKNOWN;
use crate::plan::Limits;
use crate::round::{self, Exchange, ExchangeAnswer, Push};
use crate::snapshot::{self, Pull, SnapshotPage};
use crate::testing::MemNode;
use crate::wire::encode_op;

/// (name, region): n0 and n1 share a region, n2 is alone in its own.
const NODES: [(&str, &str); 3] = [("n0", "eu"), ("n1", "eu"), ("n2", "us")];
/// Push targets count as live if heard from this recently.
const FRESH_MS: u64 = 1_000;

/// One step of a schedule.
#[derive(Clone, Debug)]
enum Step {
    /// A node revokes a token id (`token`) or raises a subject's cutoff.
    Revoke { node: usize, token: bool, id: u8 },
    /// A node's writer flushes: its new local ops become durable and are pushed.
    Flush(usize),
    /// `from` opens a round with `to`.
    Round { from: usize, to: usize },
    /// One message in flight arrives (any of them: reordering).
    Deliver(Index),
    /// One message in flight is lost.
    Drop(Index),
    /// One message in flight is duplicated.
    Duplicate(Index),
    /// A node forgets its op log.
    Truncate(usize),
}

#[derive(Clone, Debug)]
enum Body {
    Exchange {
        req: Exchange,
        sent_at: u64,
    },
    Answer {
        ans: ExchangeAnswer,
        sent_at: u64,
    },
    Push(Push),
    Ask {
        pull: u64,
        cursor: Vec<u8>,
    },
    Page {
        pull: u64,
        asked: Vec<u8>,
        page: SnapshotPage,
    },
}

#[derive(Clone, Debug)]
struct Msg {
    from: usize,
    to: usize,
    body: Body,
}

/// A round waiting for its snapshot: it adopts and pushes back once done.
struct Pulling {
    node: usize,
    peer: usize,
    pull: Pull,
    ans: ExchangeAnswer,
    sent_at: u64,
}

struct World {
    nodes: Vec<MemNode>,
    net: Vec<Msg>,
    pulls: BTreeMap<u64, Pulling>,
    next_pull: u64,
    now: u64,
    limits: Limits,
    page_size: usize,
    /// When each op became durable at its origin.
    durable_at: BTreeMap<(OriginId, u64), u64>,
    tokens: BTreeSet<String>,
    subjects: BTreeMap<String, u64>,
    snapshots: usize,
}

fn index_of(addr: &str) -> usize {
    NODES.iter().position(|(n, _)| addr == format!("{n}:1")).unwrap()
}

impl World {
    fn new(limits: Limits, page_size: usize) -> Self {
        let nodes = NODES
            .iter()
            .map(|(name, region)| {
                let seeds: Vec<&str> = NODES.iter().map(|(n, _)| *n).filter(|n| n != name).collect();
                MemNode::new(name, region, &seeds)
            })
            .collect();
        Self {
            nodes,
            net: Vec::new(),
            pulls: BTreeMap::new(),
            next_pull: 0,
            now: 1,
            limits,
            page_size,
            durable_at: BTreeMap::new(),
            tokens: BTreeSet::new(),
            subjects: BTreeMap::new(),
            snapshots: 0,
        }
    }

    fn send(&mut self, from: usize, to: usize, body: Body) {
        self.net.push(Msg { from, to, body });
    }

    fn step(&mut self, step: &Step) {
        self.now += 1;
        match *step {
            Step::Revoke { node, token, id } => {
                if token {
                    let id = format!("t{id}");
                    self.nodes[node].revoke_token(&id);
                    self.tokens.insert(id);
                } else {
                    let (who, at) = (format!("s{id}"), u64::from(id) + 1);
                    self.nodes[node].revoke_cutoff(&who, at);
                    let top = self.subjects.entry(who).or_default();
                    *top = (*top).max(at);
                }
            }
            Step::Flush(node) => self.flush(node),
            Step::Round { from, to } if from != to => {
                let n = &self.nodes[from];
                let req = round::request(&n.cluster, &n.durable);
                let sent_at = self.now;
                self.send(from, to, Body::Exchange { req, sent_at });
            }
            Step::Round { .. } => {}
            Step::Deliver(i) if !self.net.is_empty() => {
                let msg = self.net.remove(i.index(self.net.len()));
                self.deliver(msg);
            }
            Step::Drop(i) if !self.net.is_empty() => drop(self.net.remove(i.index(self.net.len()))),
            Step::Duplicate(i) if !self.net.is_empty() => {
                let msg = self.net[i.index(self.net.len())].clone();
                self.net.push(msg);
            }
            Step::Deliver(_) | Step::Drop(_) | Step::Duplicate(_) => {}
            Step::Truncate(node) => self.nodes[node].truncate_log(),
        }
        self.check_freshness();
    }

    /// The writer's flush: new local ops become durable and go to the push targets.
    fn flush(&mut self, node: usize) {
        let local = self.nodes[node].flush();
        if local.is_empty() {
            return;
        }
        for op in &local {
            self.durable_at.insert((op.origin.clone(), op.seq), self.now);
        }
        let n = &self.nodes[node];
        let push = Push {
            from: n.cluster.me().clone(),
            ops: local.iter().map(encode_op).collect(),
        };
        for addr in n.cluster.push_targets(self.now, FRESH_MS, 8) {
            self.send(node, index_of(&addr), Body::Push(push.clone()));
        }
    }

    fn deliver(&mut self, msg: Msg) {
        self.now += 1;
        let (now, from, to) = (self.now, msg.from, msg.to);
        match msg.body {
            Body::Exchange { req, sent_at } => {
                let n = &mut self.nodes[to];
                let ans = round::answer(&mut n.cluster, &n.log, &n.durable, &req, now, &self.limits).unwrap();
                self.send(to, from, Body::Answer { ans, sent_at });
            }
            Body::Answer { ans, sent_at } => {
                let dialed = self.nodes[from].cluster.me().addr.clone();
                let got = round::receive(&mut self.nodes[to].cluster, &dialed, &ans, now).unwrap();
                self.nodes[to].apply(&got.ops);
                self.flush(to);
                if got.snapshot_needed {
                    let pull = self.next_pull;
                    self.next_pull += 1;
                    let pulling = Pulling {
                        node: to,
                        peer: from,
                        pull: Pull::new(),
                        ans,
                        sent_at,
                    };
                    self.pulls.insert(pull, pulling);
                    self.send(
                        to,
                        from,
                        Body::Ask {
                            pull,
                            cursor: Vec::new(),
                        },
                    );
                } else {
                    self.finish_round(to, from, &ans, sent_at);
                }
            }
            Body::Push(push) => {
                let ops = round::on_push(&mut self.nodes[to].cluster, &push, now).unwrap();
                let applied = self.nodes[to].apply(&ops);
                self.flush(to);
                if applied > 0 {
                    let n = &self.nodes[to];
                    let relay = Push {
                        from: n.cluster.me().clone(),
                        ops: push.ops,
                    };
                    for addr in round::relay_targets(&n.cluster, &push.from) {
                        self.send(to, index_of(&addr), Body::Push(relay.clone()));
                    }
                }
            }
            Body::Ask { pull, cursor } => {
                let page = snapshot::page(&self.nodes[to], &cursor, self.page_size).unwrap();
                self.send(
                    to,
                    from,
                    Body::Page {
                        pull,
                        asked: cursor,
                        page,
                    },
                );
            }
            Body::Page { pull, asked, page } => self.take_page(pull, &asked, &page),
        }
    }

    /// A snapshot page arrives; one answering an older request is stale and ignored.
    fn take_page(&mut self, id: u64, asked: &[u8], page: &SnapshotPage) {
        let Some(p) = self.pulls.get_mut(&id).filter(|p| p.pull.cursor() == asked) else {
            return;
        };
        let merge = p.pull.receive(page).unwrap();
        let (node, peer, cursor) = (p.node, p.peer, p.pull.cursor().to_vec());
        self.nodes[node].merge(&merge);
        self.flush(node);
        if merge.done {
            let p = self.pulls.remove(&id).unwrap();
            self.snapshots += 1;
            self.finish_round(node, peer, &p.ans, p.sent_at);
        } else {
            self.send(node, peer, Body::Ask { pull: id, cursor });
        }
    }

    /// The caller's end of a round: adopt freshness, push back what the peer lacks.
    fn finish_round(&mut self, node: usize, peer: usize, ans: &ExchangeAnswer, sent_at: u64) {
        let n = &mut self.nodes[node];
        round::adopt(&mut n.cluster, sent_at, ans, n.state.clock());
        if let Some(ops) = round::push_back(&n.log, &n.durable, &ans.clock, &self.limits).unwrap() {
            let from = n.cluster.me().clone();
            self.send(node, peer, Body::Push(Push { from, ops }));
        }
    }

    /// Staleness never under-reports: a node fresh about M as of `f` holds
    /// every op M had made durable by then.
    fn check_freshness(&self) {
        for n in &self.nodes {
            for v in n.cluster.view(self.now) {
                if v.staleness_ms == UNKNOWN {
                    continue;
                }
                let fresh_as_of = self.now - v.staleness_ms;
                let origin = OriginId::new(v.info.name.clone(), 1);
                for ((o, seq), at) in &self.durable_at {
                    assert!(
                        *o != origin || *at > fresh_as_of || n.state.clock().contains(o, *seq),
                        "{} claims to be fresh about {origin} as of {fresh_as_of} but lacks seq {seq} (durable at {at})",
                        n.origin
                    );
                }
            }
        }
    }

    /// Deliver every message in flight, and what they cause.
    fn drain(&mut self) {
        for _ in 0..100_000 {
            if self.net.is_empty() {
                return;
            }
            let msg = self.net.remove(0);
            self.deliver(msg);
        }
        panic!("messages never stopped");
    }

    fn fingerprint(&self) -> Vec<(VersionVector, VersionVector, u128)> {
        self.nodes
            .iter()
            .map(|n| (n.state.clock().clone(), n.durable.clone(), n.state.digest().0))
            .collect()
    }

    /// Flush everything, then run loss-free rounds between every pair until
    /// a whole pass changes nothing.
    fn quiesce(&mut self) {
        self.drain();
        for n in 0..NODES.len() {
            self.flush(n);
        }
        self.drain();
        let mut last = None;
        for _ in 0..1_000 {
            for from in 0..NODES.len() {
                for to in 0..NODES.len() {
                    self.step(&Step::Round { from, to });
                    self.drain();
                }
            }
            let print = self.fingerprint();
            if last.as_ref() == Some(&print) {
                return;
            }
            last = Some(print);
        }
        panic!("rounds never went quiet");
    }

    fn assert_converged(&self) {
        let first = &self.nodes[0];
        for n in &self.nodes {
            assert_eq!(n.state.digest(), first.state.digest(), "{} differs", n.origin);
            assert_eq!(n.state.clock(), first.state.clock(), "{} differs", n.origin);
            assert_eq!(&n.durable, n.state.clock(), "{} not durable", n.origin);
            assert!(n.state == first.state);
            for id in &self.tokens {
                assert!(n.state.deny().get(id).is_some(), "{} lacks {id}", n.origin);
            }
            for (who, at) in &self.subjects {
                let c = n.state.cutoffs().get(PrincipalKind::Subject, who);
                assert!(
                    c.is_some_and(|c| c.issued_before_ms >= *at),
                    "{} lacks {who}",
                    n.origin
                );
            }
            assert_ne!(
                n.cluster.staleness_ms(self.now),
                UNKNOWN,
                "{} never got fresh",
                n.origin
            );
        }
    }
}

fn node() -> impl Strategy<Value = usize> {
    0..NODES.len()
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (node(), any::<bool>(), 0u8..16).prop_map(|(node, token, id)| Step::Revoke { node, token, id }),
        2 => node().prop_map(Step::Flush),
        4 => (node(), node()).prop_map(|(from, to)| Step::Round { from, to }),
        6 => any::<Index>().prop_map(Step::Deliver),
        2 => any::<Index>().prop_map(Step::Drop),
        1 => any::<Index>().prop_map(Step::Duplicate),
        1 => node().prop_map(Step::Truncate),
    ]
}

fn limits() -> impl Strategy<Value = Limits> {
    (
        1usize..5,
        prop_oneof![Just(1usize), Just(1 << 20)],
        prop_oneof![1u64..6, Just(100_000)],
    )
        .prop_map(|(max_ops, max_bytes, snapshot_after_ops)| Limits {
            max_ops,
            max_bytes,
            snapshot_after_ops,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn lossy_duplicated_reordered_rounds_converge(
        limits in limits(),
        page_size in 1usize..4,
        steps in prop::collection::vec(step(), 0..120),
    ) {
        let mut world = World::new(limits, page_size);
        for s in &steps {
            world.step(s);
        }
        world.quiesce();
        world.assert_converged();
    }
}

#[test]
fn a_truncated_log_is_caught_up_by_snapshot_through_a_lossy_network() {
    let limits = Limits {
        max_ops: 2,
        ..Limits::default()
    };
    let mut world = World::new(limits, 1);
    for id in 0..5 {
        world.step(&Step::Revoke {
            node: 2,
            token: true,
            id,
        });
        world.step(&Step::Revoke {
            node: 2,
            token: false,
            id,
        });
    }
    world.step(&Step::Flush(2));
    // Every eager push (if any) is lost, and n2 forgets its log.
    world.net.clear();
    world.step(&Step::Truncate(2));
    world.quiesce();
    world.assert_converged();
    assert!(world.snapshots >= 1, "the snapshot path ran");
}
