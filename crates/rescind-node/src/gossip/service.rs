//! The `rescind.v1.Peers` service: what a node answers its peers.

use rescind_core::{Cutoff, PrincipalKind};
use rescind_gossip::wire::{decode_ops, encode_cutoff, encode_deny};
use rescind_gossip::{Limits, Plan, plan_ops};
use rescind_proto::v1 as pb;
use rescind_proto::v1::peers_server::Peers;
use serde::{Deserialize, Serialize};
use tonic::{Request, Response, Status};
use tracing::Instrument;

use std::sync::Arc;

use super::client::{CLUSTER_KEY_HEADER, PeerChannels};
use super::wire;
use crate::auth::SharedSecret;
use crate::convert::invalid;
use crate::engine::{Engine, EngineError};

/// Entries per snapshot page (ids are at most 512 bytes: a page stays < 1 MiB).
pub const SNAPSHOT_PAGE: usize = 1024;

/// Answers peers. Without a cluster key every call is refused.
#[derive(Clone)]
pub struct PeerService {
    engine: Engine,
    key: Option<SharedSecret>,
    limits: Limits,
    /// Where to relay ops pushed in from another region (None: no gossip).
    relay: Option<Arc<PeerChannels>>,
}

/// Where a snapshot continues.
#[derive(Debug, Serialize, Deserialize)]
enum Cursor {
    Deny(Option<String>),
    Cutoffs(Option<(PrincipalKind, String)>),
}

fn internal(e: impl std::fmt::Display) -> Status {
    Status::internal(e.to_string())
}

fn engine_status(e: EngineError) -> Status {
    Status::unavailable(e.to_string())
}

impl PeerService {
    /// A peer service over `engine`; `cluster_key` None refuses everything.
    pub fn new(
        engine: Engine,
        cluster_key: Option<&str>,
        limits: Limits,
        relay: Option<Arc<PeerChannels>>,
    ) -> Self {
        Self {
            engine,
            key: cluster_key.map(SharedSecret::new),
            limits,
            relay,
        }
    }

