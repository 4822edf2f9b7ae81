//! A node's Prometheus metrics: one [`Metrics`] (and one registry) per node,
//! never a process-global one, so the simulator's nodes keep their own.
//!
//! Counters and histograms are recorded where things happen (the writer,
//! gossip, the check paths); gauges are read from a [`NodeView`] when
//! `/metrics` is scraped. Names follow Prometheus conventions: the
//! `rescind_` prefix, units in the name, `_total` on counters (added by the
//! OpenMetrics encoder). The full list is in `docs/operations.md`.
//!
//! ## Layout
//! - [`checks`]: `rescind_checks_total`, one atomic add per check.
//! - [`propagation`]: `rescind_propagation_seconds` per peer region.
//! - [`histogram`]: a lock-free histogram with `observe_n`.
//! - [`process`]: `process_*` from `/proc/self`.
//! - [`gossip`]: peer traffic by kind, direction and peer region.

pub mod checks;
pub mod gossip;
pub mod histogram;
pub mod process;
pub mod propagation;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

pub use checks::{Api, CheckCounters, CheckOutcome};
pub use gossip::{GossipMetrics, MessageKind};
pub use histogram::Histogram;
pub use propagation::Propagation;

/// The content type of [`Metrics::render`].
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

type Labels = Vec<(&'static str, String)>;

/// Gauges read at scrape time.
#[derive(Debug, Default)]
struct Gauges {
    info: Family<Labels, Gauge>,
    recovering: Gauge,
    ready: Gauge,
    staleness_seconds: Family<Labels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    staleness_unknown: Gauge,
    peer_staleness_seconds: Family<Labels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    peer_staleness_unknown: Family<Labels, Gauge>,
    peers: Family<Labels, Gauge>,
    deny_entries: Gauge,
    cutoffs: Gauge,
    deny_memory_bytes: Gauge,
    expired_pruned: histogram::SetCounter,
    oplog_ops: Gauge,
    checkpoint_bytes: Gauge,
    checkpoint_generation: Gauge,
    checkpoint_age_seconds: Family<Labels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    checkpoint_failures: histogram::SetCounter,
    disk_bytes: Family<Labels, Gauge>,
    disk_free_bytes: Family<Labels, Gauge>,
    disk_size_bytes: Family<Labels, Gauge>,
    writer_queue_depth: Gauge,
    writer_queue_capacity: Gauge,
    watch_subscribers: Gauge,
    watch_cut_off: histogram::SetCounter,
    process: ProcessGauges,
}

#[derive(Debug, Default)]
struct ProcessGauges {
    cpu_seconds: histogram::SetCounter,
    resident: Gauge,
    virtual_bytes: Gauge,
    open_fds: Gauge,
    max_fds: Gauge,
    start_time: Gauge<f64, std::sync::atomic::AtomicU64>,
    threads: Gauge,
}

/// One peer, as a scrape sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerGauge {
    /// Node name.
    pub name: String,
    /// Its region.
    pub region: String,
    /// Retired.
    pub retired: bool,
    /// How long this node may be missing its revocations (None: unknown).
    pub staleness_ms: Option<u64>,
}

/// What a scrape reads from the node (filled by the HTTP layer).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeView {
    /// `name#incarnation`.
    pub node: String,
    /// Region label.
    pub region: String,
    /// Rebuilding its state from a peer.
    pub recovering: bool,
    /// What `/readyz` answers.
    pub ready: bool,
    /// The node's staleness (None: unknown).
    pub staleness_ms: Option<u64>,
    /// Every known peer.
    pub peers: Vec<PeerGauge>,
    /// Revoked ids held.
    pub deny_entries: u64,
    /// Principals with a cutoff.
    pub cutoffs: u64,
    /// Bytes of the in-memory deny set.
    pub deny_memory_bytes: u64,
    /// Entries dropped by expiry since start.
    pub expired_pruned: u64,
    /// Ops held in the op log.
    pub oplog_ops: u64,
    /// The newest checkpoint: generation, bytes, written at (unix ms), failures since start.
    pub checkpoint: (u64, u64, u64, u64),
    /// Now, unix ms.
    pub now_ms: u64,
    /// Bytes on disk of checkpoint files and of the database.
    pub disk: (u64, u64),
    /// Free and total bytes of the data dir's file system (None: unknown).
    pub filesystem: Option<(u64, u64)>,
    /// Writer queue: depth, capacity.
    pub writer_queue: (u64, u64),
    /// Watch: subscribers, cut off since start.
    pub watch: (u64, u64),
}

