//! The `Watch` stream: what an edge replica or in-process `Replica` follows.
//!
//! One feeder task per subscriber. It sends a hello; a paged snapshot when
//! the subscriber starts empty or is behind what the op log can serve; then,
//! each time the durable version vector moves, the ops the subscriber lacks,
//! planned with the same code as a peer's (`rescind_gossip::plan_ops`), so
//! only durable ops travel and each origin's go in sequence order; and a
//! heartbeat at least every second with the node's staleness and the vector
//! sent so far (the resume point).
//!
//! Memory per subscriber is bounded: at most `watch_buffer` events of at most
//! [`MAX_EVENT_BYTES`] wait in its queue, and the feeder reads the op log only
//! when there is room. A subscriber whose queue stays full for
//! `watch_stall_timeout` is cut off with `RESOURCE_EXHAUSTED`; it resumes from
//! its last heartbeat's vector. The writer and gossip never wait for a
//! subscriber: feeders only read the durable vector and the store.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use rescind_core::VersionVector;
use rescind_gossip::{Limits, Plan, plan_ops};
use rescind_proto::v1 as pb;
use rescind_store::Identity;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tonic::Status;

use crate::engine::Engine;
use crate::gossip::source::StoreSource;
use crate::gossip::wire;

/// Most encoded op or entry bytes in one event (one op always goes).
pub const MAX_EVENT_BYTES: usize = 16 * 1024;
/// Most ops in one event.
pub const MAX_EVENT_OPS: usize = 256;
/// Entries per snapshot page on a Watch stream (a page stays near 16 KiB for
/// UUID-sized ids, and under 200 KiB at the 512-byte id limit).
pub const SNAPSHOT_PAGE: usize = 128;
/// Longest gap between two events on a stream.
pub const HEARTBEAT: Duration = Duration::from_secs(1);
/// How long a subscriber ahead of this node waits for it to catch up before
/// being refused.
const AHEAD_WAIT: Duration = Duration::from_secs(1);

/// Settings of the Watch service.
#[derive(Clone, Debug)]
pub struct WatchSettings {
    /// Most subscribers at once.
    pub max_watchers: usize,
    /// Events queued per subscriber.
    pub buffer: usize,
    /// How long a full queue may wait before the subscriber is cut off.
    pub stall_timeout: Duration,
    /// This node's cluster id (see [`cluster_id`]).
    pub cluster_id: String,
}

/// The cluster a node belongs to, as Watch subscribers compare it: a keyed
/// hash of the cluster key (never the key itself), or, for a node without
/// one, `node-<name>-<incarnation>` (a cluster of its own).
pub fn cluster_id(cluster_key: Option<&str>, identity: &Identity) -> String {
    match cluster_key {
        Some(key) => {
            let hash = blake3::derive_key("rescind v1 cluster id", key.as_bytes());
            let hex: String = hash[..8].iter().map(|b| format!("{b:02x}")).collect();
            format!("key-{hex}")
        }
        None => format!("node-{}-{:016x}", identity.node_name, identity.incarnation),
    }
}

/// Every subscriber of one node: admission, counters, and the stop signal.
pub struct WatchHub {
    engine: Engine,
    settings: WatchSettings,
    slots: Arc<Semaphore>,
    cut_off: AtomicU64,
    stop: watch::Sender<bool>,
}

/// Why a subscriber's stream ended on the node's side.
enum End {
    /// The subscriber went away.
    Gone,
    /// Its queue stayed full: cut off.
    Stalled,
    /// The node is stopping.
    Stopping,
    /// Reading the store failed.
    Failed(String),
}

impl WatchHub {
    /// A hub over `engine`.
    pub fn new(engine: Engine, settings: WatchSettings) -> Arc<Self> {
        Arc::new(Self {
            engine,
            slots: Arc::new(Semaphore::new(settings.max_watchers)),
            settings,
            cut_off: AtomicU64::new(0),
            stop: watch::Sender::new(false),
        })
    }

    /// Subscribers now.
    pub fn watchers(&self) -> u64 {
        (self.settings.max_watchers - self.slots.available_permits()) as u64
    }

    /// Subscribers cut off since start.
    pub fn cut_off(&self) -> u64 {
        self.cut_off.load(Ordering::Relaxed)
    }

    /// This node's cluster id.
    pub fn cluster_id(&self) -> &str {
        &self.settings.cluster_id
    }

    /// End every stream (`UNAVAILABLE`, "shutting down"): called when the
    /// node starts to drain, so open streams do not hold the drain forever.
    pub fn stop(&self) {
        self.stop.send_replace(true);
    }