    /// Forward ops pushed in from another region to this region's other
    /// nodes: the origin pushes to one node per region, and the region's
    /// nearby nodes get them a local round trip later instead of waiting for
    /// anti-entropy. Relayed pushes come from our own region, so they are
    /// never relayed again.
    async fn relay(&self, from: &rescind_gossip::NodeInfo, ops: &[Vec<u8>]) {
        let Some(channels) = &self.relay else { return };
        let (me, targets) = self.engine.with_cluster(|c| (c.me().clone(), c.region_peers()));
        if from.region == me.region {
            return;
        }
        let calls = targets
            .into_iter()
            .filter(|a| *a != from.addr)
            .filter_map(|addr| {
                let mut client = channels.client(&addr)?;
                let request = pb::PushRequest {
                    from: Some(wire::node_to_pb(&me)),
                    ops: ops.to_vec(),
                };
                self.engine.count_sent(ops.iter().map(Vec::len).sum());
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
        let Some(key) = &self.key else {
            return Err(Status::permission_denied(
                "peer traffic is disabled: this node has no cluster key configured",
            ));
        };
        let given = req
            .metadata()
            .get(CLUSTER_KEY_HEADER)
            .and_then(|v| v.to_str().ok());
        if given.is_some_and(|g| key.matches(g)) {
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

#[tonic::async_trait]
impl Peers for PeerService {
    async fn exchange(
        &self,
        request: Request<pb::ExchangeRequest>,
    ) -> Result<Response<pb::ExchangeResponse>, Status> {
        self.authenticate(&request)?;
        let r = request.into_inner();
        let from = wire::node_from_pb("from", r.from).map_err(invalid)?;
        let span = tracing::debug_span!("peer.exchange", peer = %from.name);
        async move {
            let theirs = wire::clock_from_pb(&r.clock).map_err(invalid)?;
            let members = wire::members_from_pb(r.members).map_err(invalid)?;
            let now = self.engine.mono_ms();
            // Ages before the clock: the clock we send can only cover more.
            let (ages, records, me) = self.engine.with_cluster(|c| {
                c.contact(None, &from, now);
                c.learn(&members);
                (c.ages(now), c.records(), c.me().clone())
            });
            let mine = self.engine.durable_clock();
            let (limits, mine2) = (self.limits, mine.clone());
            let plan = self
                .engine
                .store_read(move |store| plan_ops(store, &mine2, &theirs, &limits))
                .await
                .map_err(internal)?
                .map_err(internal)?;
            let (ops, more, snapshot_needed) = match plan {
                Plan::UpToDate => (Vec::new(), false, false),
                Plan::Ops { ops, more } => (ops, more, false),
                Plan::Snapshot => (Vec::new(), false, true),
            };
            self.engine.count_sent(ops.iter().map(Vec::len).sum());
            Ok(Response::new(pb::ExchangeResponse {
                from: Some(wire::node_to_pb(&me)),
                clock: wire::clock_to_pb(&mine),
                ops,
                more,
                snapshot_needed,
                freshness: ages
                    .into_iter()
                    .map(|(node, age_ms)| pb::FreshnessAge { node, age_ms })
                    .collect(),
                members: wire::members_to_pb(&records),
            }))
        }
        .instrument(span)
        .await
    }

    async fn push(&self, request: Request<pb::PushRequest>) -> Result<Response<pb::PushResponse>, Status> {
        self.authenticate(&request)?;
        let r = request.into_inner();
        let from = wire::node_from_pb("from", r.from).map_err(invalid)?;
        let span = tracing::debug_span!("peer.push", peer = %from.name, ops = r.ops.len());
        async move {
            // Validate the whole message before anything touches the state.
            let ops = decode_ops(&r.ops).map_err(invalid)?;
            let now = self.engine.mono_ms();
            self.engine.with_cluster(|c| c.contact(None, &from, now));
            let applied = if ops.is_empty() {
                0
            } else {
                self.engine.apply_remote(ops).await.map_err(engine_status)?
            };
            if applied > 0 {
                self.relay(&from, &r.ops).await;
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
        let r = request.into_inner();
        let from = wire::node_from_pb("from", r.from).map_err(invalid)?;
        let span = tracing::debug_span!("peer.snapshot", peer = %from.name);
        let cursor: Cursor = if r.cursor.is_empty() {
            Cursor::Deny(None)
        } else {
            postcard::from_bytes(&r.cursor)
                .map_err(|_| Status::invalid_argument("cursor: not from this node"))?
        };
        let first = matches!(cursor, Cursor::Deny(None));
        let page = self
            .engine
            .store_read(move |store| snapshot_page(store, cursor, first))
            .instrument(span)
            .await
            .map_err(internal)?
            .map_err(internal)?;
        let bytes = page.deny.iter().chain(&page.cutoffs).map(Vec::len).sum();
        self.engine.count_sent(bytes);
        Ok(Response::new(page))
    }
}

/// One page. Flushes first, so every entry served is durable here: an entry
/// shipped and then lost in a crash could never be re-derived.
fn snapshot_page(
    store: &dyn rescind_store::Store,
    cursor: Cursor,
    first: bool,
) -> Result<pb::SnapshotPage, rescind_store::StoreError> {
    store.flush()?;
    let clock = if first {
        store
            .clock()?
            .into_iter()
            .map(|(o, seq)| pb::ClockEntry {
                origin_node: o.node,
                incarnation: o.incarnation,
                seq,
            })
            .collect()
    } else {
        Vec::new()
    };
    let mut page = pb::SnapshotPage {
        clock,
        ..Default::default()
    };
    let next = match cursor {
        Cursor::Deny(after) => {
            let entries = store.deny_page(after.as_deref(), SNAPSHOT_PAGE)?;
            let last = entries.last().map(|(id, _)| id.clone());
            page.deny = entries.iter().map(|(id, e)| encode_deny(id, e)).collect();
            match last {
                Some(id) if entries.len() == SNAPSHOT_PAGE => Cursor::Deny(Some(id)),
                _ => Cursor::Cutoffs(None),
            }
        }
        Cursor::Cutoffs(after) => {
            let entries: Vec<(PrincipalKind, String, Cutoff)> =
                store.cutoff_page(after.as_ref().map(|(k, p)| (*k, p.as_str())), SNAPSHOT_PAGE)?;
            page.cutoffs = entries.iter().map(|(k, p, c)| encode_cutoff(*k, p, *c)).collect();
            match entries.last() {
                Some((k, p, _)) if entries.len() == SNAPSHOT_PAGE => Cursor::Cutoffs(Some((*k, p.clone()))),
                _ => {
                    page.done = true;
                    return Ok(page);
                }
            }
        }
    };
    page.next_cursor = postcard::to_stdvec(&next).unwrap_or_default();
    Ok(page)
}