/// A node's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// `metrics = false`: nothing is served, checks count nothing.
    enabled: bool,
    /// Checks by API, result and reason.
    pub checks: CheckCounters,
    /// Propagation latency per peer region.
    pub propagation: Propagation,
    /// Peer traffic.
    pub gossip: GossipMetrics,
    /// Ops per durable batch.
    pub writer_batch_ops: Histogram,
    /// Durable flush latency.
    pub writer_flush_seconds: Histogram,
    /// Durable writes that failed (nothing of them was acknowledged).
    pub writer_errors: Counter,
    /// Ops applied, by source (local, remote).
    ops_applied: Family<Labels, Counter>,
    /// Checkpoint write time.
    pub checkpoint_seconds: Histogram,
    gauges: Gauges,
    /// One scrape at a time (gauges are set, then encoded).
    scrape: parking_lot::Mutex<()>,
}

impl Metrics {
    /// A node's metrics; `enabled` false keeps every figure at zero on the
    /// check path and serves no `/metrics`.
    pub fn new(enabled: bool) -> Self {
        let mut r = Registry::default();
        let checks = CheckCounters::register(&mut r, enabled);
        let propagation = Propagation::register(&mut r);
        let gossip = GossipMetrics::register(&mut r);
        let writer_batch_ops = Histogram::new(histogram::BATCH_OPS);
        r.register(
            "rescind_writer_batch_ops",
            "Ops per durable write batch",
            writer_batch_ops.clone(),
        );
        let writer_flush_seconds = Histogram::new(histogram::FLUSH_SECONDS);
        r.register(
            "rescind_writer_flush_seconds",
            "Time to make one write batch durable",
            writer_flush_seconds.clone(),
        );
        let writer_errors = Counter::default();
        r.register(
            "rescind_writer_errors",
            "Write batches that failed to become durable (none of their ops was acknowledged)",
            writer_errors.clone(),
        );
        let ops_applied = Family::<Labels, Counter>::default();
        r.register(
            "rescind_ops_applied",
            "Ops applied, by source: local revokes, or remote from peers",
            ops_applied.clone(),
        );
        let checkpoint_seconds = Histogram::new(histogram::CHECKPOINT_SECONDS);
        r.register(
            "rescind_checkpoint_duration_seconds",
            "Time to write one checkpoint",
            checkpoint_seconds.clone(),
        );
        let gauges = Gauges::default();
        register_gauges(&mut r, &gauges);
        Self {
            registry: r,
            enabled,
            checks,
            propagation,
            gossip,
            writer_batch_ops,
            writer_flush_seconds,
            writer_errors,
            ops_applied,
            checkpoint_seconds,
            gauges,
            scrape: parking_lot::Mutex::new(()),
        }
    }

    /// Whether `/metrics` is served.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Count `n` ops applied from `remote` peers or locally.
    pub fn ops_applied(&self, remote: bool, n: u64) {
        let source = if remote { "remote" } else { "local" };
        self.ops_applied
            .get_or_create(&vec![("source", source.to_owned())])
            .inc_by(n);
    }

