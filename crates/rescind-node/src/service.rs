//! The `rescind.v1.Revocations` gRPC service.

use std::sync::Arc;
use std::time::Duration;

use rescind_proto::v1 as pb;
use rescind_proto::v1::revocations_server::Revocations;
use tonic::{Request, Response, Status};
use tracing::Instrument;

use crate::auth::Auth;
use crate::convert::{self, invalid};
use crate::engine::{Engine, EngineError};
use crate::metrics::{Api, CheckOutcome};
use crate::watch::{WatchHub, WatchStream};

/// Serves checks from memory and revokes through the writer.
#[derive(Clone)]
pub struct RevocationService {
    engine: Engine,
    auth: Auth,
    watch: Arc<WatchHub>,
    /// Upper bound on a consistency-token wait (the request deadline may be shorter).
    max_consistency_wait: Duration,
}

impl RevocationService {
    /// A service over `engine`.
    pub fn new(engine: Engine, auth: Auth, max_consistency_wait: Duration, watch: Arc<WatchHub>) -> Self {
        Self {
            engine,
            auth,
            watch,
            max_consistency_wait,
        }
    }

    /// How long a consistency-token wait may take: the configured maximum, or
    /// 90% of the caller's deadline if that is shorter, so the caller gets our
    /// clear UNAVAILABLE rather than its own timeout.
    fn wait_bound(&self, metadata: &tonic::metadata::MetadataMap) -> Duration {
        wait_bound(metadata, self.max_consistency_wait)
    }
}

/// How long a consistency-token wait may take: `max`, or 90% of the caller's
/// deadline (`grpc-timeout`) if that is shorter.
pub fn wait_bound(metadata: &tonic::metadata::MetadataMap, max: Duration) -> Duration {
    grpc_timeout(metadata).map_or(max, |t| t.saturating_sub(t / 10).min(max))
}

fn engine_status(e: EngineError) -> Status {
    match e {
        EngineError::NotCaughtUp { .. } | EngineError::Unavailable(_) | EngineError::Recovering => {
            Status::unavailable(e.to_string())
        }
        EngineError::Unrecoverable(_) => Status::unavailable(e.to_string()),
        EngineError::Storage(_) => Status::internal(e.to_string()),
    }
}

/// The `grpc-timeout` header: digits then a unit (H M S m u n).
pub fn grpc_timeout(metadata: &tonic::metadata::MetadataMap) -> Option<Duration> {
    let v = metadata.get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = v.split_at(v.len().checked_sub(1)?);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.saturating_mul(3600)),
        "M" => Duration::from_secs(n.saturating_mul(60)),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

#[tonic::async_trait]
impl Revocations for RevocationService {
    type WatchStream = WatchStream;

    async fn list_revocations(
        &self,
        request: Request<pb::ListRevocationsRequest>,
    ) -> Result<Response<pb::ListRevocationsResponse>, Status> {
        let span = tracing::info_span!("rpc.list_revocations");
        async move {
            // Actors, reasons and token ids: for operators only.
            self.auth.require_admin(request.metadata())?;
            let r = request.into_inner();
            let (filter, page) = crate::audit_rpc::filter_of(&r).map_err(invalid)?;
            let listing = self
                .engine
                .list_revocations(filter, r.cursor, page)
                .await
                .map_err(engine_status)?
                .map_err(|e| match e {
                    crate::audit::ListError::Cursor => invalid(rescind_core::limits::FieldError::new(
                        "cursor",
                        "not from this node",
                    )),
                    crate::audit::ListError::Store(e) => Status::internal(e.to_string()),
                })?;
            Ok(Response::new(crate::audit_rpc::response_of(
                listing,
                self.engine.node_id(),
            )))
        }
        .instrument(span)
        .await
    }

    async fn watch(&self, request: Request<pb::WatchRequest>) -> Result<Response<WatchStream>, Status> {
        let span = tracing::debug_span!("rpc.watch");
        async move {
            self.auth.require_reader(request.metadata())?;
            // A replica must never be fed a partial state.
            self.engine.serving().map_err(engine_status)?;
            let stream = self.watch.open(request.into_inner()).await?;
            Ok(Response::new(stream))
        }
        .instrument(span)
        .await
    }

