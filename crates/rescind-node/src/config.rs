//! The node's configuration: one serde tree, every key with a documented
//! default. `deploy/rescind.toml` is the checked-in sample; keep them in step.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::gateway::GatewayConfig;

/// Everything a node reads at start. Missing keys take their defaults.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Node name (1..=64 of `A-Z a-z 0-9 . _ -`). Default: the name recorded in
    /// the data dir, else the host name. Fixed for the life of the data dir.
    pub node_name: Option<String>,
    /// Region label, reported by `Status` and used to spread replication.
    pub region: String,
    /// Where sled, the node identity and the generated admin token live.
    pub data_dir: PathBuf,
    /// gRPC listen address. Anything but loopback needs `admin_token` or
    /// `admin_token_file`: a node refuses to start otherwise.
    pub listen: SocketAddr,
    /// The admin bearer token `Revoke` requires. Unset: read from
    /// `admin_token_file`, else generated once into `<data_dir>/admin.token` (0600).
    pub admin_token: Option<String>,
    /// A file holding the admin token (first line).
    pub admin_token_file: Option<PathBuf>,
    /// Named credentials, `NAME ROLE blake3:HEX` per line (see
    /// [`crate::credentials`]), reloaded when the file changes. The audit
    /// trail names the credential that revoked. With a reader listed, reads
    /// need a token as with `check_token`.
    pub credentials_file: Option<PathBuf>,
    /// When set, `Check`, `CheckBatch`, `Watch`, `Status` and `ListPeers`
    /// (and `/v1/check`, `/v1/status`) need a bearer token: this one, the
    /// admin token or a named credential. Unset: reads are open, unless
    /// `credentials_file` lists a reader.
    pub check_token: Option<String>,
    /// How long after its expiry a deny entry is kept; at least the clock skew
    /// allowed between nodes, so no node drops an entry another still needs.
    #[serde(with = "humantime_serde")]
    pub expiry_grace: Duration,
    /// How often expired entries are pruned.
    #[serde(with = "humantime_serde")]
    pub gc_interval: Duration,
    /// Longest a `Check` with a consistency token waits for the node to catch up
    /// (the request's own deadline, if shorter, wins).
    #[serde(with = "humantime_serde")]
    pub max_consistency_wait: Duration,
    /// Most client connections served at once on each port (gRPC, HTTP);
    /// further ones wait to be accepted.
    pub max_connections: usize,
    /// Most requests in flight per connection.
    pub max_concurrent_requests_per_connection: usize,
    /// Threads serving RPCs, each running its own single-threaded runtime; a
    /// connection stays on the thread that accepted it, so a request never
    /// crosses threads (on small machines that halves the CPU per check).
    /// 0 = one per CPU core.
    pub serve_threads: usize,
    /// Most revokes queued for the writer; callers beyond it wait (back-pressure).
    pub write_queue: usize,
    /// sled's page cache, MiB (sled's own default, 1 GiB, would dominate memory).
    pub store_cache_mb: u64,
    /// Most time between two checkpoints (the file holding the deny set,
    /// cutoffs and version vector that a start reads before replaying the
    /// op log after it; "0s": only at shutdown, after `checkpoint_ops`, and
    /// when adopting a snapshot). Written off the writer's thread: revokes
    /// wait only for an in-memory copy of the state.
    #[serde(with = "humantime_serde")]
    pub checkpoint_interval: Duration,
    /// Take a checkpoint after this many ops even before
    /// `checkpoint_interval` (0: never on count). Bounds the log replayed at
    /// start and what compaction leaves.
    pub checkpoint_ops: u64,
    /// How long the op log keeps ops some live peer has not acknowledged
    /// (below the older kept checkpoint). A peer further behind than this
    /// catches up by snapshot. Acknowledged ops go at the next checkpoint.
    #[serde(with = "humantime_serde")]
    pub op_log_retention: Duration,
    /// How long the audit trail (`ListRevocations`, `rescind audit`) keeps a
    /// revocation's record: time, origin, actor, reason, issuer, target.
    #[serde(with = "humantime_serde")]
    pub audit_retention: Duration,
    /// A node whose data dir cannot be rebuilt alone starts in recovery and
    /// pulls a snapshot from a peer; if no peer gives it one within this
    /// long it stops with an error ("0s": wait forever).
    #[serde(with = "humantime_serde")]
    pub recovery_timeout: Duration,
    /// A file holding a key (at least 32 bytes): the audit trail then keeps
    /// token ids as a keyed hash (`h:` + 32 hex digits) instead of as written.
    pub audit_token_key_file: Option<PathBuf>,
    /// Seed peers (`[[peers]] addr = "host:port"`); more are learned from them.
    pub peers: Vec<PeerSeed>,
    /// Shared secret every peer call must carry (16..=256 visible ASCII).
    /// Unset (and no `cluster_key_file`): this node refuses peer traffic, and
    /// configuring peers is an error.
    pub cluster_key: Option<String>,
    /// A file of cluster keys, one per line (blank lines and `#` comments
    /// skipped): the node sends the first and accepts any, which is how a key
    /// is rotated without a partition. Exclusive with `cluster_key`.
    pub cluster_key_file: Option<PathBuf>,
    /// The cluster id Watch subscribers (edges, replicas) compare, 1..=64 of
    /// `A-Z a-z 0-9 . _ -`. Default: a keyed hash of the (first) cluster key;
    /// set it before rotating the key so subscribers keep following.
    pub cluster_id: Option<String>,
    /// Address peers dial to reach this node. Default: the bound listen address
    /// (required when listening on 0.0.0.0 with peers).
    pub advertise_addr: Option<String>,
    /// `[gossip]`: rounds, push, peer calls and the protocol's message limits.
    pub gossip: GossipConfig,
    /// `/readyz` answers 200 once every live peer has been heard from, or
    /// once this long has passed since the node loaded (a peer that is down
    /// must not keep the node out of service forever).
    #[serde(with = "humantime_serde")]
    pub ready_peer_wait: Duration,
    /// Serve `/metrics` and keep the counters behind it (off: `/metrics`
    /// answers 404 and the check path counts nothing).
    pub metrics: bool,
    /// Most `Watch` subscribers at once (0: Watch off); one more is refused
    /// with `RESOURCE_EXHAUSTED`. At most 1,000,000.
    pub max_watchers: usize,
    /// Events buffered per `Watch` subscriber (each at most 16 KiB); a
    /// subscriber whose buffer stays full for `watch_stall_timeout` is cut off.
    pub watch_buffer: usize,
    /// How long a `Watch` subscriber's full buffer may wait for it to read
    /// before the node cuts it off (it resumes from its last heartbeat's vector).
    #[serde(with = "humantime_serde")]
    pub watch_stall_timeout: Duration,
    /// HTTP API listen address (JSON API, OAuth revocation / introspection,
    /// forward-auth); `"off"`: no HTTP listener. Port 0 picks a free port.
    #[serde(deserialize_with = "listen_or_off")]
    pub http_listen: Option<SocketAddr>,
    /// `[gateway]`: how forward-auth, ext_authz and the OAuth endpoints decide.
    pub gateway: GatewayConfig,
    /// `[jwt]`: the keys and claim rules JWTs are verified with. Absent: no
    /// keys, and every JWT is refused.
    pub jwt: Option<rescind_jwt::JwtConfig>,
    /// `[limits]`: idle connections, request deadlines, failed-auth throttling.
    pub limits: crate::limits::LimitsConfig,
    /// `[tls]`: TLS for clients, mutual TLS for peers (see [`crate::tls`]).
    pub tls: crate::tls::TlsConfig,
    /// Let a node listening beyond loopback talk to peers without mutual TLS
    /// (the cluster key alone). Default false: such a node refuses to start.
    pub insecure_peers: bool,
}

