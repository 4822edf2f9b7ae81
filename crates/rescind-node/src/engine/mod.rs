//! [`Engine`]: a node's state in memory, its writer, and the read paths.
//!
//! Reads (`check`, `status`) take a shared lock on the in-memory [`State`] and
//! never touch disk or network; many run in parallel. Writes go to one writer
//! thread ([`crate::writer`]) that batches them into one durable flush.
//! `status` assembles what `Status` reports.

mod commands;
mod recovering;
mod status;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use rescind_core::check::CheckQuery;
use rescind_core::{
    ConsistencyToken, Cutoff, Decision, DenyEntry, Op, OriginId, PrincipalKind, State, VersionVector,
};
use rescind_gossip::{Cluster, Floor, NodeInfo};
use rescind_store::{Identity, Store};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

pub use commands::{EngineError, RevokeCommand, RevokeOutcome, RevokeTarget};
pub use status::StatusSnapshot;

use crate::clock::SharedClock;
use crate::writer::{self, Job};

/// How to start an [`Engine`].
pub struct EngineOptions {
    /// Region label.
    pub region: String,
    /// Grace after expiry before an entry is dropped.
    pub expiry_grace: Duration,
    /// Capacity of the writer's queue.
    pub write_queue: usize,
    /// Peer addresses to start gossip from.
    pub seeds: Vec<String>,
    /// Address peers should dial (may be set later, once bound).
    pub advertise_addr: String,
    /// The wall clock.
    pub clock: SharedClock,
    /// When the writer checkpoints and how long the op log keeps ops peers
    /// have not acknowledged.
    pub checkpoints: crate::checkpointer::CheckpointPolicy,
    /// How the audit trail is kept.
    pub audit: crate::audit::AuditPolicy,
    /// The node's metrics (recorded by the writer, gossip and the check paths).
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Whether a data dir that cannot be rebuilt alone may start in
    /// recovery, to pull a snapshot from a peer (true when peers are
    /// configured); otherwise the start fails naming the damaged file.
    pub recover_from_peers: bool,
}

/// Counters of peer traffic, for the simulator's report and for operators.
#[derive(Debug, Default)]
pub struct GossipCounters {
    /// Peer calls made (exchange, push, snapshot page).
    pub messages: AtomicU64,
    /// Encoded op and snapshot-entry bytes sent in them.
    pub bytes: AtomicU64,
    /// Ops received that this node already had.
    pub duplicate_ops: AtomicU64,
}

/// A started engine, its writer, and the stream of new local ops (durable)
/// for the eager pusher.
pub struct Started {
    /// The engine handle.
    pub engine: Engine,
    /// The writer thread.
    pub writer: WriterHandle,
    /// New local ops, once durable.
    pub local_ops: mpsc::Receiver<Op>,
}

/// State shared by the engine handles and the writer thread.
pub(crate) struct Shared {
    pub(crate) state: RwLock<State>,
    pub(crate) identity: Identity,
    pub(crate) origin: OriginId,
    pub(crate) node_id: String,
    pub(crate) region: String,
    pub(crate) clock: SharedClock,
    /// Set while the state is incomplete (see [`crate::recovery`]): checks
    /// answer `UNAVAILABLE` until a peer's snapshot is adopted.
    pub(crate) recovering: std::sync::atomic::AtomicBool,
    /// While recovering: a peer's snapshot was adopted.
    pub(crate) recovery_snapshot: std::sync::atomic::AtomicBool,
    /// While recovering: the log's floor, which the state must cover.
    pub(crate) recovery_floor: Vec<(OriginId, u64)>,
    /// Peers' durable version vectors as they last reported them, by name.
    pub(crate) peer_vectors: Mutex<std::collections::BTreeMap<String, Vec<(OriginId, u64)>>>,
    /// The last checkpoint.
    pub(crate) checkpoint: Mutex<crate::checkpointer::CheckpointStatus>,
    /// How the audit trail is kept.
    pub(crate) audit: crate::audit::AuditPolicy,
    /// Time of the last expiry GC pass (unix ms).
    pub(crate) gc_watermark: AtomicU64,
    /// Bumped after every applied batch: wakes consistency-token waiters.
    pub(crate) applied: watch::Sender<u64>,
    /// The version vector as of the last successful flush: what gossip may ship.
    pub(crate) durable: Mutex<VersionVector>,
    /// Bumped after every flush that moved `durable`: wakes Watch streams.
    pub(crate) durable_moved: watch::Sender<u64>,
    /// The newest durable ops, for Watch streams at the head of the log.
    pub(crate) recent: crate::recent::RecentOps,
    /// Deny entries before and after the last GC pass.
    pub(crate) gc_last: Mutex<(u64, u64)>,
    /// Membership and freshness; updated by gossip, read by Status.
    pub(crate) cluster: Mutex<Cluster>,
    /// `Cluster::freshness_floor` (monotonic ms), kept here so `Check` reads an
    /// atomic instead of taking the cluster lock; see [`FLOOR_NO_PEERS`] and
    /// [`FLOOR_UNKNOWN`].
    freshness_floor: AtomicU64,
    /// Peer traffic counters.
    pub(crate) gossip: GossipCounters,
    /// The node's metrics.
    pub(crate) metrics: Arc<crate::metrics::Metrics>,
    pub(crate) started: Instant,
    pub(crate) store: Arc<dyn Store>,
}

