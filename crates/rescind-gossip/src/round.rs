//! One anti-entropy round and the pushes, as plain functions over a node's
//! [`Cluster`] and its [`OpLog`]: the transport carries the messages and
//! applies the ops these functions hand back (see `ALGORITHM.md`).
//!
//! Caller A, peer B:
//! 1. A: [`request`] → [`Exchange`];
//! 2. B: [`answer`] → [`ExchangeAnswer`] (or [`greet`], read the durable
//!    vector, [`plan_ops`], [`Greeting::answer`], when the cluster and the log
//!    sit behind different locks);
//! 3. A: [`receive`] → the ops to apply (or pull a snapshot), then [`adopt`]
//!    B's freshness, then [`push_back`] what B lacks → [`Push`];
//! 4. B: [`on_push`] → the ops to apply, and [`relay_targets`] to forward
//!    them to.
//!
//! Every `durable` argument must be the node's *durable* version vector: an
//! op is only shipped once its origin can no longer lose it.

use rescind_core::limits::FieldError;
use rescind_core::{Op, VersionVector};

use crate::members::{Cluster, MemberRecord, NodeInfo};
use crate::plan::{Limits, Plan, plan_ops};
use crate::source::{OpLog, SourceError};
use crate::wire::decode_ops;

/// What a caller sends to open a round.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exchange {
    /// The caller.
    pub from: NodeInfo,
    /// The caller's durable version vector: what it holds.
    pub clock: VersionVector,
    /// The members the caller knows, itself included.
    pub members: Vec<MemberRecord>,
}

/// A peer's answer to an [`Exchange`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExchangeAnswer {
    /// The peer.
    pub from: NodeInfo,
    /// The peer's durable version vector, read after its freshness ages.
    pub clock: VersionVector,
    /// Encoded ops the caller lacks, per origin in seq order, bounded.
    pub ops: Vec<Vec<u8>>,
    /// More ops remain for the next round.
    pub more: bool,
    /// The peer's op log cannot serve what the caller lacks: pull a snapshot.
    pub snapshot_needed: bool,
    /// The peer's freshness ages per node name ([`Cluster::ages`]).
    pub freshness: Vec<(String, u64)>,
    /// The members the peer knows, itself included.
    pub members: Vec<MemberRecord>,
}

/// Ops delivered to a peer: an eager push, the push half of a round, or a relay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Push {
    /// The sender.
    pub from: NodeInfo,
    /// Encoded ops.
    pub ops: Vec<Vec<u8>>,
}

/// What a caller takes from an answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    /// Validated ops to apply.
    pub ops: Vec<Op>,
    /// The peer holds more for the next round.
    pub more: bool,
    /// Pull a snapshot from the peer.
    pub snapshot_needed: bool,
}

/// What a caller sends: who it is, what it holds (`durable`), whom it knows.
pub fn request(cluster: &Cluster, durable: &VersionVector) -> Exchange {
    Exchange {
        from: cluster.me().clone(),
        clock: durable.clone(),
        members: cluster.records(),
    }
}

/// The membership half of an answer, taken before the durable vector is read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Greeting {
    me: NodeInfo,
    freshness: Vec<(String, u64)>,
    members: Vec<MemberRecord>,
}

/// A peer's first step: note the caller's contact and members, and take our
/// freshness ages. Ages come before the version vector sent with them (read
/// after this), which can then only cover more than the ages claim.
pub fn greet(cluster: &mut Cluster, req: &Exchange, now: u64) -> Greeting {
    cluster.contact(None, &req.from, now);
    cluster.learn(&req.members);
    Greeting {
        me: cluster.me().clone(),
        freshness: cluster.ages(now),
        members: cluster.records(),
    }
}

impl Greeting {
    /// The answer, given our durable version vector (read after [`greet`])
    /// and the plan for the caller's vector.
    pub fn answer(self, durable: &VersionVector, plan: Plan) -> ExchangeAnswer {
        let (ops, more, snapshot_needed) = match plan {
            Plan::UpToDate => (Vec::new(), false, false),
            Plan::Ops { ops, more } => (ops, more, false),
            Plan::Snapshot => (Vec::new(), false, true),
        };
        ExchangeAnswer {
            from: self.me,
            clock: durable.clone(),
            ops,
            more,
            snapshot_needed,
            freshness: self.freshness,
            members: self.members,
        }
    }
}

/// What a peer answers an [`Exchange`]: [`greet`], then the ops the caller
/// lacks from `log`, up to `durable` and within `limits`.
pub fn answer(
    cluster: &mut Cluster,
    log: &dyn OpLog,
    durable: &VersionVector,
    req: &Exchange,
    now: u64,
    limits: &Limits,
) -> Result<ExchangeAnswer, SourceError> {
    let greeting = greet(cluster, req, now);
    let plan = plan_ops(log, durable, &req.clock, limits)?;
    Ok(greeting.answer(durable, plan))
}

/// The caller takes an answer from the peer it `dialed`: the ops are
/// validated first (an invalid answer changes nothing), then the peer's
/// contact and members are noted.
pub fn receive(
    cluster: &mut Cluster,
    dialed: &str,
    answer: &ExchangeAnswer,
    now: u64,
) -> Result<Received, FieldError> {
    let ops = decode_ops(&answer.ops)?;
    cluster.contact(Some(dialed), &answer.from, now);
    cluster.learn(&answer.members);
    Ok(Received {
        ops,
        more: answer.more,
        snapshot_needed: answer.snapshot_needed,
    })
}

/// Once the answer's ops (or snapshot) are applied: adopt the peer's
/// freshness for every node whose ops we now `held` (in memory) as far as
/// the peer's version vector does. `sent_at`: when the request left, so the
/// whole round trip counts against freshness.
pub fn adopt(cluster: &mut Cluster, sent_at: u64, answer: &ExchangeAnswer, held: &VersionVector) {
    cluster.adopt_freshness(sent_at, &answer.freshness, |name| {
        answer
            .clock
            .iter()
            .filter(|(o, _)| o.node == name)
            .all(|(o, seq)| held.get(o) >= seq)
    });
}

/// The push half of a round: the ops a peer whose vector is `theirs` lacks,
/// if our log can serve them (a peer that needs a snapshot pulls it itself
/// in its own round).
pub fn push_back(
    log: &dyn OpLog,
    durable: &VersionVector,
    theirs: &VersionVector,
    limits: &Limits,
) -> Result<Option<Vec<Vec<u8>>>, SourceError> {
    Ok(match plan_ops(log, durable, theirs, limits)? {
        Plan::Ops { ops, .. } => Some(ops),
        Plan::UpToDate | Plan::Snapshot => None,
    })
}

/// A peer takes a push: the whole message is validated before anything
/// touches the state or the cluster, then the sender's contact is noted.
/// Returns the ops to apply.
pub fn on_push(cluster: &mut Cluster, push: &Push, now: u64) -> Result<Vec<Op>, FieldError> {
    let ops = decode_ops(&push.ops)?;
    cluster.contact(None, &push.from, now);
    Ok(ops)
}

/// Where to relay ops pushed in by `from` once some were new here: pushed in
/// from another region, to this region's other live nodes except the sender;
/// from our own region (a relay, or a neighbour's push), to nobody.
pub fn relay_targets(cluster: &Cluster, from: &NodeInfo) -> Vec<String> {
    if from.region == cluster.me().region {
        return Vec::new();
    }
    cluster
        .region_peers()
        .into_iter()
        .filter(|a| *a != from.addr)
        .collect()
}

#[cfg(test)]
mod tests;
