//! # rescind-sim
//!
//! Deterministic network simulations of Rescind: the real node code
//! (`rescind_node::Node`, its gRPC services, gossip and writer) runs on
//! turmoil's simulated network and clock, under the partitions, latency, loss,
//! crashes, wiped disks and clock skew a scenario file describes. Same seed,
//! same report, byte for byte.
//!
//! ## Layout
//! - [`scenario`]: the scenario file schema ([`Scenario`]).
//! - [`validate`]: what makes a scenario runnable, each problem naming its field.
//! - [`check`](mod@check): `rescind-sim check`, the problems at their line and column.
//! - [`net`]: turmoil listener and connector for the node's gRPC.
//! - [`run`](mod@run): one seeded run ([`run::run`], [`run::run_with`]).
//! - [`settings`]: `--set KEY=VALUES`, node config keys laid over the simulator's.
//! - [`sweep`]: many seeds under a grid of configurations, and their tables.
//! - [`events`]: applying the timeline's faults.
//! - [`workload`]: edge clients revoking and checking.
//! - [`edges`]: edge replicas (`rescind_client::Replica`) and what they measure.
//! - [`observe`]: sampling every node's state for the report.
//! - [`holdings`]: what each node or replica lacks, and when all held each revocation.
//! - [`report`]: the [`Report`] and its statistics.
//! - [`html`]: `run --html`, one self-contained page to hand on.
//! - [`svg`]: the pictures (a run's timeline, a sweep's trade-off).
//! - [`progress`]: a sweep's progress on stderr, a bar or plain lines.
//! - [`verdict`](mod@verdict): what makes a run healthy.

pub mod check;
pub mod edges;
pub mod events;
pub mod holdings;
pub mod html;
pub mod net;
pub mod observe;
pub mod progress;
pub mod report;
pub mod run;
pub mod scenario;
pub mod settings;
pub mod svg;
pub mod sweep;
pub mod validate;
pub mod verdict;
pub mod workload;

pub use report::Report;
pub use run::run;
pub use scenario::Scenario;
pub use verdict::verdict;
