//! # rescind-gossip
//!
//! The replication protocol of Rescind as plain synchronous functions over
//! values (chitchat's lesson): no sockets, no timers, no tasks, no storage
//! engine. Time comes in as monotonic milliseconds, randomness as an `Rng`,
//! and a node's data through two small traits ([`OpLog`], [`SnapshotSource`]),
//! so the protocol is tested here without a network and driven unchanged by
//! the node's gRPC transport and by the simulator. `ALGORITHM.md` states the
//! protocol step by step.
//!
//! A round between node A (caller) and node B ([`round`]):
//! 1. A sends its durable version vector and the members it knows
//!    ([`round::request`]);
//! 2. B answers with the ops A lacks (bounded, [`plan::plan_ops`]) — or says a
//!    snapshot is needed when its op log cannot serve them — plus its durable
//!    version vector, its members and its freshness ages ([`round::answer`]);
//! 3. A validates and applies the ops ([`round::receive`]) or pulls a snapshot
//!    ([`snapshot::Pull`]), adopts B's freshness for every node whose ops it
//!    now holds as far as B did ([`round::adopt`]), and pushes to B the ops B
//!    lacks ([`round::push_back`]);
//! 4. B applies the push ([`round::on_push`]); ops pushed in from another
//!    region are relayed to B's own region ([`round::relay_targets`]).
//!
//! ## Layout
//! - [`members`]: [`Cluster`], membership and freshness (staleness).
//! - [`source`]: [`OpLog`] and [`SnapshotSource`], what the protocol reads from a node.
//! - [`plan`]: which ops a peer lacks, bounded by count and bytes.
//! - [`round`]: the anti-entropy round and pushes: request, answer, receive,
//!   adopt, push back, relay.
//! - [`snapshot`]: snapshot pages with a versioned cursor, and pulling them.
//! - [`wire`]: postcard encoding of ops and snapshot entries, validated on decode.

pub mod members;
pub mod plan;
pub mod round;
pub mod snapshot;
pub mod source;
/// Ops and snapshot entries as bytes: kept in `rescind-core` so clients decode them too.
pub use rescind_core::wire;

#[cfg(test)]
mod convergence;
#[cfg(test)]
mod testing;

pub use members::{Cluster, Floor, MemberRecord, NodeInfo, PeerView, UNKNOWN, floor_staleness};
pub use plan::{Limits, Plan, plan_ops};
pub use round::{Exchange, ExchangeAnswer, Push, Received};
pub use snapshot::{PageError, Pull, SnapshotPage};
pub use source::{OpLog, SnapshotSource, SourceEntries, SourceError};
