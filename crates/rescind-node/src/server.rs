//! Opening a node (storage, identity, auth, state) and serving it.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use rescind_core::limits::MAX_MESSAGE_BYTES;
use rescind_proto::v1::revocations_server::RevocationsServer;
use rescind_store::{RealFs, SledStore, Store, StoreError};
use tokio::net::TcpListener;

use crate::auth::{Auth, AuthError, TokenSource};
use crate::clock::{SharedClock, SystemClock};
use crate::config::{Config, ConfigError};
use crate::engine::{Engine, EngineError, EngineOptions, Started, WriterHandle};
use crate::ext_authz::ExtAuthz;
use crate::gateway::Gateway;
use crate::gossip::{ChannelFactory, Gossip, GossipSettings, PeerChannels, PeerService, tcp_channels};
use crate::http::HttpState;
use crate::service::RevocationService;
use crate::watch::{WatchHub, WatchSettings, cluster_id};
use envoy_types::ext_authz::v3::pb::AuthorizationServer;
use rescind_core::Op;
use rescind_jwt::Verifier;
use rescind_proto::v1::peers_server::PeersServer;
use tokio::sync::mpsc;

/// Why a node could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Admin token problems, or an exposed listener without one.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The data dir could not be opened.
    #[error("cannot open data dir {dir}: {source}")]
    Store {
        /// The data dir.
        dir: String,
        /// Why.
        source: StoreError,
    },
    /// The data dir could not be created.
    #[error("cannot create data dir {dir}: {source}")]
    DataDir {
        /// The data dir.
        dir: String,
        /// Why.
        source: std::io::Error,
    },
    /// The engine could not start.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The gRPC server failed.
    #[error("gRPC server: {0}")]
    Serve(#[from] tonic::transport::Error),
    /// A serving thread could not start or stopped early.
    #[error("serving: {0}")]
    Serving(String),
    /// The gateway (JWT keys, OAuth clients, token hash key) could not start.
    #[error(transparent)]
    Gateway(#[from] crate::gateway::GatewayError),
}

/// An opened node: state loaded, writer running, not yet serving.
pub struct Node {
    config: Config,
    engine: Engine,
    writer: WriterHandle,
    local_ops: mpsc::Receiver<Op>,
    auth: Auth,
    token_source: TokenSource,
    channels: ChannelFactory,
    gossip_seed: Option<u64>,
    gateway: Gateway,
    verifier: Option<Verifier>,
    /// The cluster keys, the one sent first (empty: no peer traffic).
    cluster_keys: Vec<String>,
    /// TLS for clients and peers (None: plaintext).
    tls: Option<crate::tls::Tls>,
}

/// What a node runs on besides its config: production uses sled, the system
/// clock, TCP and a writer thread; the simulator injects its own.
pub struct Parts {
    /// The durable store (already opened, identity included).
    pub store: Arc<dyn Store>,
    /// The wall clock.
    pub clock: SharedClock,
    /// How to dial peers.
    pub channels: ChannelFactory,

    /// Seed for gossip's peer choice and jitter (None: from the OS).
    pub gossip_seed: Option<u64>,
}

/// The audit token-id key from `audit_token_key_file`: its bytes (at least
/// 32), derived into a 32-byte blake3 key.
fn audit_key(config: &Config) -> Result<Option<[u8; 32]>, NodeError> {
    let Some(path) = &config.audit_token_key_file else {
        return Ok(None);
    };
    let bytes = std::fs::read(path).map_err(|e| {
        NodeError::Config(ConfigError::Invalid(format!(
            "audit_token_key_file: cannot read {}: {e}",
            path.display()
        )))
    })?;
    let bytes = bytes.trim_ascii();
    if bytes.len() < 32 {
        return Err(NodeError::Config(ConfigError::Invalid(format!(
            "audit_token_key_file: {} holds {} bytes; at least 32 are needed",
            path.display(),
            bytes.len()
        ))));
    }
    Ok(Some(blake3::derive_key("rescind audit token ids v1", bytes)))
}

impl Node {
    /// Validate `config`, open (or initialise) the data dir, settle the admin
    /// token and load the state into memory.
    pub async fn open(config: Config) -> Result<Node, NodeError> {
        config.validate()?;
        let tls = crate::tls::Tls::load(&config.tls)
            .map_err(|e| NodeError::Config(ConfigError::Invalid(e.to_string())))?;
        let dir = config.data_dir.clone();
        std::fs::create_dir_all(&dir).map_err(|source| NodeError::DataDir {
            dir: dir.display().to_string(),
            source,
        })?;
        let requested = config.node_name.clone();
        let cache = config.store_cache_mb << 20;
        let store = tokio::task::spawn_blocking(move || {
            SledStore::open_with(
                &dir,
                requested.as_deref(),
                &default_node_name(),
                cache,
                Arc::new(RealFs),
            )
            .map(|(store, _)| store)
            .map_err(|source| NodeError::Store {
                dir: dir.display().to_string(),
                source,
            })
        })
        .await
        .map_err(|e| EngineError::Unavailable(format!("start-up task failed: {e}")))??;
        let parts = Parts {
            store: Arc::new(store),
            clock: Arc::new(SystemClock),
            channels: tcp_channels(
                config.gossip.peer_timeout,
                config.gossip.peer_timeout,
                tls.clone(),
            ),

            gossip_seed: None,
        };
        // Loading a large state takes a while: off the async threads.
        let mut node = tokio::task::spawn_blocking(move || Self::assemble(config, parts))
            .await
            .map_err(|e| EngineError::Unavailable(format!("start-up task failed: {e}")))??;
        let name = &node.engine.identity().node_name;
        if node.config.tls.peer_tls() && !crate::tls::names::is_dns_name(name) {
            return Err(NodeError::Config(ConfigError::Invalid(format!(
                "node_name `{name}`: with peer TLS it must be a DNS name its peer certificate is valid for"
            ))));
        }
        node.tls = tls;
        Ok(node)
    }

    /// Build a node from `config` and injected [`Parts`]: settle the admin
    /// token, load the state from the store, start the writer.
    pub fn assemble(config: Config, parts: Parts) -> Result<Node, NodeError> {
        config.validate()?;
        let cluster_keys = config.cluster_keys()?;
        let (auth, token_source) = Auth::resolve(&config)?;
        let options = EngineOptions {
            metrics: Arc::new(crate::metrics::Metrics::new(config.metrics)),
            region: config.region.clone(),
            expiry_grace: config.expiry_grace,
            write_queue: config.write_queue,
            seeds: config.peers.iter().map(|p| p.addr.clone()).collect(),
            advertise_addr: config
                .advertise_addr
                .clone()
                .unwrap_or_else(|| config.listen.to_string()),
            clock: parts.clock,
            checkpoints: crate::checkpointer::CheckpointPolicy {
                every: config.checkpoint_interval,
                every_ops: config.checkpoint_ops,
                op_log_retention: config.op_log_retention,
            },
            recover_from_peers: !config.peers.is_empty(),
            audit: crate::audit::AuditPolicy {
                retention: config.audit_retention,
                token_key: audit_key(&config)?,
            },
        };
        let Started {
            engine,
            writer,
            local_ops,
        } = Engine::start(parts.store, options)?;
        let verifier = match &config.jwt {
            Some(jwt) => Some(Verifier::new(jwt).map_err(crate::gateway::GatewayError::from)?),
            None => None,
        };
        let gateway = Gateway::new(engine.clone(), verifier.clone(), config.gateway.clone())?;
        Ok(Node {
            gateway,
            verifier,
            config,
            engine,
            writer,
            local_ops,
            auth,
            token_source,
            channels: parts.channels,
            gossip_seed: parts.gossip_seed,
            cluster_keys,
            tls: None,
        })
    }

    /// The engine (for embedding and tests).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Where the admin token came from.
    pub fn token_source(&self) -> &TokenSource {
        &self.token_source
    }

    /// Bind the configured HTTP address (`http_listen`), if any.
    pub async fn bind_http(&self) -> Result<Option<TcpListener>, NodeError> {
        let Some(addr) = self.config.http_listen else {
            return Ok(None);
        };
        TcpListener::bind(addr)
            .await
            .map(Some)
            .map_err(|source| NodeError::Bind { addr, source })
    }

    /// Bind the configured listen address.
    pub async fn bind(&self) -> Result<TcpListener, NodeError> {
        let addr = self.config.listen;
        TcpListener::bind(addr)
            .await
            .map_err(|source| NodeError::Bind { addr, source })
    }

    /// Serve on `listener` with `serve_threads` serving threads (see
    /// [`crate::net`]) until `shutdown` completes, then drain: stop accepting,
    /// finish in-flight requests, let the writer flush its queue.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), NodeError> {
        self.serve_with_http(listener, None, shutdown).await
    }

    /// [`Node::serve`], and the HTTP API on `http` (from [`Node::bind_http`])
    /// until the same `shutdown`.
    pub async fn serve_with_http(
        self,
        listener: TcpListener,
        http: Option<TcpListener>,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), NodeError> {
        let bound = listener.local_addr().map_err(|source| NodeError::Bind {
            addr: self.config.listen,
            source,
        })?;
        let advertise = match &self.config.advertise_addr {
            Some(a) => a.clone(),
            None if bound.ip().is_unspecified() && !self.cluster_keys.is_empty() => {
                return Err(NodeError::Config(ConfigError::Invalid(format!(
                    "listening on {bound} with a cluster: set advertise_addr to the address peers should dial"
                ))));
            }
            None => bound.to_string(),
        };
        let threads = self.config.effective_serve_threads();
        let max = self.config.max_connections;
        let tls = self.tls.clone().map(|tls| crate::net::TlsAccept {
            handshake_timeout: self.config.tls.handshake_timeout,
            tls,
        });
        let idle = self.config.limits.idle();
        let limits_config = self.config.limits.clone();
        let running = self.start(&advertise);
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let shutdown = running.on_shutdown(async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        });
        let http_tls = tls.clone();
        let http_task = http.map(|l| {
            let router = crate::http::router(
                running.http.clone(),
                running.http_in_flight,
                limits_config.request_timeout,
            );
            let http_limits = crate::http::HttpLimits::new(max, &limits_config, http_tls);
            let mut rx = stop_rx.clone();
            tokio::spawn(async move {
                let stop = async move {
                    let _ = rx.wait_for(|s| *s).await;
                };
                if let Err(e) = crate::http::serve(l, router, http_limits, stop).await {
                    tracing::error!(error = %e, "HTTP server failed");
                }
            })
        });
        let limits = crate::net::ConnLimits {
            max_connections: max,
            idle,
            tls,
        };
        let result =
            crate::net::serve_on_threads(running.services.clone(), listener, threads, limits, shutdown).await;
        if let Some(mut t) = http_task {
            // Requests in flight get 10 s to finish; a client that holds a
            // connection open longer does not hold the node.
            if tokio::time::timeout(std::time::Duration::from_secs(10), &mut t)
                .await
                .is_err()
            {
                t.abort();
                let _ = t.await;
            }
        }
        running.stop().await;
        result
    }

    /// Serve connections from `incoming` (TCP, or a simulated network) on the
    /// current runtime, advertising `advertise` to peers, until `shutdown`
    /// completes; then drain.
    pub async fn serve_incoming<IO, S>(
        self,
        incoming: S,
        advertise: &str,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), NodeError>
    where
        IO: ServeIo,
        S: futures_util::Stream<Item = std::io::Result<IO>> + Send,
    {
        let running = self.start(advertise);
        let shutdown = running.on_shutdown(shutdown);
        let result = running.services.clone().serve(incoming, shutdown).await;
        running.stop().await;
        Ok(result?)
    }

    /// Start the background work (gossip, expiry GC) and build the services.
    fn start(self, advertise: &str) -> Running {
        let Node {
            config,
            engine,
            writer,
            local_ops,
            auth,
            channels,
            gossip_seed,
            gateway,
            verifier,
            cluster_keys,
            tls,
            ..
        } = self;
        engine.with_cluster(|c| c.set_addr(advertise));
        let limits = config.gossip.limits();
        // Explicit, or derived from the first key (the value to pin before a
        // key rotation): sent on every peer call and checked on every one.
        let effective_cluster_id = config
            .cluster_id
            .clone()
            .unwrap_or_else(|| cluster_id(cluster_keys.first().map(String::as_str), engine.identity()));
        // Validated at start: a key is visible ASCII, so it makes a header.
        let peer_channels = cluster_keys
            .first()
            .and_then(|k| PeerChannels::new(channels, k, &effective_cluster_id))
            .map(Arc::new);
        let gossip = peer_channels.clone().map(|channels| {
            Gossip::spawn(
                engine.clone(),
                channels,
                local_ops,
                GossipSettings {
                    interval: config.gossip.interval,
                    push_fanout: config.gossip.push_fanout,
                    limits,
                    seed: gossip_seed,
                },
            )
        });
        let admission = crate::gossip::service::Admission {
            cluster_id: effective_cluster_id.clone(),
            cluster_id_configured: config.cluster_id.is_some(),
            peer_tls: tls.is_some() && config.tls.peer_tls(),
        };
        let peers = PeerService::new(engine.clone(), &cluster_keys, limits, peer_channels, admission);
        let tls_watch = tls.map(|t| tokio::spawn(t.watch_files()));
        let credentials_watch = auth.credentials().map(|c| tokio::spawn(c.watch_file()));
        let watch = WatchHub::new(
            engine.clone(),
            WatchSettings {
                max_watchers: config.max_watchers,
                buffer: config.watch_buffer,
                stall_timeout: config.watch_stall_timeout,
                cluster_id: effective_cluster_id,
            },
        );
        let http = HttpState {
            engine: engine.clone(),
            auth: auth.clone(),
            gateway: gateway.clone(),
            watch: watch.clone(),
            max_body: config.gateway.max_body_bytes,
            max_consistency_wait: config.max_consistency_wait,
            readiness: crate::health::Readiness::new(engine.clone(), config.ready_peer_wait),
            data_dir: config.data_dir.clone(),
        };
        let service =
            RevocationService::new(engine.clone(), auth, config.max_consistency_wait, watch.clone());
        let health_reporter = tonic_health::server::HealthReporter::new();
        let health = tonic_health::pb::health_server::HealthServer::new(
            tonic_health::server::HealthService::from_health_reporter(health_reporter.clone()),
        );
        let (health_stop, health_stop_rx) = tokio::sync::watch::channel(false);
        let health_task = tokio::spawn(crate::health::track(
            health_reporter,
            http.readiness.clone(),
            health_stop_rx,
        ));
        let mut routes = tonic::service::Routes::new(
            RevocationsServer::new(service)
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
        )
        .add_service(
            PeersServer::new(peers)
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
        )
        .add_service(
            AuthorizationServer::new(ExtAuthz::new(gateway)).max_decoding_message_size(MAX_MESSAGE_BYTES),
        )
        .add_service(health);
        match crate::health::reflection() {
            Ok(r) => routes = routes.add_service(r),
            Err(e) => tracing::warn!(error = %e, "gRPC reflection is off: its descriptors did not load"),
        }
        let gc = tokio::spawn(gc_loop(engine.clone(), config.gc_interval));
        let key_refresh = verifier.map(|v| v.spawn_refresh());
        Running {
            tls_watch,
            credentials_watch,
            http,
            http_in_flight: config.gateway.max_http_requests,
            key_refresh,
            services: Services {
                routes,
                per_connection: config.max_concurrent_requests_per_connection,
                limits: config.limits.clone(),
            },
            health_stop,
            health_task,
            engine,
            writer,
            gossip,
            gc,
            watch,
        }
    }
}

