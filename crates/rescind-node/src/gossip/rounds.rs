//! One anti-entropy round, a snapshot pull, and the eager pusher.
//!
//! A thin transport over `rescind_gossip::round` and
//! `rescind_gossip::snapshot`: the core says what to send and what to apply,
//! this module makes the calls and applies through the engine.

use std::sync::Arc;

use rescind_gossip::wire::encode_op;
use rescind_gossip::{Limits, Pull, Push, round};
use rescind_proto::v1 as pb;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tracing::Instrument;

use super::client::{PeerChannels, PeerClient};
use super::source::StoreSource;
use super::wire;
use crate::engine::Engine;
use crate::metrics::MessageKind;

/// Why a round stopped early (logged, never fatal: the next round retries).
#[derive(Debug, thiserror::Error)]
pub enum RoundError {
    /// The peer could not be reached or refused.
    #[error("peer call failed: {0}")]
    Rpc(#[from] tonic::Status),
    /// The peer sent something invalid; nothing of it was applied.
    #[error("peer sent invalid data: {0}")]
    Invalid(#[from] rescind_core::limits::FieldError),
    /// Applying locally failed.
    #[error(transparent)]
    Engine(#[from] crate::engine::EngineError),
    /// Reading the store failed.
    #[error("store: {0}")]
    Store(String),
    /// The address cannot be dialled.
    #[error("cannot dial {0}")]
    Dial(String),
}

/// What a round did, for logs and tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RoundStats {
    /// Ops received and new here.
    pub pulled: usize,
    /// Ops sent to the peer.
    pub pushed: usize,
    /// A snapshot was pulled.
    pub snapshot: bool,
}

fn me_pb(engine: &Engine) -> pb::NodeInfo {
    engine.with_cluster(|c| wire::node_to_pb(c.me()))
}

/// One round with the peer at `addr`: pull what we lack, adopt its freshness,
/// push what it lacks.
pub async fn anti_entropy(
    engine: &Engine,
    channels: &PeerChannels,
    addr: &str,
    limits: &Limits,
) -> Result<RoundStats, RoundError> {
    let mut client = channels
        .client(addr)
        .ok_or_else(|| RoundError::Dial(addr.to_owned()))?;
    let sent_at = engine.mono_ms();
    let durable = engine.durable_clock();
    let request = engine.with_cluster(|c| round::request(c, &durable));
    engine.count_sent(MessageKind::Exchange, &engine.region_of(addr), 0);
    let resp = client
        .exchange(wire::exchange_to_pb(&request))
        .await?
        .into_inner();
    let answer = wire::answer_from_pb(resp)?;
    let region = answer.from.region.clone();
    engine.count_received(
        MessageKind::Exchange,
        &region,
        answer.ops.iter().map(Vec::len).sum(),
    );
    let now = engine.mono_ms();
    let received = engine.with_cluster(|c| round::receive(c, addr, &answer, now))?;
    engine.note_peer_vector(&answer.from, &answer.clock);
    let mut stats = RoundStats::default();
    if !received.ops.is_empty() {
        stats.pulled = engine.apply_remote(received.ops).await?;
    }
    // A node rebuilding its state takes a whole snapshot from the first
    // peer that answers, whatever that peer's log could serve; it serves
    // again once it holds everything that peer held.
    let recovering = engine.is_recovering();
    if received.snapshot_needed || (recovering && !engine.recovery_snapshot_taken()) {
        pull_snapshot(engine, &mut client, &region).await?;
        stats.snapshot = true;
        if recovering {
            engine.recovery_snapshot_adopted();
        }
    }
    if recovering && engine.recovery_snapshot_taken() && !answer.more {
        engine.finish_recovery_if_covers(&answer.clock);
    }
    let held = engine.memory_clock();
    engine.with_cluster(|c| round::adopt(c, sent_at, &answer, &held));
    // The push half: what the peer lacks (it pulls a snapshot itself if needed).
    let (mine, theirs, limits) = (engine.durable_clock(), answer.clock, *limits);
    let ops = engine
        .store_read(move |store| round::push_back(&StoreSource(store), &mine, &theirs, &limits))
        .await?
        .map_err(|e| RoundError::Store(e.to_string()))?;
    if let Some(ops) = ops {
        stats.pushed = ops.len();
        engine.count_sent(MessageKind::Push, &region, ops.iter().map(Vec::len).sum());
        let from = engine.with_cluster(|c| c.me().clone());
        client.push(wire::push_to_pb(Push { from, ops })).await?;
    }
    Ok(stats)
}

/// Most snapshot pages one pull reads (a bound on a misbehaving peer).
const MAX_SNAPSHOT_PAGES: usize = 1_000_000;

/// Pull a whole snapshot page by page; each page is merged as it arrives (a
/// partial snapshot is still a valid join) and the version vector it covers is
/// raised only at the end.
pub async fn pull_snapshot(engine: &Engine, client: &mut PeerClient, region: &str) -> Result<(), RoundError> {
    pull_pages(engine, client, region)
        .instrument(tracing::info_span!("snapshot_pull"))
        .await?;
    engine.metrics().gossip.snapshot(true);
    Ok(())
}

async fn pull_pages(engine: &Engine, client: &mut PeerClient, region: &str) -> Result<(), RoundError> {
    let mut pull = Pull::new();
    for _ in 0..MAX_SNAPSHOT_PAGES {
        engine.count_sent(MessageKind::Snapshot, region, 0);
        let page = client
            .snapshot(pb::SnapshotRequest {
                from: Some(me_pb(engine)),
                cursor: pull.cursor().to_vec(),
            })
            .await?
            .into_inner();
        let page = wire::page_from_pb(page, pull.is_first())?;
        engine.count_received(MessageKind::Snapshot, region, page.entry_bytes());
        let merge = pull.receive(&page)?;
        let clock = merge.clock.as_ref().map(wire::clock_pairs);
        engine.merge_snapshot(merge.deny, merge.cutoffs, clock).await?;
        if merge.done {
            tracing::info!("snapshot merged");
            return Ok(());
        }
    }
    Err(RoundError::Store("snapshot had too many pages".into()))
}

/// Push each new local op (batched as they come) to a few peers at once.
/// Pushes in flight are bounded; when the bound is hit a push is skipped and
/// anti-entropy delivers the op a moment later.
pub async fn push_loop(
    engine: Engine,
    channels: Arc<PeerChannels>,
    mut local_ops: mpsc::Receiver<rescind_core::Op>,
    fanout: usize,
    max_ops: usize,
    fresh_ms: u64,
) {
    let inflight = Arc::new(Semaphore::new(64));
    let mut tasks = JoinSet::new();
    let metrics = engine.metrics().clone();
    while let Some(first) = local_ops.recv().await {
        let mut batch = vec![encode_op(&first)];
        while batch.len() < max_ops {
            match local_ops.try_recv() {
                Ok(op) => batch.push(encode_op(&op)),
                Err(_) => break,
            }
        }
        metrics.gossip.push_queue.set(local_ops.len() as i64);
        let now = engine.mono_ms();
        let targets = engine.with_cluster(|c| c.push_targets(now, fresh_ms, fanout));
        let from = me_pb(&engine);
        for addr in targets {
            let Ok(permit) = inflight.clone().try_acquire_owned() else {
                metrics.gossip.pushes_skipped.inc();
                tracing::debug!(peer = %addr, "push skipped: too many in flight");
                continue;
            };
            let Some(mut client) = channels.client(&addr) else {
                continue;
            };
            let request = pb::PushRequest {
                from: Some(from.clone()),
                ops: batch.clone(),
            };
            engine.count_sent(
                MessageKind::Push,
                &engine.region_of(&addr),
                batch.iter().map(Vec::len).sum(),
            );
            tasks.spawn(async move {
                if let Err(e) = client.push(request).await {
                    tracing::debug!(peer = %addr, error = %e, "eager push failed; anti-entropy will deliver");
                }
                drop(permit);
            });
        }
        while tasks.try_join_next().is_some() {}
    }
    tasks.shutdown().await;
}
