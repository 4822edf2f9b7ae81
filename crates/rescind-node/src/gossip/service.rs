//! The `rescind.v1.Peers` service: what a node answers its peers.
//!
//! A thin transport: each handler converts the protobuf request
//! ([`super::wire`]), calls the protocol core (`rescind_gossip::round`,
//! `rescind_gossip::snapshot`) over the cluster view and the store, applies
//! what the core hands back through the engine, and converts the answer.

use std::sync::Arc;

use rescind_gossip::snapshot::{self, PageError};
use rescind_gossip::{Limits, NodeInfo, Push, plan_ops, round};
use rescind_proto::v1 as pb;
use rescind_proto::v1::peers_server::Peers;
use tonic::{Request, Response, Status};
use tracing::Instrument;

use super::client::{CLUSTER_KEY_HEADER, PeerChannels};
use super::source::StoreSource;
use super::wire;
use crate::auth::SharedSecret;
use crate::convert::invalid;
use crate::engine::{Engine, EngineError};
use crate::metrics::MessageKind;

/// Entries per snapshot page (ids are at most 512 bytes: a page stays < 1 MiB).
pub const SNAPSHOT_PAGE: usize = 1024;

/// Answers peers. Without a cluster key every call is refused.
#[derive(Clone)]
pub struct PeerService {
    engine: Engine,
    /// Every key accepted (empty: peer traffic is off).
    keys: Arc<[SharedSecret]>,
    limits: Limits,
    /// Where to relay ops pushed in from another region (None: no gossip).
    relay: Option<Arc<PeerChannels>>,
}

fn internal(e: impl std::fmt::Display) -> Status {
    Status::internal(e.to_string())
}

fn engine_status(e: EngineError) -> Status {
    Status::unavailable(e.to_string())
}

fn page_status(e: PageError) -> Status {
    match e {
        PageError::Cursor(e) => invalid(e),
        PageError::Source(e) => internal(e),
    }
}

impl PeerService {
    /// A peer service over `engine` accepting any of `cluster_keys`; none
    /// refuses everything.
    pub fn new(
        engine: Engine,
        cluster_keys: &[String],
        limits: Limits,
        relay: Option<Arc<PeerChannels>>,
    ) -> Self {
        Self {
            engine,
            keys: cluster_keys.iter().map(|k| SharedSecret::new(k)).collect(),
            limits,
            relay,
        }
    }

    /// Forward ops pushed in from another region to this region's other
    /// nodes ([`round::relay_targets`]): the origin pushes to one node per
    /// region, and the region's nearby nodes get them a local round trip
    /// later instead of waiting for anti-entropy. Relayed pushes come from our
    /// own region, so they are never relayed again.
    async fn relay(&self, from: &NodeInfo, ops: &[Vec<u8>]) {
        let Some(channels) = &self.relay else { return };
        let (me, targets) = self
            .engine
            .with_cluster(|c| (c.me().clone(), round::relay_targets(c, from)));
        let calls = targets.into_iter().filter_map(|addr| {
            let mut client = channels.client(&addr)?;
            let request = wire::push_to_pb(Push {
                from: me.clone(),
                ops: ops.to_vec(),
            });
            self.engine.count_sent(
                MessageKind::Relay,
                &self.engine.region_of(&addr),
                ops.iter().map(Vec::len).sum(),
            );
            Some(async move {
                if let Err(e) = client.push(request).await {
                    tracing::debug!(peer = %addr, error = %e, "relay failed; anti-entropy will deliver");
                }
            })
        });
        futures_util::future::join_all(calls).await;
    }

    #[allow(clippy::result_large_err)]
    fn authenticate<T>(&self, req: &Request<T>) -> Result<(), Status> {
        if self.keys.is_empty() {
            return Err(Status::permission_denied(
                "peer traffic is disabled: this node has no cluster key configured",
            ));
        }
        let given = req
            .metadata()
            .get(CLUSTER_KEY_HEADER)
            .and_then(|v| v.to_str().ok());
        // Every key is compared, so the time taken does not say which matched.
        let matched = given.is_some_and(|g| self.keys.iter().fold(false, |any, k| k.matches(g) | any));
        if matched {
            return Ok(());
        }
        let from = req
            .remote_addr()
            .map(|a| a.to_string())
            .unwrap_or_else(|| "unknown".into());
        tracing::warn!(peer = %from, "refused a peer call with a missing or wrong cluster key");
        Err(Status::unauthenticated(format!(
            "{CLUSTER_KEY_HEADER}: missing or wrong cluster key"
        )))
    }
}

