//! `rescind serve`: layer the configuration and run a node until a signal.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use rescind_node::auth::TokenSource;
use rescind_node::{Config, Node};

/// Flags of `rescind serve`. Each overrides the TOML config; each has an env twin.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// TOML config file; every key and its default is in deploy/rescind.toml.
    #[arg(long, env = "RESCIND_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory (sled database, node identity, generated admin token). [default: ./rescind-data]
    #[arg(long, env = "RESCIND_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// gRPC listen address; port 0 picks a free port. [default: 127.0.0.1:7400]
    #[arg(long, env = "RESCIND_LISTEN")]
    listen: Option<SocketAddr>,
    /// Node name, fixed for the life of the data dir. [default: recorded name, else host name]
    #[arg(long, env = "RESCIND_NODE_NAME")]
    node_name: Option<String>,
    /// Region label. [default: local]
    #[arg(long, env = "RESCIND_REGION")]
    region: Option<String>,
    /// File holding the admin token (needed to listen beyond loopback, unless
    /// RESCIND_ADMIN_TOKEN is set).
    #[arg(long, env = "RESCIND_ADMIN_TOKEN_FILE")]
    admin_token_file: Option<PathBuf>,
    /// Named credentials, one `NAME ROLE blake3:HEX` per line (role admin or
    /// reader; `rescind credential new` makes one), reloaded when the file
    /// changes; the audit trail names the one that revoked.
    #[arg(long, env = "RESCIND_CREDENTIALS_FILE")]
    credentials_file: Option<PathBuf>,
    /// A seed peer, host:port (repeatable; the env twin takes a comma-separated
    /// list). Added to `[[peers]]` of the config file.
    #[arg(long = "peer", env = "RESCIND_PEERS", value_delimiter = ',')]
    peers: Vec<String>,
    /// Shared secret every peer call carries (the same on every node; 16..=256
    /// visible ASCII; a shorter key, or peers without a key, are refused at
    /// start). Prefer --cluster-key-file or the env var: a flag shows in `ps`.
    #[arg(long, env = "RESCIND_CLUSTER_KEY", hide_env_values = true)]
    cluster_key: Option<String>,
    /// Address peers dial to reach this node. [default: the bound address]
    #[arg(long, env = "RESCIND_ADVERTISE_ADDR")]
    advertise_addr: Option<String>,
    /// Threads serving RPCs, each with its own single-threaded runtime
    /// (0 = one per CPU core). [default: 0]
    #[arg(long, env = "RESCIND_SERVE_THREADS")]
    serve_threads: Option<usize>,
    /// Most Watch subscribers at once. [default: 1024]
    #[arg(long, env = "RESCIND_MAX_WATCHERS")]
    max_watchers: Option<usize>,
    /// Events buffered per Watch subscriber (1..=1024). [default: 8]
    #[arg(long, env = "RESCIND_WATCH_BUFFER")]
    watch_buffer: Option<usize>,
    /// Cut off a Watch subscriber whose buffer stays full this long (DUR). [default: 2s]
    #[arg(long, env = "RESCIND_WATCH_STALL_TIMEOUT", value_parser = crate::timearg::parse_duration)]
    watch_stall_timeout: Option<std::time::Duration>,
    #[command(flatten)]
    gateway: crate::gateway_flags::GatewayArgs,
    #[command(flatten)]
    storage: crate::storage_flags::StorageArgs,
    #[command(flatten)]
    ops: crate::ops_flags::OpsArgs,
    #[command(flatten)]
    traces: crate::traces::TraceArgs,
    #[command(flatten)]
    tls: crate::tls_flags::TlsArgs,
    /// Log filter (tracing EnvFilter syntax), logs go to stderr.
    #[arg(long, env = "RESCIND_LOG", default_value = "info")]
    log: String,
}