    /// Validate a request and start its stream.
    pub async fn open(self: &Arc<Self>, req: pb::WatchRequest) -> Result<WatchStream, Status> {
        if !req.cluster_id.is_empty() && req.cluster_id != self.settings.cluster_id {
            return Err(Status::failed_precondition(format!(
                "cluster_id: this node belongs to cluster `{}`, the subscriber to `{}`: point it at a node of its own cluster",
                self.settings.cluster_id, req.cluster_id
            )));
        }
        let from = wire::vector_from_pb("from", &req.from).map_err(crate::convert::invalid)?;
        if !self.engine.wait_durable(&from, AHEAD_WAIT).await {
            return Err(ahead(&from, &self.engine.durable_clock()));
        }
        if self.settings.max_watchers == 0 {
            return Err(Status::resource_exhausted(
                "max_watchers: Watch is turned off on this node (max_watchers = 0); follow another node",
            ));
        }
        let permit = self.slots.clone().try_acquire_owned().map_err(|_| {
            Status::resource_exhausted(format!(
                "max_watchers: this node already serves {} Watch subscribers; follow another node or raise max_watchers",
                self.settings.max_watchers
            ))
        })?;
        let (tx, rx) = mpsc::channel(self.settings.buffer);
        let cut = Arc::new(AtomicBool::new(false));
        let feeder = Feeder {
            hub: self.clone(),
            tx,
            cut: cut.clone(),
            sent: from,
        };
        tokio::spawn(feeder.run());
        Ok(WatchStream {
            rx,
            cut,
            ended: false,
            _permit: permit,
        })
    }
}

/// FAILED_PRECONDITION for a subscriber that holds ops this node does not.
fn ahead(from: &VersionVector, durable: &VersionVector) -> Status {
    let (origin, theirs, ours) = from
        .iter()
        .find(|(o, seq)| durable.get(o) < *seq)
        .map(|(o, seq)| (o.to_string(), seq, durable.get(o)))
        .unwrap_or_default();
    Status::failed_precondition(format!(
        "from: the subscriber holds ops of {origin} up to {theirs}, this node only up to {ours}: it has not caught up yet (retry shortly or follow another node), or the vector comes from another cluster"
    ))
}

/// The limits a Watch stream plans ops with.
fn watch_limits() -> Limits {
    Limits {
        max_ops: MAX_EVENT_OPS,
        max_bytes: MAX_EVENT_BYTES,
        snapshot_after_ops: Limits::default().snapshot_after_ops,
    }
}

/// One subscriber's feeder task.
struct Feeder {
    hub: Arc<WatchHub>,
    tx: mpsc::Sender<Result<pb::WatchEvent, Status>>,
    cut: Arc<AtomicBool>,
    /// What the subscriber holds or has been sent.
    sent: VersionVector,
}

impl Feeder {
    async fn run(mut self) {
        let end = self.feed().await;
        let engine = &self.hub.engine;
        let why = match end {
            End::Gone => return,
            End::Stalled => {
                self.hub.cut_off.fetch_add(1, Ordering::Relaxed);
                self.cut.store(true, Ordering::Release);
                tracing::warn!(
                    node = engine.node_id(),
                    "a Watch subscriber stopped reading and was cut off"
                );
                return;
            }
            End::Stopping => Status::unavailable(
                "the node is shutting down: resume from the last heartbeat's vector on another node",
            ),
            End::Failed(e) => Status::internal(format!("reading the op log failed: {e}")),
        };
        let _ = self.tx.try_send(Err(why));
    }

    async fn feed(&mut self) -> End {
        let engine = self.hub.engine.clone();
        let mut moves = engine.durable_moves();
        let mut stop = self.hub.stop.subscribe();
        let hello = pb::watch_event::Event::Hello(pb::WatchHello {
            node_id: engine.node_id().to_owned(),
            region: engine.region().to_owned(),
            cluster_id: self.hub.settings.cluster_id.clone(),
            expiry_grace_ms: engine.expiry_grace_ms(),
        });
        if let Err(end) = self.send(hello).await {
            return end;
        }
        if self.sent.is_empty()
            && let Err(end) = self.snapshot().await
        {
            return end;
        }
        let mut beat_due = tokio::time::Instant::now();
        loop {
            if *stop.borrow_and_update() {
                return End::Stopping;
            }
            moves.borrow_and_update();
            match self.catch_up().await {
                Ok(true) => continue,
                Ok(false) => {}
                Err(end) => return end,
            }
            let now = tokio::time::Instant::now();
            if now >= beat_due {
                let beat = pb::watch_event::Event::Heartbeat(pb::WatchHeartbeat {
                    staleness_ms: engine.staleness_ms(),
                    covered: wire::clock_to_pb(&self.sent),
                });
                if let Err(end) = self.send(beat).await {
                    return end;
                }
                beat_due = now + HEARTBEAT;
            }
            tokio::select! {
                _ = moves.changed() => {}
                _ = stop.changed() => {}
                _ = self.tx.closed() => return End::Gone,
                _ = tokio::time::sleep_until(beat_due) => {}
            }
        }
    }

