//! `rescind edge`: a sidecar holding a [`Replica`] and serving `Check`,
//! `CheckBatch` and `Status` from local memory on `--listen`, so a gateway
//! in any language gets answers without a network round trip to a node.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use rescind_client::{ClientConfig, Replica, ReplicaConfig};
use rescind_node::auth::Auth;
use rescind_node::convert::{self, invalid};
use rescind_proto::v1 as pb;
use rescind_proto::v1::revocations_server::{Revocations, RevocationsServer};
use tonic::{Request, Response, Status};

use crate::timearg::parse_duration;

/// Flags of `rescind edge`; each has an env twin.
#[derive(Args, Debug)]
pub struct EdgeArgs {
    /// Where to serve the Check / CheckBatch / Status API.
    #[arg(long, env = "RESCIND_EDGE_LISTEN", default_value = "127.0.0.1:7401")]
    listen: SocketAddr,
    /// An upstream node to follow, host:port (repeatable; the env twin takes
    /// a comma-separated list). The nearest healthy one is followed; on its
    /// loss the edge resumes on another.
    #[arg(
        long = "upstream",
        env = "RESCIND_UPSTREAMS",
        value_delimiter = ',',
        required = true
    )]
    upstreams: Vec<String>,
    /// This edge's region: upstreams in it are preferred.
    #[arg(long, env = "RESCIND_REGION")]
    region: Option<String>,
    /// Bearer token for the upstreams' reads, if they require one.
    #[arg(long, env = "RESCIND_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Guard this edge's reads with a bearer token too (env only: a flag shows in `ps`).
    #[arg(skip)]
    check_token: Option<String>,
    /// Keep a local checkpoint here, so a restart resumes instead of downloading everything.
    #[arg(long, env = "RESCIND_EDGE_CHECKPOINT")]
    checkpoint: Option<PathBuf>,
    /// How often the checkpoint is saved (DUR).
    #[arg(long, env = "RESCIND_EDGE_CHECKPOINT_INTERVAL", default_value = "60s", value_parser = parse_duration)]
    checkpoint_interval: Duration,
    /// Follow only nodes of this cluster (the `cluster_id` a node's Status shows).
    /// Default: the first upstream's, kept from then on.
    #[arg(long, env = "RESCIND_CLUSTER_ID")]
    cluster_id: Option<String>,
    /// Name this edge answers as (`node_id` of its answers).
    #[arg(long, env = "RESCIND_EDGE_NAME", default_value = "edge")]
    name: String,
    /// Longest a check with a consistency token waits for the edge to catch up (DUR).
    #[arg(long, env = "RESCIND_MAX_CONSISTENCY_WAIT", default_value = "5s", value_parser = parse_duration)]
    max_consistency_wait: Duration,
    /// Threads serving checks, each with its own single-threaded runtime,
    /// as a node's (0 = one per CPU core).
    #[arg(long, env = "RESCIND_EDGE_SERVE_THREADS", default_value_t = 0)]
    serve_threads: usize,
    /// Most client connections served at once; further ones wait to be accepted.
    #[arg(long, env = "RESCIND_EDGE_MAX_CONNECTIONS", default_value_t = 1024)]
    max_connections: usize,
    /// Log filter (tracing EnvFilter syntax), logs go to stderr.
    #[arg(long, env = "RESCIND_LOG", default_value = "info")]
    log: String,
}

/// The edge's gRPC service.
#[derive(Clone)]
struct EdgeService {
    replica: Arc<Replica>,
    auth: Auth,
    node_id: String,
    max_consistency_wait: Duration,
}

fn staleness_ms(s: Option<Duration>) -> u64 {
    s.map_or(u64::MAX, |d| d.as_millis() as u64)
}

fn edges_do_not(what: &str) -> Status {
    Status::unimplemented(format!(
        "an edge serves Check, CheckBatch and Status only; send {what} to a node (one of its --upstream)"
    ))
}