/// A started node: its services, and the background work to stop after them.
struct Running {
    services: Services,
    /// The HTTP API's handler state, and its in-flight bound.
    http: HttpState,
    http_in_flight: usize,
    /// Re-reads the TLS files (None without TLS).
    tls_watch: Option<tokio::task::JoinHandle<()>>,
    /// Re-reads the credentials file (None without one).
    credentials_watch: Option<tokio::task::JoinHandle<()>>,
    /// Re-reads the JWKS file / URL (None without `[jwt]`).
    key_refresh: Option<tokio::task::JoinHandle<()>>,
    /// Ended as soon as shutdown starts, so open streams do not hold the drain.
    watch: Arc<WatchHub>,
    engine: Engine,
    writer: WriterHandle,
    gossip: Option<Gossip>,
    gc: tokio::task::JoinHandle<()>,
    /// Turned true when shutdown starts: health then reports `NOT_SERVING`.
    health_stop: tokio::sync::watch::Sender<bool>,
    health_task: tokio::task::JoinHandle<()>,
}

impl Running {
    /// `shutdown`, then report `NOT_SERVING` and end every Watch stream
    /// (before tonic drains).
    fn on_shutdown(&self, shutdown: impl Future<Output = ()> + Send) -> impl Future<Output = ()> + Send {
        let watch = self.watch.clone();
        let health = self.health_stop.clone();
        async move {
            shutdown.await;
            let _ = health.send(true);
            watch.stop();
        }
    }

