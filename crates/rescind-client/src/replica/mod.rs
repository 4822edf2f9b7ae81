//! [`Replica`]: the whole revocation state in process, fed by a node's
//! `Watch` stream, answering checks from memory.
//!
//! # Staleness that never under-reports
//! Every `probe_interval` the replica asks the node it follows for its
//! `Status`: the node's staleness `S` and the version vector `V` its memory
//! holds. The probe left at `sent_at` on the replica's monotonic clock, so
//! the node held every revocation acknowledged before `sent_at - S`, all of
//! them inside `V`. Once the replica's own vector covers `V`, it is fresh as
//! of `sent_at - S`: the whole round trip counts against it, and no two
//! machines' clocks are ever compared. Until a probe has been adopted (after
//! a start, or while the node's own staleness is unknown) the replica's
//! staleness is unknown (`None`).

pub mod checkpoint;
mod follow;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use rescind_core::check::CheckQuery;
use rescind_core::{Decision, Digest, State, VersionVector};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::answer::Reason;
use crate::client::{Client, ClientConfig};
use crate::error::ClientError;
use crate::policy::{FailPolicy, Verdict};

/// The wall clock a replica prunes expired entries by, unix ms (the
/// simulator injects its own).
pub type WallClock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// How a replica follows its cluster.
#[derive(Clone)]
pub struct ReplicaConfig {
    /// Endpoints, token, region and connector of the nodes to follow.
    pub client: ClientConfig,
    /// Where to keep a local checkpoint (None: start empty every time).
    pub checkpoint: Option<PathBuf>,
    /// How often the checkpoint is saved (and once at shutdown). Default 60 s.
    pub checkpoint_interval: Duration,
    /// The cluster to follow; None: the first node's, then kept.
    pub cluster_id: Option<String>,
    /// Expiry grace until the node's is known. Default 300 s.
    pub expiry_grace: Duration,
    /// How often the node is probed for freshness. Default 500 ms.
    pub probe_interval: Duration,
    /// An upstream silent this long (no event, no heartbeat) is given up.
    /// Default 3 s.
    pub silence_timeout: Duration,
    /// How often expired entries are pruned. Default 60 s.
    pub gc_interval: Duration,
    /// Wall clock (default: the system's).
    pub wall_clock: Option<WallClock>,
}

impl std::fmt::Debug for ReplicaConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicaConfig")
            .field("client", &self.client)
            .field("checkpoint", &self.checkpoint)
            .field("checkpoint_interval", &self.checkpoint_interval)
            .field("cluster_id", &self.cluster_id)
            .field("expiry_grace", &self.expiry_grace)
            .field("probe_interval", &self.probe_interval)
            .field("silence_timeout", &self.silence_timeout)
            .field("gc_interval", &self.gc_interval)
            .finish_non_exhaustive()
    }
}

impl ReplicaConfig {
    /// Follow the nodes of `client` with the defaults.
    pub fn new(client: ClientConfig) -> Self {
        Self {
            client,
            checkpoint: None,
            checkpoint_interval: Duration::from_secs(60),
            cluster_id: None,
            expiry_grace: Duration::from_secs(300),
            probe_interval: Duration::from_millis(500),
            silence_timeout: Duration::from_secs(3),
            gc_interval: Duration::from_secs(60),
            wall_clock: None,
        }
    }
}

/// What `ReplicaStatus` reports of a replica.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicaStatus {
    /// The endpoint followed now (None: between upstreams).
    pub upstream: Option<String>,
    /// That node's id.
    pub upstream_node: Option<String>,
    /// The cluster followed.
    pub cluster_id: Option<String>,
    /// Revoked ids held.
    pub deny_entries: u64,
    /// Principals with a cutoff.
    pub cutoffs: u64,
    /// State digest (equal to a node's exactly when they hold the same).
    pub digest: Digest,
    /// What the replica holds.
    pub clock: VersionVector,
    /// `None`: unknown.
    pub staleness: Option<Duration>,
    /// Streams opened so far (1 = never resumed).
    pub streams: u64,
    /// Entries dropped by expiry.
    pub expired_pruned: u64,
    /// Why the last stream ended or was refused (`endpoint: reason`).
    pub last_error: Option<String>,
}