impl EdgeService {
    async fn wait(
        &self,
        token: &rescind_core::ConsistencyToken,
        metadata: &tonic::metadata::MetadataMap,
    ) -> Result<(), Status> {
        let bound = rescind_node::service::wait_bound(metadata, self.max_consistency_wait);
        if self.replica.wait_for(token, bound).await {
            Ok(())
        } else {
            Err(Status::unavailable(format!(
                "this edge has not caught up with the consistency token yet (waited {} ms); retry, or ask a node",
                bound.as_millis()
            )))
        }
    }
}

#[tonic::async_trait]
impl Revocations for EdgeService {
    type WatchStream = futures_util::stream::Empty<Result<pb::WatchEvent, Status>>;

    async fn check(&self, request: Request<pb::CheckRequest>) -> Result<Response<pb::CheckResponse>, Status> {
        self.auth.require_reader(request.metadata())?;
        let valid = convert::check(request.get_ref().into()).map_err(invalid)?;
        if let Some(token) = &valid.consistency {
            self.wait(token, request.metadata()).await?;
        }
        let a = self.replica.check(&valid.query);
        Ok(Response::new(convert::decision(
            a.decision,
            &self.node_id,
            staleness_ms(a.staleness),
        )))
    }

    async fn check_batch(
        &self,
        request: Request<pb::CheckBatchRequest>,
    ) -> Result<Response<pb::CheckBatchResponse>, Status> {
        self.auth.require_reader(request.metadata())?;
        let valid = convert::check_batch(request.get_ref()).map_err(invalid)?;
        for token in &valid.consistency {
            self.wait(token, request.metadata()).await?;
        }
        let (decisions, staleness) = self.replica.check_many(&valid.queries);
        Ok(Response::new(pb::CheckBatchResponse {
            results: decisions.into_iter().map(convert::result).collect(),
            node_id: self.node_id.clone(),
            staleness_ms: staleness_ms(staleness),
        }))
    }

    async fn revoke(&self, _: Request<pb::RevokeRequest>) -> Result<Response<pb::RevokeResponse>, Status> {
        Err(edges_do_not("revocations"))
    }

    async fn revoke_batch(
        &self,
        _: Request<pb::RevokeBatchRequest>,
    ) -> Result<Response<pb::RevokeBatchResponse>, Status> {
        Err(edges_do_not("revocations"))
    }

