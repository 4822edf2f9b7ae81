//! # rescind-gossip
//!
//! The replication protocol of Rescind as plain synchronous functions over
//! values (chitchat's lesson): no sockets, no timers, no tasks. Time comes in as
//! monotonic milliseconds and randomness as an `Rng`, so the protocol is unit
//! tested here and driven unchanged by the node's gRPC transport and by the
//! simulator.
//!
//! A round between node A (caller) and node B:
//! 1. A sends its version vector and the members it knows;
//! 2. B answers with the ops A lacks (bounded, [`plan::plan_ops`]) — or says a
//!    snapshot is needed when its op log cannot serve them — plus its version
//!    vector, its members and its freshness ages;
//! 3. A applies the ops, adopts B's freshness for every node whose ops it now
//!    holds as far as B did ([`members::Cluster::adopt_freshness`]), and pushes
//!    to B the ops B lacks.
//!
//! ## Layout
//! - [`members`]: [`Cluster`], membership and freshness (staleness).
//! - [`plan`]: which ops a peer lacks, bounded by count and bytes.
//! - [`wire`]: postcard encoding of ops and snapshot entries, validated on decode.

pub mod members;
pub mod plan;
/// Ops and snapshot entries as bytes: kept in `rescind-core` so clients decode them too.
pub use rescind_core::wire;

pub use members::{Cluster, Floor, MemberRecord, NodeInfo, PeerView, UNKNOWN, floor_staleness};
pub use plan::{Limits, Plan, plan_ops};