/// `freshness_floor` when no live peer exists.
const FLOOR_NO_PEERS: u64 = u64::MAX;
/// `freshness_floor` while some live peer was never heard of.
const FLOOR_UNKNOWN: u64 = u64::MAX - 1;

fn encode_floor(f: Floor) -> u64 {
    match f {
        Floor::NoPeers => FLOOR_NO_PEERS,
        Floor::Unknown => FLOOR_UNKNOWN,
        Floor::At(t) => t.min(FLOOR_UNKNOWN - 1),
    }
}

/// Handle to a node's state; cheap to clone.
#[derive(Clone)]
pub struct Engine {
    shared: Arc<Shared>,
    jobs: mpsc::Sender<Job>,
}

/// Owns the writer; [`WriterHandle::join`] waits for it to drain and stop
/// once every [`Engine`] clone is dropped.
#[derive(Debug)]
pub enum WriterHandle {
    /// A writer thread.
    Thread(std::thread::JoinHandle<()>),
    /// A writer task.
    Task(tokio::task::JoinHandle<()>),
}

impl WriterHandle {
    /// Wait for the writer to finish its queue.
    pub async fn join(self) {
        match self {
            WriterHandle::Thread(t) => drop(tokio::task::spawn_blocking(move || t.join()).await),
            WriterHandle::Task(t) => drop(t.await),
        }
    }
}