    async fn status(
        &self,
        request: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusResponse>, Status> {
        self.auth.require_reader(request.metadata())?;
        let s = self.replica.status();
        let clock = rescind_client::answer::vector_to_pb(&s.clock);
        Ok(Response::new(pb::StatusResponse {
            node_id: self.node_id.clone(),
            node_name: self.node_id.clone(),
            region: String::new(),
            deny_entries: s.deny_entries,
            cutoffs: s.cutoffs,
            digest: s.digest.to_string(),
            version_vector: s
                .clock
                .iter()
                .map(|(o, seq)| pb::OriginSeq {
                    origin: o.to_string(),
                    seq,
                })
                .collect(),
            staleness_ms: staleness_ms(s.staleness),
            expired_pruned: s.expired_pruned,
            deny_bytes: self.replica.deny_bytes() as u64,
            clock,
            cluster_id: s.cluster_id.unwrap_or_default(),
            upstream: match (s.upstream_node, s.upstream) {
                (Some(node), Some(addr)) => format!("{node} at {addr}"),
                _ => String::new(),
            },
            ..Default::default()
        }))
    }

    async fn list_peers(
        &self,
        _: Request<pb::ListPeersRequest>,
    ) -> Result<Response<pb::ListPeersResponse>, Status> {
        Err(edges_do_not("peer listings"))
    }

    async fn remove_peer(
        &self,
        _: Request<pb::RemovePeerRequest>,
    ) -> Result<Response<pb::RemovePeerResponse>, Status> {
        Err(edges_do_not("peer removals"))
    }

    async fn watch(&self, _: Request<pb::WatchRequest>) -> Result<Response<Self::WatchStream>, Status> {
        Err(edges_do_not("Watch subscriptions"))
    }

    async fn list_revocations(
        &self,
        _: Request<pb::ListRevocationsRequest>,
    ) -> Result<Response<pb::ListRevocationsResponse>, Status> {
        Err(edges_do_not("audit listings"))
    }
}

/// The edge's services, one clone per serving thread.
#[derive(Clone)]
struct EdgeServices(RevocationsServer<EdgeService>);

impl rescind_node::net::Serve for EdgeServices {
    fn serve_connections<S>(
        self,
        incoming: S,
        shutdown: impl std::future::Future<Output = ()> + Send,
    ) -> impl std::future::Future<Output = Result<(), tonic::transport::Error>>
    where
        S: futures_util::Stream<Item = std::io::Result<rescind_node::net::LimitedConn>> + Send,
    {
        tonic::transport::Server::builder()
            // The check token's failures are throttled per source address,
            // which only the server may set.
            .layer(tower::util::MapRequestLayer::new(
                rescind_node::server::with_source,
            ))
            .add_service(self.0)
            .serve_with_incoming_shutdown(incoming, shutdown)
    }
}

/// Run an edge until SIGINT or SIGTERM; saves its checkpoint on the way out.
pub async fn edge(mut args: EdgeArgs) -> anyhow::Result<()> {
    let _logs = crate::traces::init(
        &args.log,
        crate::traces::LogFormat::Text,
        &crate::traces::TraceArgs::default(),
        &[],
    )?;
    args.check_token = std::env::var("RESCIND_CHECK_TOKEN")
        .ok()
        .filter(|t| !t.is_empty());
    rescind_core::limits::label("--name", &args.name).map_err(|e| anyhow::anyhow!("{e}"))?;
    if args.serve_threads > rescind_node::config::MAX_SERVE_THREADS || args.max_connections == 0 {
        anyhow::bail!(
            "--serve-threads must be 0..={} and --max-connections at least 1",
            rescind_node::config::MAX_SERVE_THREADS
        );
    }
    let mut client = ClientConfig::new(args.upstreams.iter().cloned());
    client.region = args.region.clone();
    client.token = args.token.clone();
    let mut config = ReplicaConfig::new(client);
    config.checkpoint = args.checkpoint.clone();
    config.checkpoint_interval = args.checkpoint_interval;
    config.cluster_id = args.cluster_id.clone();
    let replica = Arc::new(Replica::start(config).await?);
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    println!(
        "rescind edge listening on {addr} (following {})",
        args.upstreams.join(",")
    );
    use std::io::Write;
    std::io::stdout().flush().ok();
    let service = EdgeService {
        replica: replica.clone(),
        auth: Auth::for_reads(args.check_token.as_deref()),
        node_id: format!("edge-{}", args.name),
        max_consistency_wait: args.max_consistency_wait,
    };
    let services = EdgeServices(
        RevocationsServer::new(service)
            .max_decoding_message_size(rescind_core::limits::MAX_MESSAGE_BYTES)
            .max_encoding_message_size(rescind_core::limits::MAX_MESSAGE_BYTES),
    );
    let threads = match args.serve_threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    rescind_node::net::serve_on_threads(
        services,
        listener,
        threads,
        rescind_node::net::ConnLimits {
            max_connections: args.max_connections,
            idle: rescind_node::limits::LimitsConfig::default().idle(),
            tls: None,
        },
        crate::serve::shutdown_signal(),
    )
    .await
    .context("serving")?;
    match Arc::try_unwrap(replica) {
        Ok(r) => r.shutdown().await?,
        Err(_) => tracing::warn!("requests still held the replica; checkpoint not saved"),
    }
    Ok(())
}