    async fn check(&self, request: Request<pb::CheckRequest>) -> Result<Response<pb::CheckResponse>, Status> {
        let span = tracing::debug_span!("rpc.check");
        async move {
            self.auth.require_reader(request.metadata())?;
            let valid = convert::check(request.get_ref().into()).map_err(invalid)?;
            let failed = |e| count_failed(&self.engine, Api::Grpc, 1, e);
            if let Some(token) = &valid.consistency {
                let bound = self.wait_bound(request.metadata());
                tracing::debug!(?bound, header = ?request.metadata().get("grpc-timeout"), "waiting for consistency token");
                self.engine.wait_for(token, bound).await.map_err(failed)?;
            }
            self.engine.serving().map_err(failed)?;
            let d = self.engine.check(&valid.query);
            self.engine.metrics().checks.one(Api::Grpc, CheckOutcome::of(&d));
            Ok(Response::new(convert::decision(
                d,
                self.engine.node_id(),
                self.engine.staleness_ms(),
            )))
        }
        .instrument(span)
        .await
    }

    async fn check_batch(
        &self,
        request: Request<pb::CheckBatchRequest>,
    ) -> Result<Response<pb::CheckBatchResponse>, Status> {
        let span = tracing::debug_span!("rpc.check_batch", n = request.get_ref().len());
        async move {
            self.auth.require_reader(request.metadata())?;
            let valid = convert::check_batch(request.get_ref()).map_err(invalid)?;
            let bound = self.wait_bound(request.metadata());
            let n = valid.queries.len() as u64;
            let failed = |e| count_failed(&self.engine, Api::Grpc, n, e);
            for token in &valid.consistency {
                self.engine.wait_for(token, bound).await.map_err(failed)?;
            }
            self.engine.serving().map_err(failed)?;
            let decisions = self.engine.check_many(&valid.queries);
            let checks = &self.engine.metrics().checks;
            for d in &decisions {
                checks.one(Api::Grpc, CheckOutcome::of(d));
            }
            // Node id and staleness go once on the batch, not on every result.
            let results = decisions.into_iter().map(convert::result).collect();
            Ok(Response::new(pb::CheckBatchResponse {
                results,
                node_id: self.engine.node_id().to_owned(),
                staleness_ms: self.engine.staleness_ms(),
            }))
        }
        .instrument(span)
        .await
    }

    async fn revoke(
        &self,
        request: Request<pb::RevokeRequest>,
    ) -> Result<Response<pb::RevokeResponse>, Status> {
        let span = tracing::info_span!(
            "rpc.revoke",
            id = tracing::field::Empty,
            seq = tracing::field::Empty
        );
        async move {
            let who = self.auth.require_admin(request.metadata())?;
            let mut cmd = convert::revoke(request.into_inner()).map_err(invalid)?;
            cmd.actor = who.actor(&cmd.actor);
            let label = match &cmd.target {
                crate::engine::RevokeTarget::Token { token_id, .. } => {
                    format!("token:{}", self.auth.redactor().short(token_id))
                }
                crate::engine::RevokeTarget::Cutoff { kind, principal, .. } => {
                    format!("{}:{}", kind.name(), self.auth.redactor().short(principal))
                }
            };
            tracing::Span::current().record("id", label.as_str());
            let out = self.engine.revoke(cmd).await.map_err(engine_status)?;
            tracing::Span::current().record("seq", out.seq);
            tracing::info!(already = out.already_revoked, "revocation durable");
            Ok(Response::new(pb::RevokeResponse {
                consistency_token: out.token.encode(),
                already_revoked: out.already_revoked,
                node_id: self.engine.node_id().to_owned(),
                seq: out.seq,
            }))
        }
        .instrument(span)
        .await
    }

    async fn revoke_batch(
        &self,
        request: Request<pb::RevokeBatchRequest>,
    ) -> Result<Response<pb::RevokeBatchResponse>, Status> {
        let span = tracing::info_span!("rpc.revoke_batch", n = request.get_ref().revocations.len());
        async move {
            let who = self.auth.require_admin(request.metadata())?;
            let mut cmds = convert::revoke_batch(request.into_inner().revocations).map_err(invalid)?;
            for cmd in &mut cmds {
                cmd.actor = who.actor(&cmd.actor);
            }
            let outs = self.engine.revoke_many(cmds).await.map_err(engine_status)?;
            let answer = convert::revoke_batch_answer(&outs, self.engine.node_id());
            tracing::info!(
                revoked = answer.revoked,
                already = answer.already_revoked,
                "revocation batch durable"
            );
            Ok(Response::new(answer))
        }
        .instrument(span)
        .await
    }

