//! # rescind-node
//!
//! The Rescind server: a node that answers checks from memory, acknowledges a
//! revocation only once it is durable, and serves the `rescind.v1` gRPC API.
//!
//! ```no_run
//! # async fn demo() -> Result<(), rescind_node::NodeError> {
//! let config = rescind_node::Config::default();
//! rescind_node::run(config, async { let _ = tokio::signal::ctrl_c().await; }).await
//! # }
//! ```
//!
//! ## Layout
//! - [`config`]: [`Config`], the one serde tree of settings with its defaults.
//! - [`auth`]: admin / check bearer tokens, the generated `admin.token`, log redaction.
//! - [`credentials`]: named admin and reader tokens from a file, hashed, reloaded.
//! - [`file_stamp`]: whether a reloaded file changed.
//! - [`log_limit`]: log lines outsiders can cause, once a minute per key.
//! - [`engine`]: [`Engine`], the in-memory state and its read paths.
//! - [`writer`]: the single writer thread and its group commit.
//! - [`checkpointer`]: checkpoints between batches, off the writer's thread.
//! - [`compaction`]: which ops the log may drop after a checkpoint.
//! - [`recovery`]: the start-up policy: checkpoint + log tail, or recovery from a peer.
//! - [`audit`]: the audit trail: records, their copy before compaction, the listing.
//! - [`audit_rpc`]: `ListRevocations` requests and responses.
//! - [`node_meta`]: peers' acknowledged vectors and retired members, kept in the store.
//! - [`gossip`]: replication: the `Peers` service, anti-entropy, eager push, snapshots.
//! - [`convert`]: request validation and wire conversions.
//! - [`service`]: the `Revocations` gRPC service.
//! - [`gateway`]: the enforcement decision every gateway protocol shares.
//! - [`ext_authz`]: Envoy's `ext_authz` v3 on the gRPC port.
//! - [`http`]: the HTTP API (JSON, RFC 7009 / 7662, forward-auth) on its own port.
//! - [`watch`]: the `Watch` stream edges and replicas follow.
//! - [`recent`]: the newest durable ops in memory, for Watch streams.
//! - [`net`]: the bounded accept loop, idle connections, the serving threads it feeds.
//! - [`tls`]: TLS for clients and mutual TLS between peers, reloaded from files.
//! - [`limits`]: `[limits]` (idle, deadlines, header size) and the failed-auth throttle.
//! - [`metrics`]: the node's Prometheus metrics (one registry per node).
//! - [`health`]: gRPC health and reflection, `/healthz`, `/readyz`, the loading server.
//! - [`server`]: [`Node`] (open, bind, serve) and [`run`].
//! - [`clock`]: the injected wall clock.

pub mod audit;
pub mod audit_rpc;
pub mod auth;
pub mod checkpointer;
pub mod clock;
pub mod compaction;
pub mod config;
pub mod convert;
pub mod credentials;
pub mod engine;
pub mod ext_authz;
pub mod file_stamp;
pub mod gateway;
pub mod gossip;
pub mod health;
pub mod http;
pub mod limits;
pub mod log_limit;
pub mod metrics;
pub mod net;
pub mod node_meta;
pub mod recent;
pub mod recovery;
pub mod server;
pub mod service;
pub mod tls;
pub mod watch;
pub mod writer;

pub use config::Config;
pub use engine::{Engine, EngineError, RevokeCommand, RevokeOutcome, RevokeTarget};
pub use server::{Node, NodeError, Parts, run};
