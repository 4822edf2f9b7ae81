//! # rescind-client
//!
//! The Rust client of Rescind, for services and edge deployments.
//!
//! - [`Client`] talks to a set of nodes: it measures each one's round trip,
//!   prefers the caller's own region and then the nearest node, fails over on
//!   error or when a node reports itself staler than a bound, and retries
//!   idempotent calls within the caller's deadline. Every answer names the
//!   node that gave it and how stale it may be (`None` = unknown).
//! - [`FailPolicy`] turns a stale or unreachable answer into a decision
//!   ([`Verdict`]) and says why.
//! - [`Replica`] holds the whole state in process, fed by a node's `Watch`
//!   stream, and answers checks from memory in nanoseconds. When the node it
//!   follows dies it resumes from its version vector on another endpoint; it
//!   can start from a local checkpoint file.
//!
//! ```no_run
//! # async fn demo() -> Result<(), rescind_client::ClientError> {
//! use rescind_client::{Client, ClientConfig, FailPolicy, Query};
//! let client = Client::connect(ClientConfig::new(["10.0.0.1:7400", "rescind.eu.internal:7400"])).await?;
//! let verdict = client
//!     .decide(&Query::token("jti-123"), FailPolicy::Closed { max_staleness: std::time::Duration::from_secs(30) })
//!     .await;
//! println!("allow={} because {}", verdict.allow, verdict.why);
//! # Ok(()) }
//! ```
//!
//! ## Layout
//! - [`error`]: [`ClientError`], what a call fails with.
//! - [`query`]: [`Query`], an owned check request.
//! - [`answer`]: typed answers ([`Checked`], [`Revoked`], [`NodeStatus`]).
//! - [`endpoints`]: the endpoint set, health and nearest-first order.
//! - [`client`]: [`Client`] and [`ClientConfig`].
//! - [`policy`]: [`FailPolicy`], [`Verdict`], [`Why`].
//! - [`consistency`]: [`ConsistencyToken`] as hex for logs and URLs.
//! - [`replica`]: [`Replica`], following `Watch`, and its checkpoint file.

pub mod answer;
pub mod client;
pub mod consistency;
pub mod endpoints;
pub mod error;
pub mod policy;
pub mod query;
pub mod replica;

pub use answer::{Checked, NodeStatus, Reason, Revoked, staleness_from_wire};
pub use client::{Client, ClientConfig};
pub use consistency::ConsistencyToken;
pub use endpoints::{ClientTls, Connector, tls_connector};
pub use error::ClientError;
pub use policy::{FailPolicy, Verdict, Why};
pub use query::Query;
pub use replica::{Replica, ReplicaConfig, ReplicaStatus};