    /// Send what the subscriber lacks; true when more remains.
    async fn catch_up(&mut self) -> Result<bool, End> {
        let durable = self.hub.engine.durable_clock();
        let limits = watch_limits();
        // At the head of the log the newest ops are in memory; else the store.
        // Only the store can say a snapshot is needed.
        let planned = match plan_ops(self.hub.engine.recent_ops(), &durable, &self.sent, &limits) {
            Ok(plan) if plan != Plan::Snapshot => Ok(Ok(plan)),
            _ => {
                let (durable, sent) = (durable.clone(), self.sent.clone());
                self.hub
                    .engine
                    .store_read(move |store| plan_ops(&StoreSource(store), &durable, &sent, &limits))
                    .await
            }
        };
        match planned {
            Err(e) => Err(End::Failed(e.to_string())),
            Ok(Err(e)) => Err(End::Failed(e.to_string())),
            Ok(Ok(Plan::UpToDate)) => Ok(false),
            Ok(Ok(Plan::Snapshot)) => self.snapshot().await.map(|()| true),
            Ok(Ok(Plan::Ops { ops, more })) => {
                if more {
                    for op in rescind_core::wire::decode_ops(&ops).map_err(|e| End::Failed(e.to_string()))? {
                        self.sent.observe(&op.origin, op.seq);
                    }
                } else {
                    // Every origin behind was sent up to the durable vector.
                    for (origin, seq) in durable.iter() {
                        self.sent.raise_to(origin, seq);
                    }
                }
                self.send(pb::watch_event::Event::Ops(pb::WatchOps { ops }))
                    .await
                    .map(|()| more)
            }
        }
    }

    /// Send a whole snapshot, page by page; afterwards the subscriber holds
    /// everything up to the vector the snapshot covers.
    async fn snapshot(&mut self) -> Result<(), End> {
        let mut cursor = Vec::new();
        let mut covered = None;
        loop {
            let at = std::mem::take(&mut cursor);
            let page = self
                .hub
                .engine
                .store_read(move |store| {
                    rescind_gossip::snapshot::page(&StoreSource(store), &at, SNAPSHOT_PAGE)
                })
                .await
                .map_err(|e| End::Failed(e.to_string()))?
                .map_err(|e| End::Failed(e.to_string()))?;
            if covered.is_none() {
                covered = page.covered.clone();
            }
            let last = page.done;
            let event = pb::WatchSnapshot {
                deny: page.deny,
                cutoffs: page.cutoffs,
                done: last,
                covered: if last {
                    covered.as_ref().map(wire::clock_to_pb).unwrap_or_default()
                } else {
                    Vec::new()
                },
            };
            self.send(pb::watch_event::Event::Snapshot(event)).await?;
            if last {
                if let Some(v) = &covered {
                    self.sent.merge(v);
                }
                return Ok(());
            }
            cursor = page.next_cursor;
        }
    }

    /// Queue one event, waiting at most `stall_timeout` for room.
    async fn send(&self, event: pb::watch_event::Event) -> Result<(), End> {
        let event = pb::WatchEvent { event: Some(event) };
        match tokio::time::timeout(self.hub.settings.stall_timeout, self.tx.reserve()).await {
            Ok(Ok(permit)) => {
                permit.send(Ok(event));
                Ok(())
            }
            Ok(Err(_)) => Err(End::Gone),
            Err(_) => Err(End::Stalled),
        }
    }
}

/// The response stream of one subscriber: its queue, then, once cut off,
/// one `RESOURCE_EXHAUSTED` ahead of whatever was still queued. Holds the
/// subscriber's `max_watchers` slot until tonic drops it.
pub struct WatchStream {
    rx: mpsc::Receiver<Result<pb::WatchEvent, Status>>,
    cut: Arc<AtomicBool>,
    ended: bool,
    _permit: OwnedSemaphorePermit,
}

impl futures_util::Stream for WatchStream {
    type Item = Result<pb::WatchEvent, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.ended {
            return Poll::Ready(None);
        }
        if self.cut.load(Ordering::Acquire) {
            self.ended = true;
            self.rx.close();
            return Poll::Ready(Some(Err(Status::resource_exhausted(
                "this Watch subscriber stopped reading and its buffer filled: cut off; resume from the last heartbeat's vector",
            ))));
        }
        self.rx.poll_recv(cx)
    }
}