    /// Stop the background work once serving has ended: GC, gossip, then the
    /// writer, which flushes its queue before it exits.
    async fn stop(self) {
        self.gc.abort();
        let _ = self.gc.await;
        let _ = self.health_stop.send(true);
        let _ = self.health_task.await;
        for task in [self.key_refresh, self.tls_watch, self.credentials_watch]
            .into_iter()
            .flatten()
        {
            task.abort();
            let _ = task.await;
        }
        drop(self.http);
        if let Some(g) = self.gossip {
            g.shutdown().await;
        }
        drop(self.services);
        drop(self.watch);
        drop(self.engine);
        self.writer.join().await;
        tracing::info!("node stopped");
    }
}

/// A connection the services can be served on: TCP, or a simulated stream.
pub trait ServeIo:
    tokio::io::AsyncRead + tokio::io::AsyncWrite + tonic::transport::server::Connected + Unpin + Send + 'static
{
}

impl<T> ServeIo for T where
    T: tokio::io::AsyncRead
        + tokio::io::AsyncWrite
        + tonic::transport::server::Connected
        + Unpin
        + Send
        + 'static
{
}

/// The node's gRPC services; cheap to clone, one clone per serving thread.
#[derive(Clone)]
pub(crate) struct Services {
    /// `Revocations`, `Peers`, Envoy `Authorization`, health, reflection.
    routes: tonic::service::Routes,
    per_connection: usize,
    limits: crate::limits::LimitsConfig,
}