    /// The exposition text (OpenMetrics) with gauges as of `view`.
    pub fn render(&self, view: &NodeView) -> String {
        let _one = self.scrape.lock();
        self.set_gauges(view);
        let mut out = String::with_capacity(32 * 1024);
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    fn set_gauges(&self, v: &NodeView) {
        let g = &self.gauges;
        g.info.clear();
        g.info
            .get_or_create(&vec![
                ("node", v.node.clone()),
                ("region", v.region.clone()),
                ("version", env!("CARGO_PKG_VERSION").to_owned()),
            ])
            .set(1);
        g.recovering.set(v.recovering as i64);
        g.ready.set(v.ready as i64);
        g.staleness_seconds.clear();
        if let Some(ms) = v.staleness_ms {
            g.staleness_seconds
                .get_or_create(&Vec::new())
                .set(ms as f64 / 1000.0);
        }
        g.staleness_unknown.set(v.staleness_ms.is_none() as i64);
        g.peer_staleness_seconds.clear();
        g.peer_staleness_unknown.clear();
        let (mut live, mut retired) = (0, 0);
        for p in &v.peers {
            if p.retired {
                retired += 1;
                continue;
            }
            live += 1;
            let labels = vec![("peer", p.name.clone()), ("peer_region", p.region.clone())];
            if let Some(ms) = p.staleness_ms {
                g.peer_staleness_seconds
                    .get_or_create(&labels)
                    .set(ms as f64 / 1000.0);
            }
            g.peer_staleness_unknown
                .get_or_create(&labels)
                .set(p.staleness_ms.is_none() as i64);
        }
        g.peers.get_or_create(&vec![("state", "live".into())]).set(live);
        g.peers
            .get_or_create(&vec![("state", "retired".into())])
            .set(retired);
        g.deny_entries.set(v.deny_entries as i64);
        g.cutoffs.set(v.cutoffs as i64);
        g.deny_memory_bytes.set(v.deny_memory_bytes as i64);
        g.expired_pruned.set(v.expired_pruned as f64);
        g.oplog_ops.set(v.oplog_ops as i64);
        let (generation, bytes, at_ms, failures) = v.checkpoint;
        g.checkpoint_generation.set(generation as i64);
        g.checkpoint_bytes.set(bytes as i64);
        g.checkpoint_failures.set(failures as f64);
        g.checkpoint_age_seconds.clear();
        if generation > 0 && at_ms > 0 {
            g.checkpoint_age_seconds
                .get_or_create(&Vec::new())
                .set(v.now_ms.saturating_sub(at_ms) as f64 / 1000.0);
        }
        g.disk_bytes
            .get_or_create(&vec![("part", "checkpoints".into())])
            .set(v.disk.0 as i64);
        g.disk_bytes
            .get_or_create(&vec![("part", "database".into())])
            .set(v.disk.1 as i64);
        g.disk_free_bytes.clear();
        g.disk_size_bytes.clear();
        if let Some((free, size)) = v.filesystem {
            g.disk_free_bytes.get_or_create(&Vec::new()).set(free as i64);
            g.disk_size_bytes.get_or_create(&Vec::new()).set(size as i64);
        }
        g.writer_queue_depth.set(v.writer_queue.0 as i64);
        g.writer_queue_capacity.set(v.writer_queue.1 as i64);
        g.watch_subscribers.set(v.watch.0 as i64);
        g.watch_cut_off.set(v.watch.1 as f64);
        if let Some(p) = process::sample() {
            let pg = &g.process;
            pg.cpu_seconds.set(p.cpu_seconds);
            pg.resident.set(p.resident_bytes as i64);
            pg.virtual_bytes.set(p.virtual_bytes as i64);
            pg.open_fds.set(p.open_fds as i64);
            pg.max_fds.set(p.max_fds as i64);
            pg.start_time.set(p.start_time_seconds);
            pg.threads.set(p.threads as i64);
        }
    }
}

fn register_gauges(r: &mut Registry, g: &Gauges) {
    r.register(
        "rescind_node_info",
        "This node: name#incarnation, region and version",
        g.info.clone(),
    );
    r.register(
        "rescind_recovering",
        "1 while the node rebuilds its state from a peer",
        g.recovering.clone(),
    );
    r.register("rescind_ready", "1 when /readyz answers 200", g.ready.clone());
    r.register(
        "rescind_staleness_seconds",
        "How long this node may be missing some live peer's revocations (absent while unknown)",
        g.staleness_seconds.clone(),
    );
    r.register(
        "rescind_staleness_unknown",
        "1 while some live peer was never heard from since start",
        g.staleness_unknown.clone(),
    );
    r.register(
        "rescind_peer_staleness_seconds",
        "How long this node may be missing this peer's revocations (absent while unknown)",
        g.peer_staleness_seconds.clone(),
    );
    r.register(
        "rescind_peer_staleness_unknown",
        "1 while this live peer was never heard from since start",
        g.peer_staleness_unknown.clone(),
    );
    r.register("rescind_peers", "Known peers, live or retired", g.peers.clone());
    r.register(
        "rescind_deny_entries",
        "Revoked token ids held",
        g.deny_entries.clone(),
    );
    r.register("rescind_cutoffs", "Principals with a cutoff", g.cutoffs.clone());
    r.register(
        "rescind_deny_memory_bytes",
        "Bytes the in-memory deny set holds",
        g.deny_memory_bytes.clone(),
    );
    r.register(
        "rescind_expired_pruned",
        "Deny entries dropped by expiry since start",
        g.expired_pruned.clone(),
    );
    r.register("rescind_oplog_ops", "Ops held in the op log", g.oplog_ops.clone());
    r.register(
        "rescind_checkpoint_generation",
        "Generation of the newest durable checkpoint (0: none)",
        g.checkpoint_generation.clone(),
    );
    r.register(
        "rescind_checkpoint_bytes",
        "Size of the newest checkpoint",
        g.checkpoint_bytes.clone(),
    );
    r.register(
        "rescind_checkpoint_age_seconds",
        "Time since the newest checkpoint was written (absent before the first)",
        g.checkpoint_age_seconds.clone(),
    );
    r.register(
        "rescind_checkpoint_failures",
        "Checkpoints that failed since start",
        g.checkpoint_failures.clone(),
    );
    r.register(
        "rescind_disk_bytes",
        "Bytes on disk of the data dir, by part",
        g.disk_bytes.clone(),
    );
    r.register(
        "rescind_disk_free_bytes",
        "Bytes free (for this user) on the data dir's file system",
        g.disk_free_bytes.clone(),
    );
    r.register(
        "rescind_disk_size_bytes",
        "Size of the data dir's file system",
        g.disk_size_bytes.clone(),
    );
    r.register(
        "rescind_writer_queue_depth",
        "Writes queued for the writer",
        g.writer_queue_depth.clone(),
    );
    r.register(
        "rescind_writer_queue_capacity",
        "Most writes the writer's queue holds",
        g.writer_queue_capacity.clone(),
    );
    r.register(
        "rescind_watch_subscribers",
        "Watch streams open",
        g.watch_subscribers.clone(),
    );
    r.register(
        "rescind_watch_cut_off",
        "Watch streams cut off since start because the subscriber fell behind",
        g.watch_cut_off.clone(),
    );
    let p = &g.process;
    r.register(
        "process_cpu_seconds",
        "User and system CPU time",
        p.cpu_seconds.clone(),
    );
    r.register(
        "process_resident_memory_bytes",
        "Resident memory",
        p.resident.clone(),
    );
    r.register(
        "process_virtual_memory_bytes",
        "Virtual memory",
        p.virtual_bytes.clone(),
    );
    r.register("process_open_fds", "Open file descriptors", p.open_fds.clone());
    r.register("process_max_fds", "Most open file descriptors", p.max_fds.clone());
    r.register(
        "process_start_time_seconds",
        "Start time, seconds since the Unix epoch",
        p.start_time.clone(),
    );
    r.register("process_threads", "OS threads", p.threads.clone());
}

/// Free and total bytes of the file system holding `path`.
pub fn filesystem_space(path: &std::path::Path) -> Option<(u64, u64)> {
    let s = rustix::fs::statvfs(path).ok()?;
    Some((
        s.f_bavail.saturating_mul(s.f_frsize),
        s.f_blocks.saturating_mul(s.f_frsize),
    ))
}
