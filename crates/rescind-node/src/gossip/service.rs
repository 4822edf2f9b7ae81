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

use super::client::{CLUSTER_ID_HEADER, CLUSTER_KEY_HEADER, PeerChannels};
use super::source::StoreSource;
use super::wire;
use crate::auth::SharedSecret;
use crate::convert::invalid;
use crate::engine::{Engine, EngineError};
use crate::metrics::MessageKind;
use crate::net::ConnInfo;

/// Peer refusals logged at `warn`: once a minute per kind (and cluster id
/// or claimed name), since callers retry every round.
static REFUSALS: crate::log_limit::LogLimit = crate::log_limit::LogLimit::new();

/// A verified peer certificate, as the handshake kept it.
type PeerCert = Arc<rustls::pki_types::CertificateDer<'static>>;

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
    /// Who may call: the configured cluster id, and whether peer mTLS is on.
    admission: Admission,
}

/// What a peer call must show besides the cluster key.
#[derive(Clone, Debug)]
pub struct Admission {
    /// This node's cluster id: a caller naming another, or none, is refused.
    pub cluster_id: String,
    /// The id was set by the operator (`--cluster-id`), so refusals may quote
    /// it. A derived id (a hash of the first cluster key) is never shown to
    /// a caller that has not authenticated: it would let them test guessed
    /// keys offline.
    pub cluster_id_configured: bool,
    /// Peer mutual TLS is on: a caller needs a peer certificate (chained to
    /// the cluster CA, checked in the handshake) that names the node it
    /// claims to be.
    pub peer_tls: bool,
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
        admission: Admission,
    ) -> Self {
        Self {
            engine,
            keys: cluster_keys.iter().map(|k| SharedSecret::new(k)).collect(),
            limits,
            relay,
            admission,
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

    /// The cluster id, the peer certificate's presence, and the cluster key
    /// (in that order, so two clusters learn that they are two clusters).
    /// Returns the peer certificate to bind the caller's name to.
    #[allow(clippy::result_large_err)]
    fn authenticate<T>(&self, req: &Request<T>) -> Result<Option<PeerCert>, Status> {
        let remote = || {
            req.extensions()
                .get::<ConnInfo>()
                .and_then(|c| c.remote)
                .map_or_else(|| "unknown".to_owned(), |a| a.to_string())
        };
        if self.keys.is_empty() {
            return Err(Status::permission_denied(
                "peer traffic is disabled: this node has no cluster key configured",
            ));
        }
        let theirs = req
            .metadata()
            .get(CLUSTER_ID_HEADER)
            .and_then(|v| v.to_str().ok());
        let mine = self
            .admission
            .cluster_id_configured
            .then_some(self.admission.cluster_id.as_str());
        check_cluster_id(&self.admission.cluster_id, mine, theirs, remote)?;
        let cert = if self.admission.peer_tls {
            let cert = req
                .extensions()
                .get::<ConnInfo>()
                .and_then(|c| c.peer_cert.clone());
            if cert.is_none() {
                if REFUSALS.first_in_a_while("no peer certificate") {
                    tracing::warn!(peer = %remote(), "refused a peer call without a peer certificate (logged once a minute)");
                }
                return Err(Status::unauthenticated(
                    "peer calls need mutual TLS with a certificate from the cluster CA (peer_tls_*)",
                ));
            }
            cert
        } else {
            None
        };
        self.check_key(req, remote)?;
        Ok(cert)
    }

    /// The caller's claimed node name is one its certificate is valid for.
    #[allow(clippy::result_large_err)]
    fn bind_name(&self, cert: Option<PeerCert>, from: &NodeInfo) -> Result<(), Status> {
        let Some(cert) = cert else {
            return Ok(());
        };
        if crate::tls::names::names_node(&cert, &from.name) {
            return Ok(());
        }
        if REFUSALS.first_in_a_while(&format!("name {}", from.name)) {
            tracing::warn!(claimed = %from.name, "refused a peer whose certificate does not name the node it claims to be");
        }
        Err(Status::permission_denied(format!(
            "from.name: the peer certificate is not valid for node `{}`",
            from.name
        )))
    }

    #[allow(clippy::result_large_err)]
    fn check_key<T>(&self, req: &Request<T>, remote: impl Fn() -> String) -> Result<(), Status> {
        let given = req
            .metadata()
            .get(CLUSTER_KEY_HEADER)
            .and_then(|v| v.to_str().ok());
        // Every key is compared, so the time taken does not say which matched.
        let matched = given.is_some_and(|g| self.keys.iter().fold(false, |any, k| k.matches(g) | any));
        if matched {
            return Ok(());
        }
        if REFUSALS.first_in_a_while("cluster key") {
            tracing::warn!(peer = %remote(), "refused a peer call with a missing or wrong cluster key (logged once a minute)");
        }
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
        let cert = self.authenticate(&request)?;
        refuse_while_recovering(&self.engine)?;
        let req = wire::exchange_from_pb(request.into_inner()).map_err(invalid)?;
        self.bind_name(cert, &req.from)?;
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
        let cert = self.authenticate(&request)?;
        let push = wire::push_from_pb(request.into_inner()).map_err(invalid)?;
        self.bind_name(cert, &push.from)?;
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
        let cert = self.authenticate(&request)?;
        refuse_while_recovering(&self.engine)?;
        let r = request.into_inner();
        let from = wire::node_from_pb("from", r.from).map_err(invalid)?;
        self.bind_name(cert, &from)?;
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

/// A caller's cluster id against this node's `id`: the same, or refused (a
/// caller sending none is refused too: every node sends its id). `shown` is
/// the id as a refusal may quote it (None: a derived id, kept unquoted).
#[allow(clippy::result_large_err)]
fn check_cluster_id(
    id: &str,
    shown: Option<&str>,
    theirs: Option<&str>,
    remote: impl Fn() -> String,
) -> Result<(), Status> {
    if theirs == Some(id) {
        return Ok(());
    }
    let mine = shown.map_or_else(
        || "this node's cluster (derived from its first cluster key)".to_owned(),
        |id| format!("cluster `{id}`"),
    );
    let Some(theirs) = theirs else {
        if REFUSALS.first_in_a_while("cluster-id missing") {
            tracing::warn!(peer = %remote(), "refused a peer call carrying no cluster id (logged once a minute)");
        }
        return Err(Status::failed_precondition(format!(
            "cluster_id: this node belongs to {mine}, the caller sent no cluster id: \
             give both the same --cluster-id (nodes before this check send one only when it is set)"
        )));
    };
    let theirs: String = theirs.chars().take(64).collect();
    if REFUSALS.first_in_a_while(&format!("cluster-id {theirs}")) {
        tracing::warn!(peer = %remote(), theirs, "refused a peer of another cluster (logged once a minute)");
    }
    Err(Status::failed_precondition(format!(
        "cluster_id: this node belongs to {mine}, the caller to `{theirs}`: \
         nodes of two clusters never merge; check --peer, --cluster-id and the cluster key"
    )))
}

#[cfg(test)]
mod tests {
    use super::check_cluster_id;

    #[test]
    fn a_caller_of_another_cluster_or_of_none_is_refused() {
        let remote = || "192.0.2.1:5000".to_owned();
        assert!(check_cluster_id("prod", Some("prod"), Some("prod"), remote).is_ok());
        let other = check_cluster_id("prod", Some("prod"), Some("staging"), remote).unwrap_err();
        assert_eq!(other.code(), tonic::Code::FailedPrecondition);
        assert!(other.message().contains("`staging`"), "{}", other.message());
        let none = check_cluster_id("prod", Some("prod"), None, remote).unwrap_err();
        assert_eq!(none.code(), tonic::Code::FailedPrecondition);
        assert!(
            none.message().contains("sent no cluster id"),
            "{}",
            none.message()
        );
    }

    #[test]
    fn a_derived_cluster_id_is_not_shown_to_the_caller() {
        let remote = || "192.0.2.1:5000".to_owned();
        let derived = "key-0123456789abcdef";
        for theirs in [None, Some("key-fedcba9876543210")] {
            let err = check_cluster_id(derived, None, theirs, remote).unwrap_err();
            assert_eq!(err.code(), tonic::Code::FailedPrecondition);
            assert!(!err.message().contains(derived), "{}", err.message());
        }
        assert!(check_cluster_id(derived, None, Some(derived), remote).is_ok());
    }
}