impl Engine {
    /// Recover the state from `store` ([`crate::recovery`]) and start the
    /// writer thread.
    pub fn start(store: Arc<dyn Store>, options: EngineOptions) -> Result<Started, EngineError> {
        let loading = std::time::Instant::now();
        let (state, report, recovering) = match crate::recovery::recover(
            &*store,
            options.expiry_grace.as_millis() as u64,
        )? {
            crate::recovery::Recovery::Ready { state, report } => (state, report, false),
            crate::recovery::Recovery::NeedsPeer { report, .. } if !options.recover_from_peers => {
                return Err(EngineError::Unrecoverable(report.problem()));
            }
            crate::recovery::Recovery::NeedsPeer { state, report } => {
                tracing::error!(
                    problem = %report.problem(),
                    "the state cannot be rebuilt from this data dir: starting in recovery; checks answer UNAVAILABLE until a peer's snapshot is adopted"
                );
                (state, report, true)
            }
        };
        if !recovering && report.unusable.is_empty() {
            // The newest generation loaded: finish a prune a kill cut short
            // (a damaged or unusable generation leaves every file as it is).
            if let Err(e) = store.checkpoints().prune() {
                tracing::warn!(error = %e, "old checkpoints not deleted");
            }
        }
        let identity = store.identity().clone();
        let origin = identity.origin();
        tracing::info!(
            node = %origin,
            deny_entries = state.deny().len(),
            cutoffs = state.cutoffs().len(),
            seq = state.clock().get(&origin),
            checkpoint = report.generation.unwrap_or(0),
            replayed_ops = report.replayed_ops,
            deny_bytes = state.deny().heap_bytes(),
            ms = loading.elapsed().as_millis() as u64,
            "state loaded"
        );
        let newest = report.base_clock.clone();
        // Damaged generations must not count as kept: the next save would
        // otherwise delete the readable one.
        for generation in &report.damaged {
            if let Err(e) = store.checkpoints().set_aside(*generation) {
                tracing::warn!(generation, error = %e, "cannot set the damaged checkpoint aside");
            }
        }
        let me = NodeInfo {
            name: identity.node_name.clone(),
            incarnation: identity.incarnation,
            region: options.region.clone(),
            addr: options.advertise_addr,
        };
        let mut cluster = Cluster::new(me, options.seeds);
        let peer_vectors = crate::node_meta::load(&*store, &mut cluster)?;
        let shared = Arc::new(Shared {
            durable: Mutex::new(state.clock().clone()),
            durable_moved: watch::Sender::new(0),
            recent: crate::recent::RecentOps::default(),
            state: RwLock::new(state),
            node_id: origin.to_string(),
            origin,
            identity,
            region: options.region,
            clock: options.clock,
            applied: watch::Sender::new(0),
            gc_last: Mutex::new((0, 0)),
            freshness_floor: AtomicU64::new(encode_floor(cluster.freshness_floor())),
            gossip: GossipCounters::default(),
            metrics: options.metrics.clone(),
            cluster: Mutex::new(cluster),
            recovering: std::sync::atomic::AtomicBool::new(recovering),
            recovery_snapshot: std::sync::atomic::AtomicBool::new(false),
            recovery_floor: report.floor.clone(),
            audit: options.audit.clone(),
            peer_vectors: Mutex::new(peer_vectors),
            checkpoint: Mutex::new(crate::checkpointer::CheckpointStatus {
                generation: report.generation.unwrap_or(0),
                ..Default::default()
            }),
            gc_watermark: AtomicU64::new(report.pruned_before_ms),
            started: Instant::now(),
            store: store.clone(),
        });
        let (tx, rx) = mpsc::channel(options.write_queue);
        let (local_tx, local_rx) = mpsc::channel(options.write_queue);
        let checkpoints = crate::checkpointer::Checkpointer::new(
            store.clone(),
            options.checkpoints,
            report.next_generation,
            newest,
        );
        let writer = writer::spawn(shared.clone(), store, rx, local_tx, checkpoints)
            .map_err(|e| EngineError::Unavailable(e.to_string()))?;
        Ok(Started {
            engine: Engine { shared, jobs: tx },
            writer,
            local_ops: local_rx,
        })
    }

    /// Milliseconds on this node's monotonic clock since the engine started.
    pub fn mono_ms(&self) -> u64 {
        self.shared.started.elapsed().as_millis() as u64
    }

    /// Read or change the cluster view; the staleness floor follows.
    pub fn with_cluster<T>(&self, f: impl FnOnce(&mut Cluster) -> T) -> T {
        let mut cluster = self.shared.cluster.lock();
        let out = f(&mut cluster);
        let floor = encode_floor(cluster.freshness_floor());
        self.shared.freshness_floor.store(floor, Ordering::Release);
        out
    }