/// `fresh_as_of` before any probe was adopted.
const NEVER: u64 = u64::MAX;

/// What the follower and the readers share.
pub(crate) struct Shared {
    pub(crate) state: RwLock<State>,
    started: Instant,
    /// Monotonic ms since `started` as of which the replica held every
    /// acknowledged revocation ([`NEVER`]: not yet known).
    fresh_as_of: AtomicU64,
    /// Bumped after every applied event: wakes consistency waits.
    pub(crate) applied: watch::Sender<u64>,
    /// (endpoint, node id) followed now.
    pub(crate) upstream: Mutex<Option<(String, String)>>,
    pub(crate) cluster_id: Mutex<Option<String>>,
    pub(crate) streams: AtomicU64,
    pub(crate) last_error: Mutex<Option<String>>,
    wall_clock: WallClock,
}

impl Shared {
    /// The wall clock, unix ms.
    pub(crate) fn now_ms(&self) -> u64 {
        (self.wall_clock)()
    }

    pub(crate) fn mono_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Raise `fresh_as_of` (it never goes back).
    pub(crate) fn fresh_at(&self, mono_ms: u64) {
        let _ = self
            .fresh_as_of
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |old| {
                (old == NEVER || mono_ms > old).then_some(mono_ms)
            });
    }

    fn staleness(&self) -> Option<Duration> {
        self.staleness_at(self.mono_ms())
    }

    fn staleness_at(&self, mono_ms: u64) -> Option<Duration> {
        match self.fresh_as_of.load(Ordering::Acquire) {
            NEVER => None,
            t => Some(Duration::from_millis(mono_ms.saturating_sub(t))),
        }
    }
}

/// A decision from a replica's memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplicaAnswer {
    /// The decision.
    pub decision: Decision,
    /// How stale the replica may be (`None`: unknown).
    pub staleness: Option<Duration>,
}

/// An in-process replica; dropping it stops following (use
/// [`Replica::shutdown`] to also save the checkpoint).
pub struct Replica {
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
    checkpoint: Option<PathBuf>,
}