impl Services {
    /// Serve connections from `incoming` on the current runtime until
    /// `shutdown` completes, then finish the requests in flight.
    pub(crate) async fn serve<IO, S>(
        self,
        incoming: S,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), tonic::transport::Error>
    where
        IO: ServeIo,
        S: futures_util::Stream<Item = std::io::Result<IO>> + Send,
    {
        tonic::transport::Server::builder()
            .concurrency_limit_per_connection(self.per_connection)
            .max_concurrent_streams(u32::try_from(self.per_connection).unwrap_or(u32::MAX))
            .http2_max_header_list_size(self.limits.max_header_bytes)
            .timeout(self.limits.request_timeout)
            .layer(tower::util::MapRequestLayer::new(with_source))
            .add_routes(self.routes)
            .serve_with_incoming_shutdown(incoming, shutdown)
            .await
    }
}

/// Stamp a request with its connection's address for [`crate::auth`]'s
/// throttle (dropping any the client sent). Every gRPC server that checks
/// tokens runs it (the node's, and `rescind edge`'s).
pub fn with_source<B>(mut req: http::Request<B>) -> http::Request<B> {
    let source = req
        .extensions()
        .get::<crate::net::ConnInfo>()
        .and_then(|c| c.source.clone());
    crate::auth::set_source(req.headers_mut(), source);
    req
}

/// Prune expired entries now and then, starting right away.
async fn gc_loop(engine: Engine, every: std::time::Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let span = tracing::debug_span!("expiry_gc");
        let _e = span.enter();
        match engine.prune_expired().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(pruned = n, "expired entries dropped"),
            Err(e) => tracing::warn!(error = %e, "expiry GC failed"),
        }
    }
}

/// The host name, or `rescind` when it cannot be read.
fn default_node_name() -> String {
    let raw = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .unwrap_or_default();
    let name: String = raw
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        .take(64)
        .collect();
    if name.is_empty() { "rescind".into() } else { name }
}

/// Bind `config`'s listeners, answer health probes on them while the state
/// loads ([`crate::health::Loading`]), then serve until `shutdown`.
pub async fn run(config: Config, shutdown: impl Future<Output = ()> + Send) -> Result<(), NodeError> {
    config.validate()?;
    config.cluster_keys()?;
    let loading =
        crate::health::Loading::bind(config.listen, config.http_listen, !config.tls.client_tls()).await?;
    let (node, listener, http) = loading.during(Node::open(config)).await;
    node?.serve_with_http(listener, http, shutdown).await
}