/// A node rebuilding its state serves no exchange or snapshot: a peer
/// (itself perhaps recovering) must not take its partial state for whole.
fn refuse_while_recovering(engine: &Engine) -> Result<(), Status> {
    if engine.is_recovering() {
        return Err(Status::unavailable(
            "this node is recovering its state from a peer; ask another node",
        ));
    }
    Ok(())
}

#[tonic::async_trait]
impl Peers for PeerService {
    async fn exchange(
        &self,
        request: Request<pb::ExchangeRequest>,
    ) -> Result<Response<pb::ExchangeResponse>, Status> {
        self.authenticate(&request)?;
        refuse_while_recovering(&self.engine)?;
        let req = wire::exchange_from_pb(request.into_inner()).map_err(invalid)?;
        let span = tracing::debug_span!("peer.exchange", peer = %req.from.name);
        async move {
            self.engine
                .count_received(MessageKind::Exchange, &req.from.region, 0);
            let now = self.engine.mono_ms();
            // Ages before the clock: the clock we send can only cover more.
            let greeting = self.engine.with_cluster(|c| round::greet(c, &req, now));
            // What the caller holds durably: bounds this node's compaction.
            self.engine.note_peer_vector(&req.from, &req.clock);
            let mine = self.engine.durable_clock();
            let (limits, mine2, theirs) = (self.limits, mine.clone(), req.clock);
            let plan = self
                .engine
                .store_read(move |store| plan_ops(&StoreSource(store), &mine2, &theirs, &limits))
                .await
                .map_err(internal)?
                .map_err(internal)?;
            let answer = greeting.answer(&mine, plan);
            self.engine.count_sent(
                MessageKind::Exchange,
                &req.from.region,
                answer.ops.iter().map(Vec::len).sum(),
            );
            Ok(Response::new(wire::answer_to_pb(answer)))
        }
        .instrument(span)
        .await
    }

    async fn push(&self, request: Request<pb::PushRequest>) -> Result<Response<pb::PushResponse>, Status> {
        self.authenticate(&request)?;
        let push = wire::push_from_pb(request.into_inner()).map_err(invalid)?;
        let span = tracing::debug_span!("peer.push", peer = %push.from.name, ops = push.ops.len());
        async move {
            let bytes = push.ops.iter().map(Vec::len).sum();
            self.engine
                .count_received(MessageKind::Push, &push.from.region, bytes);
            let now = self.engine.mono_ms();
            let ops = self
                .engine
                .with_cluster(|c| round::on_push(c, &push, now))
                .map_err(invalid)?;
            let applied = if ops.is_empty() {
                0
            } else {
                self.engine.apply_remote(ops).await.map_err(engine_status)?
            };
            if applied > 0 {
                self.relay(&push.from, &push.ops).await;
            }
            Ok(Response::new(pb::PushResponse {
                applied: applied as u64,
            }))
        }
        .instrument(span)
        .await
    }

    async fn snapshot(
        &self,
        request: Request<pb::SnapshotRequest>,
    ) -> Result<Response<pb::SnapshotPage>, Status> {
        self.authenticate(&request)?;
        refuse_while_recovering(&self.engine)?;
        let r = request.into_inner();
        let from = wire::node_from_pb("from", r.from).map_err(invalid)?;
        let span = tracing::debug_span!("peer.snapshot", peer = %from.name);
        let cursor = r.cursor;
        let first_page = cursor.is_empty();
        let region = from.region.clone();
        self.engine.count_received(MessageKind::Snapshot, &region, 0);
        let page = self
            .engine
            .store_read(move |store| snapshot::page(&StoreSource(store), &cursor, SNAPSHOT_PAGE))
            .instrument(span)
            .await
            .map_err(internal)?
            .map_err(page_status)?;
        self.engine
            .count_sent(MessageKind::Snapshot, &region, page.entry_bytes());
        if first_page {
            self.engine.metrics().gossip.snapshot(false);
        }
        Ok(Response::new(wire::page_to_pb(page)))
    }
}