/// `"off"`, or a socket address.
fn listen_or_off<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
    let s = String::deserialize(d)?;
    parse_listen_or_off(&s).map_err(serde::de::Error::custom)
}

/// Parse `http_listen`: `off`, or `host:port`.
pub fn parse_listen_or_off(s: &str) -> Result<Option<SocketAddr>, String> {
    if s == "off" {
        return Ok(None);
    }
    s.parse()
        .map(Some)
        .map_err(|e| format!("expected host:port or \"off\" (got {s:?}): {e}"))
}

/// `[gossip]`: how a node replicates. The message limits' defaults are
/// [`rescind_gossip::Limits::default`]: one source for the node, the
/// simulator and Watch.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GossipConfig {
    /// Mean time between anti-entropy rounds (jittered ±25%).
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// Peers a new revocation is pushed to at once: one per other region
    /// first, then others.
    pub push_fanout: usize,
    /// Deadline of one peer call.
    #[serde(with = "humantime_serde")]
    pub peer_timeout: Duration,
    /// Most ops in one gossip message (more follow next round).
    pub max_ops: usize,
    /// Most encoded op bytes in one gossip message (at least one op is sent).
    pub max_bytes: usize,
    /// A peer lagging by more ops than this is sent a snapshot instead.
    pub snapshot_after_ops: u64,
}