impl Replica {
    /// Load the checkpoint (if configured and intact) and start following.
    /// Needs a tokio runtime.
    pub async fn start(config: ReplicaConfig) -> Result<Replica, ClientError> {
        let client = Client::new(config.client.clone())?;
        let grace = config.expiry_grace.as_millis() as u64;
        let mut state = State::new(grace);
        let mut cluster = config.cluster_id.clone();
        if let Some(path) = config.checkpoint.clone() {
            let loaded = tokio::task::spawn_blocking(move || checkpoint::load(&path, grace))
                .await
                .map_err(|e| ClientError::Config(format!("checkpoint: loading failed: {e}")))?;
            match loaded {
                Ok(Some((s, c))) => match &cluster {
                    Some(want) if *want != c => tracing::warn!(
                        checkpoint_cluster = %c,
                        cluster = %want,
                        "the replica checkpoint belongs to another cluster; starting empty"
                    ),
                    _ => {
                        tracing::info!(entries = s.deny().len(), "replica checkpoint loaded");
                        state = s;
                        cluster = Some(c);
                    }
                },
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "starting empty and taking a snapshot"),
            }
        }
        let shared = Arc::new(Shared {
            state: RwLock::new(state),
            started: Instant::now(),
            fresh_as_of: AtomicU64::new(NEVER),
            applied: watch::Sender::new(0),
            upstream: Mutex::new(None),
            cluster_id: Mutex::new(cluster),
            streams: AtomicU64::new(0),
            last_error: Mutex::new(None),
            wall_clock: config
                .wall_clock
                .clone()
                .unwrap_or_else(|| Arc::new(follow::system_ms)),
        });
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(follow::run(shared.clone(), client, config.clone(), stopped));
        Ok(Replica {
            shared,
            stop,
            task: Some(task),
            checkpoint: config.checkpoint,
        })
    }

    /// Decide one query from memory.
    pub fn check(&self, q: &CheckQuery<'_>) -> ReplicaAnswer {
        let decision = self.shared.state.read().check(q);
        ReplicaAnswer {
            decision,
            staleness: self.shared.staleness(),
        }
    }

    /// Decide many queries under one read lock (lookups overlapped).
    pub fn check_many(&self, qs: &[CheckQuery<'_>]) -> (Vec<Decision>, Option<Duration>) {
        let decisions = self.shared.state.read().check_many(qs);
        (decisions, self.shared.staleness())
    }

    /// Decide and apply a fail policy.
    pub fn decide(&self, q: &CheckQuery<'_>, policy: FailPolicy) -> Verdict {
        let a = self.check(q);
        let node = self.shared.upstream.lock().as_ref().map(|(_, n)| n.clone());
        policy.judge_answer(Reason::from_rule(a.decision.rule), a.staleness, node)
    }

    /// How stale the replica may be (`None`: unknown).
    pub fn staleness(&self) -> Option<Duration> {
        self.shared.staleness()
    }

    /// [`Replica::staleness`] when `since_start` has passed on the replica's
    /// monotonic clock since it started (for an observer outside its
    /// runtime, like the simulator).
    pub fn staleness_at(&self, since_start: Duration) -> Option<Duration> {
        self.shared.staleness_at(since_start.as_millis() as u64)
    }

    /// Wait until the replica holds every op `token` names, for at most
    /// `timeout`; false when it did not in time.
    pub async fn wait_for(&self, token: &rescind_core::ConsistencyToken, timeout: Duration) -> bool {
        let mut applied = self.shared.applied.subscribe();
        let deadline = Instant::now() + timeout;
        loop {
            if token.is_covered_by(self.shared.state.read().clock()) {
                return true;
            }
            match tokio::time::timeout_at(deadline, applied.changed()).await {
                Ok(Ok(())) => {}
                _ => return false,
            }
        }
    }

    /// Identity, counts, digest, vector and staleness.
    pub fn status(&self) -> ReplicaStatus {
        let upstream = self.shared.upstream.lock().clone();
        let cluster_id = self.shared.cluster_id.lock().clone();
        let state = self.shared.state.read();
        ReplicaStatus {
            upstream: upstream.as_ref().map(|(a, _)| a.clone()),
            upstream_node: upstream.map(|(_, n)| n),
            cluster_id,
            deny_entries: state.deny().len() as u64,
            cutoffs: state.cutoffs().len() as u64,
            digest: state.digest(),
            clock: state.clock().clone(),
            staleness: self.shared.staleness(),
            streams: self.shared.streams.load(Ordering::Relaxed),
            expired_pruned: state.pruned(),
            last_error: self.shared.last_error.lock().clone(),
        }
    }

    /// Bytes the deny set holds (for memory reports).
    pub fn deny_bytes(&self) -> usize {
        self.shared.state.read().deny().heap_bytes()
    }

    /// Stop following and save the checkpoint (if configured).
    pub async fn shutdown(mut self) -> Result<(), ClientError> {
        self.stop.send_replace(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        save_checkpoint(&self.shared, self.checkpoint.clone()).await
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Save the state to `path` on the blocking pool (readers go on; the
/// follower waits for the read lock to be released).
pub(crate) async fn save_checkpoint(shared: &Arc<Shared>, path: Option<PathBuf>) -> Result<(), ClientError> {
    let Some(path) = path else { return Ok(()) };
    let shared = shared.clone();
    tokio::task::spawn_blocking(move || {
        let cluster = shared.cluster_id.lock().clone().unwrap_or_default();
        let state = shared.state.read();
        checkpoint::save(&path, &state, &cluster)
    })
    .await
    .map_err(|e| ClientError::Config(format!("checkpoint: saving failed: {e}")))?
    .map_err(|e| ClientError::Config(e.to_string()))
}