/// Defaults ← TOML file ← environment ← flags.
fn layered_config(args: &ServeArgs) -> anyhow::Result<Config> {
    let mut config = match &args.config {
        Some(path) => Config::from_file(path)?,
        None => Config::default(),
    };
    if let Some(v) = &args.data_dir {
        config.data_dir = v.clone();
    }
    if let Some(v) = args.listen {
        config.listen = v;
    }
    if let Some(v) = &args.node_name {
        config.node_name = Some(v.clone());
    }
    if let Some(v) = &args.region {
        config.region = v.clone();
    }
    for addr in &args.peers {
        if !config.peers.iter().any(|p| &p.addr == addr) {
            config
                .peers
                .push(rescind_node::config::PeerSeed { addr: addr.clone() });
        }
    }
    if let Some(v) = &args.cluster_key {
        config.cluster_key = Some(v.clone());
    }
    if let Some(v) = &args.advertise_addr {
        config.advertise_addr = Some(v.clone());
    }
    if let Some(v) = args.serve_threads {
        config.serve_threads = v;
    }
    if let Some(v) = args.max_watchers {
        config.max_watchers = v;
    }
    if let Some(v) = args.watch_buffer {
        config.watch_buffer = v;
    }
    if let Some(v) = args.watch_stall_timeout {
        config.watch_stall_timeout = v;
    }
    if let Some(v) = &args.credentials_file {
        config.credentials_file = Some(v.clone());
    }
    if let Some(v) = &args.admin_token_file {
        config.admin_token_file = Some(v.clone());
    }
    args.gateway.apply(&mut config);
    args.storage.apply(&mut config);
    args.ops.apply(&mut config);
    args.tls.apply(&mut config);
    // Only from the environment: a token on the command line shows in `ps`.
    if let Some(t) = env_nonempty("RESCIND_ADMIN_TOKEN") {
        config.admin_token = Some(t);
    }
    if let Some(t) = env_nonempty("RESCIND_CHECK_TOKEN") {
        config.check_token = Some(t);
    }
    Ok(config)
}

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Run a node until SIGINT or SIGTERM.
pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = layered_config(&args)?;
    let mut resource = vec![("rescind.region", config.region.clone())];
    if let Some(name) = &config.node_name {
        resource.push(("service.instance.id", name.clone()));
    }
    let traces = crate::traces::init(&args.log, args.ops.log_format, &args.traces, &resource)?;
    let served = run(config).await;
    // Flushing blocks until the collector answers or its deadline passes.
    tokio::task::spawn_blocking(move || traces.shutdown()).await.ok();
    served
}

async fn run(config: rescind_node::Config) -> anyhow::Result<()> {
    config.validate()?;
    raise_open_file_limit();
    config.cluster_keys()?;
    // Bound first: health probes get NOT_SERVING (gRPC) and 503 (/readyz)
    // while the state loads.
    let loading =
        rescind_node::health::Loading::bind(config.listen, config.http_listen, !config.tls.client_tls())
            .await?;
    let http_addr = loading.http_addr().map_or("off".into(), |a| a.to_string());
    println!(
        "rescind loading on {} (http {http_addr})",
        loading.grpc_addr().context("reading the bound address")?
    );
    std::io::stdout().flush().ok();
    let (node, listener, http) = loading.during(Node::open(config.clone())).await;
    let node = node?;
    match node.token_source() {
        TokenSource::Generated(path) => tracing::info!(file = %path.display(), "admin token generated"),
        TokenSource::File(path) => tracing::info!(file = %path.display(), "admin token read"),
        TokenSource::Configured => tracing::info!("admin token configured"),
    }
    let addr = listener.local_addr().context("reading the bound address")?;
    let status = node.engine().status();
    // One line on stdout, for people and for scripts waiting on start-up.
    println!(
        "rescind listening on {addr} (http {http_addr}, node {}, region {}, {} revoked ids, {} cutoffs)",
        status.node_id, status.region, status.deny_entries, status.cutoffs
    );
    std::io::stdout().flush().ok();
    let engine = node.engine().clone();
    let gave_up = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop = {
        let gave_up = gave_up.clone();
        async move {
            tokio::select! {
                _ = shutdown_signal() => {}
                _ = recovery_deadline(engine, config.recovery_timeout) => {
                    gave_up.store(true, std::sync::atomic::Ordering::SeqCst);
                }
            }
        }
    };
    node.serve_with_http(listener, http, stop).await?;
    if gave_up.load(std::sync::atomic::Ordering::SeqCst) {
        anyhow::bail!(
            "no peer gave this node its state within {:?} (recovery_timeout): its data dir cannot be rebuilt alone; \
             start it with --peer <addr> of a reachable node, or restore the data dir from a backup",
            config.recovery_timeout
        );
    }
    Ok(())
}

/// Completes once a node that started in recovery has not recovered within
/// `timeout` (it then stops: with no reachable peer its state cannot be
/// rebuilt); never completes for a node that is whole.
async fn recovery_deadline(engine: rescind_node::Engine, timeout: std::time::Duration) {
    if !engine.is_recovering() || timeout.is_zero() {
        return std::future::pending().await;
    }
    let deadline = tokio::time::Instant::now() + timeout;
    let mut every = tokio::time::interval(std::time::Duration::from_millis(500));
    loop {
        every.tick().await;
        if !engine.is_recovering() {
            return std::future::pending().await;
        }
        if tokio::time::Instant::now() >= deadline {
            tracing::error!("no peer gave this node its state in time; stopping");
            return;
        }
    }
}

/// Raise the soft open-file limit to the hard one: every connection is a
/// descriptor, and the common soft default (1024) is below max_connections
/// plus the store's files.
fn raise_open_file_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let (Some(current), Some(max)) = (limit.current, limit.maximum) else {
        return;
    };
    if current >= max {
        return;
    }
    let raised = rustix::process::Rlimit {
        current: Some(max),
        maximum: Some(max),
    };
    match setrlimit(Resource::Nofile, raised) {
        Ok(()) => tracing::info!(from = current, to = max, "open-file limit raised"),
        Err(e) => tracing::warn!(limit = current, error = %e, "cannot raise the open-file limit"),
    }
}

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    tracing::info!("shutting down: draining requests and flushing");
}