    /// Run a store read: on the blocking pool when the store may block (sled),
    /// inline when it cannot (the in-memory store) — see [`Store::blocks`].
    pub async fn store_read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Store) -> T + Send + 'static,
    ) -> Result<T, EngineError> {
        let store = self.shared.store.clone();
        if !store.blocks() {
            return Ok(f(&*store));
        }
        tokio::task::spawn_blocking(move || f(&*store))
            .await
            .map_err(|e| EngineError::Unavailable(format!("store read failed: {e}")))
    }

    /// The version vector as of the last flush.
    pub fn durable_clock(&self) -> VersionVector {
        self.shared.durable.lock().clone()
    }

    /// Changes whenever the durable version vector moves (see
    /// [`Engine::durable_clock`]); what Watch streams wait on.
    pub fn durable_moves(&self) -> watch::Receiver<u64> {
        self.shared.durable_moved.subscribe()
    }

    /// The newest durable ops per origin, in memory (see [`crate::recent`]).
    pub fn recent_ops(&self) -> &crate::recent::RecentOps {
        &self.shared.recent
    }

    /// Wait until the durable version vector holds every `(origin, seq)` of
    /// `wanted`, for at most `timeout`; false when it did not in time.
    pub async fn wait_durable(&self, wanted: &VersionVector, timeout: Duration) -> bool {
        let mut moves = self.durable_moves();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let durable = self.durable_clock();
            if wanted.iter().all(|(o, seq)| durable.get(o) >= seq) {
                return true;
            }
            match tokio::time::timeout_at(deadline, moves.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => return false,
            }
        }
    }

    /// The store's identity (name and incarnation of this data dir).
    pub fn identity(&self) -> &Identity {
        &self.shared.identity
    }

    /// The region label.
    pub fn region(&self) -> &str {
        &self.shared.region
    }

    /// The configured expiry grace, ms.
    pub fn expiry_grace_ms(&self) -> u64 {
        self.shared.state.read().expiry_grace_ms()
    }

    /// The version vector of what memory holds (what checks see).
    pub fn memory_clock(&self) -> VersionVector {
        self.shared.state.read().clock().clone()
    }

    /// Apply validated ops from a peer; returns how many were new, once durable.
    pub async fn apply_remote(&self, ops: Vec<Op>) -> Result<usize, EngineError> {
        let (reply, rx) = oneshot::channel();
        self.submit(Job::Remote { ops, reply }, rx).await?
    }

    /// Merge one validated page of a peer's snapshot; `clock` on the last page.
    pub async fn merge_snapshot(
        &self,
        deny: Vec<(String, DenyEntry)>,
        cutoffs: Vec<(PrincipalKind, String, Cutoff)>,
        clock: Option<Vec<(OriginId, u64)>>,
    ) -> Result<usize, EngineError> {
        let (reply, rx) = oneshot::channel();
        self.submit(
            Job::Snapshot {
                deny,
                cutoffs,
                clock,
                reply,
            },
            rx,
        )
        .await?
    }

    /// This node's id, `name#incarnation`.
    pub fn node_id(&self) -> &str {
        &self.shared.node_id
    }

    /// Record the durable version vector a peer reported (bounds compaction).
    pub fn note_peer_vector(&self, peer: &NodeInfo, vector: &VersionVector) {
        self.shared
            .metrics
            .propagation
            .reported(&peer.addr, &peer.region, vector.get(&self.shared.origin));
        let key = format!("{}#{:016x}", peer.name, peer.incarnation);
        self.shared
            .note_peer_vector(&key, vector.iter().map(|(o, s)| (o.clone(), s)).collect());
    }

    /// One page of the audit trail (see [`crate::audit::list`]).
    pub async fn list_revocations(
        &self,
        filter: crate::audit::AuditFilter,
        cursor: Vec<u8>,
        limit: usize,
    ) -> Result<Result<crate::audit::Listing, crate::audit::ListError>, EngineError> {
        let (policy, now) = (self.shared.audit.clone(), self.now_ms());
        self.store_read(move |store| crate::audit::list(store, &policy, &filter, &cursor, limit, now))
            .await
    }

    /// The last checkpoint.
    pub fn checkpoint_status(&self) -> crate::checkpointer::CheckpointStatus {
        *self.shared.checkpoint.lock()
    }

    /// Decide one query from memory (callers first ask [`Engine::serving`]).
    pub fn check(&self, q: &CheckQuery<'_>) -> Decision {
        self.shared.state.read().check(q)
    }

    /// Decide many queries under one read lock.
    pub fn check_many(&self, qs: &[CheckQuery<'_>]) -> Vec<Decision> {
        self.shared.state.read().check_many(qs)
    }

    /// How long this node may have been missing some live peer's revocations:
    /// 0 with no peers, [`rescind_gossip::UNKNOWN`] (`u64::MAX`) until it has
    /// heard of every live peer since it started. Never less than the truth:
    /// see `rescind_gossip::members`.
    pub fn staleness_ms(&self) -> u64 {
        self.staleness_at(self.mono_ms())
    }

    /// [`Engine::staleness_ms`] at a given point of this engine's monotonic
    /// clock (for an observer outside the node's runtime, like the simulator).
    pub fn staleness_at(&self, mono_ms: u64) -> u64 {
        match self.shared.freshness_floor.load(Ordering::Acquire) {
            FLOOR_NO_PEERS => 0,
            FLOOR_UNKNOWN => rescind_gossip::UNKNOWN,
            floor => mono_ms.saturating_sub(floor),
        }
    }

    /// Peer traffic counters.
    pub fn gossip_counters(&self) -> &GossipCounters {
        &self.shared.gossip
    }

    /// The node's metrics.
    pub fn metrics(&self) -> &Arc<crate::metrics::Metrics> {
        &self.shared.metrics
    }

    /// Count one peer message (a call made or a response sent) of `kind` to a
    /// peer of `region`, carrying `bytes` of encoded ops or entries.
    pub fn count_sent(&self, kind: crate::metrics::MessageKind, region: &str, bytes: usize) {
        self.shared.gossip.messages.fetch_add(1, Ordering::Relaxed);
        self.shared
            .gossip
            .bytes
            .fetch_add(bytes as u64, Ordering::Relaxed);
        self.shared.metrics.gossip.sent(kind, region, bytes);
    }

    /// Count one peer message received (a call answered or a response read).
    pub fn count_received(&self, kind: crate::metrics::MessageKind, region: &str, bytes: usize) {
        self.shared.metrics.gossip.received(kind, region, bytes);
    }

    /// The region of the member at `addr` (`unknown` before it is known).
    pub fn region_of(&self, addr: &str) -> String {
        self.shared
            .cluster
            .lock()
            .region_of(addr)
            .unwrap_or("unknown")
            .to_owned()
    }

    /// The op log's floor per origin (ops at or below it have left the log;
    /// empty when it cannot be read).
    pub fn store_floor(&self) -> Vec<(OriginId, u64)> {
        self.shared.store.log_floor().unwrap_or_default()
    }

    /// Writes the writer's queue holds at most.
    pub fn write_queue_capacity(&self) -> usize {
        self.jobs.max_capacity()
    }

    /// Writes queued for the writer and not yet taken into a batch.
    pub fn queued_writes(&self) -> usize {
        self.jobs.max_capacity() - self.jobs.capacity()
    }

    /// Revoke, and return once the revocation is durable. Refused while
    /// recovering: the node's own op numbers may still be unknown to it.
    pub async fn revoke(&self, cmd: RevokeCommand) -> Result<RevokeOutcome, EngineError> {
        self.serving()?;
        let (reply, rx) = oneshot::channel();
        self.submit(Job::Revoke { cmd, reply }, rx).await?
    }

    /// Revoke every command of a batch in one durable write; answers in
    /// order, once all of them are durable (or none is acknowledged).
    pub async fn revoke_many(&self, cmds: Vec<RevokeCommand>) -> Result<Vec<RevokeOutcome>, EngineError> {
        self.serving()?;
        let (reply, rx) = oneshot::channel();
        self.submit(Job::RevokeBatch { cmds, reply }, rx).await?
    }

    /// Drop expired entries now; returns how many went.
    pub async fn prune_expired(&self) -> Result<usize, EngineError> {
        let (reply, rx) = oneshot::channel();
        self.submit(Job::Prune { reply }, rx).await?
    }

    async fn submit<T>(&self, job: Job, rx: oneshot::Receiver<T>) -> Result<T, EngineError> {
        let gone = || EngineError::Unavailable("the writer has stopped".into());
        self.jobs.send(job).await.map_err(|_| gone())?;
        rx.await.map_err(|_| gone())
    }

    /// Wait until every op `token` names is applied, for at most `timeout`.
    pub async fn wait_for(&self, token: &ConsistencyToken, timeout: Duration) -> Result<(), EngineError> {
        let mut applied = self.shared.applied.subscribe();
        let start = tokio::time::Instant::now();
        loop {
            if token.is_covered_by(self.shared.state.read().clock()) {
                return Ok(());
            }
            match tokio::time::timeout_at(start + timeout, applied.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err(EngineError::Unavailable("the node is shutting down".into())),
                Err(_) => {
                    return Err(EngineError::NotCaughtUp {
                        waited_ms: start.elapsed().as_millis() as u64,
                    });
                }
            }
        }
    }

    /// The node's wall clock, unix ms.
    pub fn now_ms(&self) -> u64 {
        self.shared.clock.now_ms()
    }
}