impl GossipConfig {
    /// The protocol's message limits.
    pub fn limits(&self) -> rescind_gossip::Limits {
        rescind_gossip::Limits {
            max_ops: self.max_ops,
            max_bytes: self.max_bytes,
            snapshot_after_ops: self.snapshot_after_ops,
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if self.interval.is_zero() {
            return bad("gossip.interval must be more than 0s".into());
        }
        if self.peer_timeout.is_zero() {
            return bad("gossip.peer_timeout must be more than 0s".into());
        }
        if !(1..=64).contains(&self.push_fanout) {
            return bad(format!(
                "gossip.push_fanout must be 1..=64, got {}",
                self.push_fanout
            ));
        }
        if !(1..=100_000).contains(&self.max_ops) {
            return bad(format!("gossip.max_ops must be 1..=100000, got {}", self.max_ops));
        }
        let most = rescind_core::limits::MAX_MESSAGE_BYTES / 2;
        if !(1024..=most).contains(&self.max_bytes) {
            return bad(format!(
                "gossip.max_bytes must be 1024..={most} (half the largest gRPC message), got {}",
                self.max_bytes
            ));
        }
        if self.snapshot_after_ops == 0 {
            return bad("gossip.snapshot_after_ops must be at least 1".into());
        }
        Ok(())
    }
}

impl Default for GossipConfig {
    fn default() -> Self {
        let limits = rescind_gossip::Limits::default();
        Self {
            interval: Duration::from_millis(200),
            push_fanout: 8,
            peer_timeout: Duration::from_secs(2),
            max_ops: limits.max_ops,
            max_bytes: limits.max_bytes,
            snapshot_after_ops: limits.snapshot_after_ops,
        }
    }
}

/// Shortest and longest cluster key, in visible ASCII characters.
pub const CLUSTER_KEY_LEN: std::ops::RangeInclusive<usize> = 16..=256;

/// A cluster key's length and characters, the error naming `field`.
pub fn check_cluster_key(field: &str, key: &str) -> Result<(), ConfigError> {
    let n = key.len();
    if !CLUSTER_KEY_LEN.contains(&n) {
        return Err(ConfigError::Invalid(format!(
            "{field}: a cluster key must be {}..={} characters, got {n}",
            CLUSTER_KEY_LEN.start(),
            CLUSTER_KEY_LEN.end()
        )));
    }
    if let Some(pos) = key.bytes().position(|b| !b.is_ascii_graphic()) {
        return Err(ConfigError::Invalid(format!(
            "{field}: a cluster key must be visible ASCII (no spaces or control characters); character {} is not",
            pos + 1
        )));
    }
    Ok(())
}

/// One seed peer.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerSeed {
    /// `host:port` of the peer's gRPC listener.
    pub addr: String,
}

/// Upper bound on `watch_buffer` (events of at most 16 KiB each).
pub const MAX_WATCH_BUFFER: usize = 1024;

/// Upper bound on `serve_threads`.
pub const MAX_SERVE_THREADS: usize = 256;

impl Config {
    /// `serve_threads`, with 0 resolved to the number of CPU cores.
    pub fn effective_serve_threads(&self) -> usize {
        match self.serve_threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            node_name: None,
            region: "local".into(),
            data_dir: PathBuf::from("./rescind-data"),
            listen: SocketAddr::from(([127, 0, 0, 1], 7400)),
            admin_token: None,
            admin_token_file: None,
            credentials_file: None,
            check_token: None,
            expiry_grace: Duration::from_secs(300),
            gc_interval: Duration::from_secs(60),
            max_consistency_wait: Duration::from_secs(5),
            max_connections: 1024,
            max_concurrent_requests_per_connection: 256,
            serve_threads: 0,
            write_queue: 8192,
            store_cache_mb: 64,
            checkpoint_interval: Duration::from_secs(300),
            checkpoint_ops: 1_000_000,
            op_log_retention: Duration::from_secs(24 * 3600),
            audit_retention: Duration::from_secs(90 * 24 * 3600),
            recovery_timeout: Duration::from_secs(300),
            audit_token_key_file: None,
            peers: Vec::new(),
            cluster_key: None,
            cluster_key_file: None,
            cluster_id: None,
            advertise_addr: None,
            gossip: GossipConfig::default(),
            ready_peer_wait: Duration::from_secs(60),
            metrics: true,
            max_watchers: 1024,
            watch_buffer: 8,
            watch_stall_timeout: Duration::from_secs(2),
            http_listen: Some(SocketAddr::from(([127, 0, 0, 1], 7480))),
            gateway: GatewayConfig::default(),
            jwt: None,
            limits: crate::limits::LimitsConfig::default(),
            tls: crate::tls::TlsConfig::default(),
            insecure_peers: false,
        }
    }
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The TOML file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML did not parse or has unknown keys.
    #[error("invalid config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A value is out of range.
    #[error("invalid config: {0}")]
    Invalid(String),
}

