//! `rescind serve` flags of replication (`[gossip]`, cluster keys) and of
//! operations (readiness, metrics, logs); each overrides the TOML config and
//! has an env twin.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use rescind_node::Config;

use crate::timearg::parse_duration;

/// Replication and operations flags.
#[derive(Args, Debug)]
pub struct OpsArgs {
    /// File of cluster keys, one per line: the first is sent, any is accepted
    /// (rotate by adding the new key second, then moving it first). Each key
    /// is 16..=256 visible ASCII. Exclusive with --cluster-key.
    #[arg(long, env = "RESCIND_CLUSTER_KEY_FILE")]
    cluster_key_file: Option<PathBuf>,
    /// Cluster id Watch subscribers compare (1..=64 of A-Z a-z 0-9 . _ -).
    /// [default: a keyed hash of the first cluster key]
    #[arg(long, env = "RESCIND_CLUSTER_ID")]
    cluster_id: Option<String>,
    /// Mean time between anti-entropy rounds, jittered ±25% (DUR). [default: 200ms]
    #[arg(long, env = "RESCIND_GOSSIP_INTERVAL", value_parser = parse_duration)]
    gossip_interval: Option<Duration>,
    /// Peers a new revocation is pushed to at once (1..=64). [default: 8]
    #[arg(long, env = "RESCIND_PUSH_FANOUT")]
    push_fanout: Option<usize>,
    /// Deadline of one peer call (DUR). [default: 2s]
    #[arg(long, env = "RESCIND_PEER_TIMEOUT", value_parser = parse_duration)]
    peer_timeout: Option<Duration>,
    /// Most ops in one gossip message (1..=100000). [default: 2048]
    #[arg(long, env = "RESCIND_GOSSIP_MAX_OPS")]
    gossip_max_ops: Option<usize>,
    /// Most encoded op bytes in one gossip message (1024..=2097152). [default: 1048576]
    #[arg(long, env = "RESCIND_GOSSIP_MAX_BYTES")]
    gossip_max_bytes: Option<usize>,
    /// A peer lagging by more ops than this gets a snapshot instead. [default: 100000]
    #[arg(long, env = "RESCIND_SNAPSHOT_AFTER_OPS")]
    snapshot_after_ops: Option<u64>,
    /// /readyz is 200 once every live peer was heard from, or this long after
    /// loading (DUR). [default: 60s]
    #[arg(long, env = "RESCIND_READY_PEER_WAIT", value_parser = parse_duration)]
    ready_peer_wait: Option<Duration>,
    /// Serve /metrics and keep its counters (true / false). [default: true]
    #[arg(long, env = "RESCIND_METRICS")]
    metrics: Option<bool>,
    /// Most client connections served at once, on each of the gRPC and HTTP
    /// ports; further ones wait to be accepted. [default: 1024]
    #[arg(long, env = "RESCIND_MAX_CONNECTIONS")]
    max_connections: Option<usize>,
    /// Most requests in flight per connection. [default: 256]
    #[arg(long, env = "RESCIND_MAX_CONCURRENT_REQUESTS_PER_CONNECTION")]
    max_concurrent_requests_per_connection: Option<usize>,
    /// Most revokes queued for the writer; callers beyond wait. [default: 8192]
    #[arg(long, env = "RESCIND_WRITE_QUEUE")]
    write_queue: Option<usize>,
    /// Longest a Check with a consistency token waits to catch up (DUR). [default: 5s]
    #[arg(long, env = "RESCIND_MAX_CONSISTENCY_WAIT", value_parser = parse_duration)]
    max_consistency_wait: Option<Duration>,
    /// Close a connection silent (nothing read or written) this long; 0s:
    /// never, else at least --request-timeout (DUR). [default: 5m]
    #[arg(long, env = "RESCIND_IDLE_TIMEOUT", value_parser = parse_duration)]
    idle_timeout: Option<Duration>,
    /// Close a connection that sends nothing this long after it is accepted (DUR). [default: 10s]
    #[arg(long, env = "RESCIND_FIRST_BYTE_TIMEOUT", value_parser = parse_duration)]
    first_byte_timeout: Option<Duration>,
    /// Longest a unary request may take (DUR); a shorter grpc-timeout wins.
    /// On HTTP, also the longest an HTTP/1.1 request head (or a keep-alive
    /// wait for the next one) may take. [default: 30s]
    #[arg(long, env = "RESCIND_REQUEST_TIMEOUT", value_parser = parse_duration)]
    request_timeout: Option<Duration>,
    /// Largest header block of one request, gRPC or HTTP, bytes (1024..=1048576). [default: 16384]
    #[arg(long, env = "RESCIND_MAX_HEADER_BYTES")]
    max_header_bytes: Option<u32>,
    /// Failed authentications one source address may make at once before it
    /// is throttled (1..=100000). [default: 20]
    #[arg(long, env = "RESCIND_AUTH_FAILURE_BURST")]
    auth_failure_burst: Option<u32>,
    /// Failed authentications per second a source address earns back (1..=100000). [default: 1]
    #[arg(long, env = "RESCIND_AUTH_FAILURES_PER_SECOND")]
    auth_failures_per_second: Option<u32>,
    /// Log line format on stderr.
    #[arg(long, env = "RESCIND_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: crate::traces::LogFormat,
}

impl OpsArgs {
    /// Apply the flags given over `config`.
    pub fn apply(&self, config: &mut Config) {
        if let Some(v) = &self.cluster_key_file {
            config.cluster_key_file = Some(v.clone());
        }
        if let Some(v) = &self.cluster_id {
            config.cluster_id = Some(v.clone());
        }
        let g = &mut config.gossip;
        if let Some(v) = self.gossip_interval {
            g.interval = v;
        }
        if let Some(v) = self.push_fanout {
            g.push_fanout = v;
        }
        if let Some(v) = self.peer_timeout {
            g.peer_timeout = v;
        }
        if let Some(v) = self.gossip_max_ops {
            g.max_ops = v;
        }
        if let Some(v) = self.gossip_max_bytes {
            g.max_bytes = v;
        }
        if let Some(v) = self.snapshot_after_ops {
            g.snapshot_after_ops = v;
        }
        if let Some(v) = self.ready_peer_wait {
            config.ready_peer_wait = v;
        }
        if let Some(v) = self.metrics {
            config.metrics = v;
        }
        if let Some(v) = self.max_connections {
            config.max_connections = v;
        }
        if let Some(v) = self.max_concurrent_requests_per_connection {
            config.max_concurrent_requests_per_connection = v;
        }
        if let Some(v) = self.write_queue {
            config.write_queue = v;
        }
        if let Some(v) = self.max_consistency_wait {
            config.max_consistency_wait = v;
        }
        let l = &mut config.limits;
        if let Some(v) = self.idle_timeout {
            l.idle_timeout = v;
        }
        if let Some(v) = self.first_byte_timeout {
            l.first_byte_timeout = v;
        }
        if let Some(v) = self.request_timeout {
            l.request_timeout = v;
        }
        if let Some(v) = self.max_header_bytes {
            l.max_header_bytes = v;
        }
        if let Some(v) = self.auth_failure_burst {
            l.auth_failure_burst = v;
        }
        if let Some(v) = self.auth_failures_per_second {
            l.auth_failures_per_second = v;
        }
    }
}
