//! `rescind serve` flags of storage: checkpoints, compaction, expiry, the
//! audit trail and sled's cache; each overrides the TOML config and has an env twin.

use std::time::Duration;

use clap::Args;
use rescind_node::Config;

use crate::timearg::parse_duration;

/// Storage flags.
#[derive(Args, Debug)]
pub struct StorageArgs {
    /// Most time between two checkpoints (DUR; 0s: only at shutdown, after
    /// --checkpoint-ops ops, and when adopting a snapshot). [default: 5m]
    #[arg(long, env = "RESCIND_CHECKPOINT_INTERVAL", value_parser = parse_duration)]
    checkpoint_interval: Option<Duration>,
    /// Checkpoint after this many ops even sooner (0: never on count). [default: 1000000]
    #[arg(long, env = "RESCIND_CHECKPOINT_OPS")]
    checkpoint_ops: Option<u64>,
    /// How long the op log keeps ops a live peer has not acknowledged; a peer
    /// further behind catches up by snapshot (DUR). [default: 24h]
    #[arg(long, env = "RESCIND_OP_LOG_RETENTION", value_parser = parse_duration)]
    op_log_retention: Option<Duration>,
    /// Keep an expired entry this long past its expiry before dropping it;
    /// at least the clock skew between nodes (DUR). [default: 5m]
    #[arg(long, env = "RESCIND_EXPIRY_GRACE", value_parser = parse_duration)]
    expiry_grace: Option<Duration>,
    /// How often expired entries are dropped from memory (they leave disk at
    /// the next checkpoint) (DUR). [default: 60s]
    #[arg(long, env = "RESCIND_GC_INTERVAL", value_parser = parse_duration)]
    gc_interval: Option<Duration>,
    /// How long the audit trail keeps each revocation's record (DUR). [default: 90days]
    #[arg(long, env = "RESCIND_AUDIT_RETENTION", value_parser = parse_duration)]
    audit_retention: Option<Duration>,
    /// File holding a key (at least 32 bytes): the audit trail keeps token
    /// ids as a keyed hash instead of as written.
    #[arg(long, env = "RESCIND_AUDIT_TOKEN_KEY_FILE")]
    audit_token_key_file: Option<std::path::PathBuf>,
    /// Stop if no peer gives a node in recovery its state within this long
    /// (DUR; 0s: wait forever). [default: 5m]
    #[arg(long, env = "RESCIND_RECOVERY_TIMEOUT", value_parser = parse_duration)]
    recovery_timeout: Option<Duration>,
    /// sled's page cache, MiB. [default: 64]
    #[arg(long, env = "RESCIND_STORE_CACHE_MB")]
    store_cache_mb: Option<u64>,
}

impl StorageArgs {
    /// Apply the flags given over `config`.
    pub fn apply(&self, config: &mut Config) {
        if let Some(v) = self.checkpoint_interval {
            config.checkpoint_interval = v;
        }
        if let Some(v) = self.checkpoint_ops {
            config.checkpoint_ops = v;
        }
        if let Some(v) = self.op_log_retention {
            config.op_log_retention = v;
        }
        if let Some(v) = self.expiry_grace {
            config.expiry_grace = v;
        }
        if let Some(v) = self.gc_interval {
            config.gc_interval = v;
        }
        if let Some(v) = self.audit_retention {
            config.audit_retention = v;
        }
        if let Some(v) = &self.audit_token_key_file {
            config.audit_token_key_file = Some(v.clone());
        }
        if let Some(v) = self.recovery_timeout {
            config.recovery_timeout = v;
        }
        if let Some(v) = self.store_cache_mb {
            config.store_cache_mb = v;
        }
    }
}