impl Config {
    /// The cluster keys, the one to send first (empty: no peer traffic):
    /// `cluster_key`, or the lines of `cluster_key_file`, each checked.
    pub fn cluster_keys(&self) -> Result<Vec<String>, ConfigError> {
        if let Some(key) = &self.cluster_key {
            check_cluster_key("cluster_key", key)?;
            return Ok(vec![key.clone()]);
        }
        let Some(path) = &self.cluster_key_file else {
            return Ok(Vec::new());
        };
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError::Invalid(format!("cluster_key_file: cannot read {}: {e}", path.display()))
        })?;
        let mut keys = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            check_cluster_key(
                &format!("cluster_key_file {} line {}", path.display(), i + 1),
                line,
            )?;
            keys.push(line.to_owned());
        }
        if keys.is_empty() {
            return Err(ConfigError::Invalid(format!(
                "cluster_key_file: {} holds no key",
                path.display()
            )));
        }
        if keys.len() > 8 {
            return Err(ConfigError::Invalid(format!(
                "cluster_key_file: {} holds {} keys; at most 8 (rotate one at a time)",
                path.display(),
                keys.len()
            )));
        }
        Ok(keys)
    }

    /// Read a TOML config file.
    pub fn from_file(path: &std::path::Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })
    }

    /// Check ranges and names.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(name) = &self.node_name {
            check_label("node_name", name)?;
        }
        check_label("region", &self.region)?;
        if self.max_connections == 0 || self.max_concurrent_requests_per_connection == 0 {
            return Err(ConfigError::Invalid(
                "max_connections and max_concurrent_requests_per_connection must be at least 1".into(),
            ));
        }
        if self.serve_threads > MAX_SERVE_THREADS {
            return Err(ConfigError::Invalid(format!(
                "serve_threads must be at most {MAX_SERVE_THREADS} (0 = one per CPU core), got {}",
                self.serve_threads
            )));
        }
        if self.write_queue == 0 {
            return Err(ConfigError::Invalid("write_queue must be at least 1".into()));
        }
        if self.max_watchers > 1_000_000 {
            return Err(ConfigError::Invalid(format!(
                "max_watchers must be at most 1000000 (0 turns Watch off), got {}",
                self.max_watchers
            )));
        }
        if self.watch_buffer == 0 || self.watch_buffer > MAX_WATCH_BUFFER {
            return Err(ConfigError::Invalid(format!(
                "watch_buffer must be 1..={MAX_WATCH_BUFFER} events, got {}",
                self.watch_buffer
            )));
        }
        if self.watch_stall_timeout.is_zero() {
            return Err(ConfigError::Invalid(
                "watch_stall_timeout must be more than 0s".into(),
            ));
        }
        if self.gc_interval.is_zero() {
            return Err(ConfigError::Invalid("gc_interval must be more than 0s".into()));
        }
        self.gossip.validate()?;
        if let Some(id) = &self.cluster_id {
            check_label("cluster_id", id)?;
        }
        if self.cluster_key.is_some() && self.cluster_key_file.is_some() {
            return Err(ConfigError::Invalid(
                "cluster_key and cluster_key_file are both set: keep one".into(),
            ));
        }
        if let Some(key) = &self.cluster_key {
            check_cluster_key("cluster_key", key)?;
        }
        if !self.peers.is_empty() && self.cluster_key.is_none() && self.cluster_key_file.is_none() {
            return Err(ConfigError::Invalid(format!(
                "{} peer(s) configured but no cluster key: set cluster_key_file or RESCIND_CLUSTER_KEY \
                 (the same key on every node), or remove the peers to run a lone node",
                self.peers.len()
            )));
        }
        self.limits
            .validate()
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        let cluster = self.cluster_key.is_some() || self.cluster_key_file.is_some();
        crate::tls::check_exposure(&self.tls, self.listen, cluster, self.insecure_peers)
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        self.gateway
            .validate()
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        if let Some(jwt) = &self.jwt {
            jwt.validate()
                .map_err(|e| ConfigError::Invalid(format!("jwt.{e}")))?;
        }
        for (key, token) in [
            ("admin_token", &self.admin_token),
            ("check_token", &self.check_token),
        ] {
            if let Some(t) = token {
                crate::auth::check_token_format(key, t).map_err(ConfigError::Invalid)?;
            }
        }
        Ok(())
    }
}