    async fn status(
        &self,
        request: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusResponse>, Status> {
        let _span = tracing::debug_span!("rpc.status").entered();
        self.auth.require_reader(request.metadata())?;
        Ok(Response::new(status_response(&self.engine, &self.watch)))
    }

    async fn list_peers(
        &self,
        request: Request<pb::ListPeersRequest>,
    ) -> Result<Response<pb::ListPeersResponse>, Status> {
        let _span = tracing::debug_span!("rpc.list_peers").entered();
        self.auth.require_reader(request.metadata())?;
        let now = self.engine.mono_ms();
        let peers = self.engine.with_cluster(|c| c.view(now));
        Ok(Response::new(pb::ListPeersResponse {
            peers: peers
                .into_iter()
                .map(|p| pb::Peer {
                    name: p.info.name,
                    region: p.info.region,
                    addr: p.info.addr,
                    incarnation: format!("{:016x}", p.info.incarnation),
                    removed: p.removed,
                    last_contact_ago_ms: p.last_contact_ago_ms,
                    staleness_ms: p.staleness_ms,
                })
                .collect(),
        }))
    }

    async fn remove_peer(
        &self,
        request: Request<pb::RemovePeerRequest>,
    ) -> Result<Response<pb::RemovePeerResponse>, Status> {
        let _span = tracing::info_span!("rpc.remove_peer").entered();
        self.auth.require_admin(request.metadata())?;
        let name = request.into_inner().name;
        rescind_core::limits::label("name", &name).map_err(invalid)?;
        let removed = self.engine.with_cluster(|c| c.remove(&name));
        if removed {
            tracing::info!(peer = %name, "peer retired");
        }
        Ok(Response::new(pb::RemovePeerResponse { removed }))
    }
}

/// The node's `Status` answer (gRPC and the HTTP API's `/v1/status`).
pub fn status_response(engine: &Engine, watch: &WatchHub) -> pb::StatusResponse {
    let s = engine.status();
    pb::StatusResponse {
        node_id: s.node_id,
        node_name: s.identity.node_name,
        incarnation: format!("{:016x}", s.identity.incarnation),
        region: s.region,
        deny_entries: s.deny_entries,
        cutoffs: s.cutoffs,
        digest: s.digest.to_string(),
        version_vector: s
            .version_vector
            .iter()
            .map(|(o, seq)| pb::OriginSeq {
                origin: o.to_string(),
                seq: *seq,
            })
            .collect(),
        staleness_ms: s.staleness_ms,
        expired_pruned: s.expired_pruned,
        uptime_ms: s.uptime_ms,
        peer_lag: s
            .peers
            .iter()
            .filter(|p| !p.removed)
            .map(|p| pb::PeerLag {
                node: p.info.name.clone(),
                region: p.info.region.clone(),
                staleness_ms: p.staleness_ms,
            })
            .collect(),
        gc_last_before: s.gc_last.0,
        gc_last_after: s.gc_last.1,
        clock: s
            .version_vector
            .iter()
            .map(|(o, seq)| pb::ClockEntry {
                origin_node: o.node.clone(),
                incarnation: o.incarnation,
                seq: *seq,
            })
            .collect(),
        cluster_id: watch.cluster_id().to_owned(),
        watchers: watch.watchers(),
        watchers_cut_off: watch.cut_off(),
        upstream: String::new(),
        deny_bytes: s.deny_bytes,
        recovering: s.recovering,
        checkpoint_generation: s.checkpoint.generation,
        checkpoint_bytes: s.checkpoint.bytes,
        log_ops_dropped: s.checkpoint.log_ops_dropped,
        disk_checkpoint_bytes: s.disk_checkpoint_bytes,
        disk_database_bytes: s.disk_database_bytes,
    }
}

/// Count `n` checks of `api` that `e` left without an answer (a consistency
/// token not caught up with, a node recovering), and turn `e` into a status.
pub(crate) fn count_failed(engine: &Engine, api: Api, n: u64, e: EngineError) -> Status {
    let outcome = match &e {
        EngineError::NotCaughtUp { .. } => Some(CheckOutcome::NotCaughtUp),
        EngineError::Recovering => Some(CheckOutcome::Recovering),
        _ => None,
    };
    if let Some(o) = outcome {
        engine.metrics().checks.count(api, o, n);
    }
    engine_status(e)
}