/// A node name or region: 1..=64 of `A-Z a-z 0-9 . _ -`.
pub fn check_label(key: &str, value: &str) -> Result<(), ConfigError> {
    rescind_core::limits::label(key, value).map_err(|e| ConfigError::Invalid(format!("{e} (got {value:?})")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_config_parses_and_equals_the_defaults() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/rescind.toml");
        let sample = Config::from_file(&path).expect("deploy/rescind.toml parses");
        assert_eq!(
            sample,
            Config::default(),
            "deploy/rescind.toml must show the defaults"
        );
    }

    #[test]
    fn the_local_cluster_configs_are_valid_and_form_one_cluster() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/local");
        let mut regions = std::collections::BTreeMap::<String, usize>::new();
        let mut listens = std::collections::BTreeSet::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                let c = Config::from_file(&path).unwrap();
                c.validate().unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                assert!(c.listen.ip().is_loopback());
                assert_eq!(c.peers.len(), 1);
                *regions.entry(c.region.clone()).or_default() += 1;
                listens.insert(c.listen);
            }
        }
        assert_eq!(regions.len(), 3, "{regions:?}");
        assert!(regions.values().all(|n| *n == 2));
        assert_eq!(listens.len(), 6);
    }

    #[test]
    fn unknown_keys_and_bad_names_are_refused() {
        let err = toml::from_str::<Config>("lisen = \"1.2.3.4:1\"").unwrap_err();
        assert!(err.to_string().contains("lisen"), "{err}");
        let c = Config {
            node_name: Some("bad name".into()),
            ..Config::default()
        };
        assert!(c.validate().unwrap_err().to_string().contains("node_name"));
        assert!(Config::default().validate().is_ok());
    }

    #[test]
    fn short_or_odd_cluster_keys_and_keyless_peers_are_refused() {
        let with_key = |k: &str| Config {
            cluster_key: Some(k.into()),
            ..Config::default()
        };
        let err = with_key("too-short").validate().unwrap_err().to_string();
        assert!(
            err.contains("cluster_key") && err.contains("16..=256") && err.contains("got 9"),
            "{err}"
        );
        let err = with_key("sixteen chars ok but spaced")
            .validate()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("visible ASCII") && err.contains("character 8"),
            "{err}"
        );
        assert!(with_key(&"k".repeat(257)).validate().is_err());
        assert!(with_key(&"k".repeat(16)).validate().is_ok());
        let keyless = Config {
            peers: vec![PeerSeed {
                addr: "10.0.0.1:7400".into(),
            }],
            ..Config::default()
        };
        let err = keyless.validate().unwrap_err().to_string();
        assert!(err.contains("no cluster key") && err.contains("1 peer"), "{err}");
    }

    #[test]
    fn a_key_file_sends_its_first_key_and_checks_every_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys");
        std::fs::write(
            &path,
            "# new key first\nnew-key-0123456789abcdef\n\nold-key-0123456789abcdef\n",
        )
        .unwrap();
        let c = Config {
            cluster_key_file: Some(path.clone()),
            ..Config::default()
        };
        assert_eq!(
            c.cluster_keys().unwrap(),
            vec![
                "new-key-0123456789abcdef".to_string(),
                "old-key-0123456789abcdef".into()
            ]
        );
        std::fs::write(&path, "good-key-0123456789abcdef\nshort\n").unwrap();
        let err = c.cluster_keys().unwrap_err().to_string();
        assert!(err.contains("line 2") && err.contains("got 5"), "{err}");
        std::fs::write(&path, "\n# nothing\n").unwrap();
        assert!(c.cluster_keys().unwrap_err().to_string().contains("no key"));
        let both = Config {
            cluster_key: Some("k".repeat(20)),
            ..c
        };
        assert!(both.validate().unwrap_err().to_string().contains("both set"));
    }

    #[test]
    fn gossip_limits_default_to_the_protocol_defaults() {
        assert_eq!(
            GossipConfig::default().limits(),
            rescind_gossip::Limits::default()
        );
        let c: Config = toml::from_str("[gossip]\nmax_ops = 0\n").unwrap();
        assert!(c.validate().unwrap_err().to_string().contains("gossip.max_ops"));
    }
}
