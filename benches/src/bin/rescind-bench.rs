//! `rescind-bench`: a closed-loop load generator for Rescind nodes. Every run
//! is bounded by `--duration` or `--count`.
#![allow(rustdoc::invalid_html_tags, rustdoc::bare_urls)] // doc comments here are clap help text

/// mimalloc: measurably less CPU per request than glibc malloc on the
/// check path (see README → Benchmarks), and less fragmentation.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, anyhow};
use clap::{Args, Parser, Subcommand};
use rescind_benches::load;
use rescind_core::limits::MAX_BATCH;

/// Load generator for Rescind: check throughput and latency, durable revoke
/// throughput, propagation time across nodes.
#[derive(Parser, Debug)]
#[command(name = "rescind-bench", version, about, long_about)]
struct Cli {
    /// Threads of the load generator. 1 (the default, like redis-benchmark)
    /// runs every caller on one thread; on a small machine each thread the
    /// generator takes is taken from the node under test.
    #[arg(long, global = true, default_value_t = 1)]
    threads: usize,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Debug)]
struct Common {
    /// Admin token (for preload and revokes). Default: RESCIND_TOKEN, else
    /// <data-dir>/admin.token.
    #[arg(long, env = "RESCIND_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Where to find admin.token.
    #[arg(long, env = "RESCIND_DATA_DIR", default_value = "./rescind-data")]
    data_dir: PathBuf,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

impl Common {
    fn token(&self) -> anyhow::Result<String> {
        rescind_node::auth::token_or_file(self.token.as_deref(), &self.data_dir)
            .context("no --token, and no readable admin token file")
    }
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Closed-loop checks: throughput and latency percentiles.
    Check {
        /// Node address.
        #[arg(long, default_value = "127.0.0.1:7400")]
        addr: String,
        /// TCP connections (callers are spread over them).
        #[arg(long, default_value_t = 4)]
        connections: usize,
        /// Callers, each with one request in flight.
        #[arg(long, default_value_t = 50)]
        concurrency: usize,
        /// How long to measure.
        #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
        duration: Duration,
        /// Make sure this many ids are revoked first (skipped if the node holds that many).
        #[arg(long, default_value_t = 1_000_000)]
        preload: u64,
        /// Fraction of checks asking about a revoked id.
        #[arg(long, default_value_t = 0.01)]
        hit_ratio: f64,
        /// Ids per CheckBatch call (1: plain Check).
        #[arg(long, default_value_t = 1)]
        batch: usize,
        /// Dial over TLS, trusting this CA bundle (PEM).
        #[arg(long)]
        tls_ca: Option<PathBuf>,
        /// Name the node's certificate must be valid for (with --tls-ca).
        #[arg(long, default_value = "localhost")]
        tls_server_name: String,
        /// Hold this many silent TCP connections to the node open while measuring.
        #[arg(long, default_value_t = 0)]
        idle_connections: usize,
        #[command(flatten)]
        common: Common,
    },
    /// Closed-loop durable revokes (each acknowledged only once flushed).
    Revoke {
        /// Node address.
        #[arg(long, default_value = "127.0.0.1:7400")]
        addr: String,
        /// TCP connections.
        #[arg(long, default_value_t = 4)]
        connections: usize,
        /// Callers, each with one revoke in flight.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// How long to measure.
        #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
        duration: Duration,
        #[command(flatten)]
        common: Common,
    },
    /// Time from an ack on one node until every other node answers revoked.
    Propagate {
        /// Node addresses, comma-separated (revokes go round-robin over them).
        #[arg(long, value_delimiter = ',', required = true)]
        addrs: Vec<String>,
        /// Revocations to time.
        #[arg(long, default_value_t = 1000)]
        count: u64,
        /// Revocations per second.
        #[arg(long, default_value_t = 1000.0)]
        rate: f64,
        #[command(flatten)]
        common: Common,
    },
    /// Write N revocations straight into a fresh data dir, as the node's
    /// writer would (op log, deny entries, version vector), to measure a
    /// restart and memory with tens of millions of entries. The ids are the
    /// ones `check --preload N` uses. Run it with no node on that dir.
    Fill {
        /// Data dir to create or fill (must hold no revocations yet).
        #[arg(long)]
        data_dir: PathBuf,
        /// Revocations to write.
        #[arg(long, default_value_t = 10_000_000)]
        count: u64,
        /// sled cache while writing, MiB.
        #[arg(long, default_value_t = 256)]
        cache_mb: u64,
    },
    /// Watch streams: time from a revoke's ack to its arrival on each of
    /// --streams subscribers; with --rate 0, hold idle streams for --hold.
    Watch {
        /// Node address.
        #[arg(long, default_value = "127.0.0.1:7400")]
        addr: String,
        /// Subscribers.
        #[arg(long, default_value_t = 100)]
        streams: usize,
        /// TCP connections the streams and revokes share.
        #[arg(long, default_value_t = 10)]
        connections: usize,
        /// Revocations per second (0: none; hold idle streams instead).
        #[arg(long, default_value_t = 1000.0)]
        rate: f64,
        /// Revocations to time.
        #[arg(long, default_value_t = 10_000)]
        count: u64,
        /// With --rate 0: how long to hold the streams open.
        #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
        hold: Duration,
        #[command(flatten)]
        common: Common,
    },
    /// Follow a node with an in-process Replica until it holds the node's
    /// digest, and report the replica's memory.
    Replica {
        /// Node address.
        #[arg(long, default_value = "127.0.0.1:7400")]
        addr: String,
        /// Give up after this long.
        #[arg(long, default_value = "600s", value_parser = humantime::parse_duration)]
        timeout: Duration,
        #[command(flatten)]
        common: Common,
    },
    /// Envoy ext_authz Checks with one JWT (mint one with `mint-jwt`).
    ExtAuthz {
        /// Node gRPC address.
        #[arg(long, default_value = "127.0.0.1:7400")]
        addr: String,
        /// The bearer token every Check carries.
        #[arg(long)]
        jwt: String,
        /// HTTP/2 connections.
        #[arg(long, default_value_t = 4)]
        connections: usize,
        /// Callers, each with one Check in flight.
        #[arg(long, default_value_t = 50)]
        concurrency: usize,
        /// How long to measure.
        #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
        duration: Duration,
        #[command(flatten)]
        common: Common,
    },
    /// Durable revocations of fresh ids in RevokeBatch calls.
    RevokeBatch {
        /// Node address.
        #[arg(long, default_value = "127.0.0.1:7400")]
        addr: String,
        /// Revocations in all.
        #[arg(long, default_value_t = 1_000_000)]
        count: u64,
        /// Revocations per batch (at most 10,000).
        #[arg(long, default_value_t = 10_000)]
        size: usize,
        /// Batches in flight.
        #[arg(long, default_value_t = 1)]
        in_flight: usize,
        #[command(flatten)]
        common: Common,
    },
    /// Print an ES256 JWT (test-only fixture key `ec-1`, issuer
    /// https://idp.bench, audience api) for the node configured by gateway.sh.
    MintJwt {
        /// Subject.
        #[arg(long, default_value = "bench-user")]
        sub: String,
        /// Token id.
        #[arg(long, default_value = "bench-jti")]
        jti: String,
        /// Also write an ext_authz CheckRequest carrying the token, framed
        /// as a gRPC message, to this file (for h2load -d).
        #[arg(long)]
        ext_authz_body: Option<PathBuf>,
    },
    /// Print the ids `check --preload N` revokes, one per line (to load the
    /// same set into another system, e.g. a Redis set).
    Ids {
        /// How many.
        #[arg(long, default_value_t = 1_000_000)]
        count: u64,
        /// Print ids never revoked instead (misses, the ones
        /// `grpc-body` and `check --hit-ratio 0` ask about).
        #[arg(long)]
        absent: bool,
    },
    /// Write the body of one gRPC `Check` (or, with `--batch N`, one
    /// `CheckBatch` of N ids), framed as on the wire, for h2load's `-d`.
    /// Every id is a miss.
    GrpcBody {
        /// Ids per call (1: `Check`, more: `CheckBatch`), at most 1024 (the
        /// node's batch limit).
        #[arg(long, default_value_t = 1)]
        batch: usize,
        /// Where to write it.
        #[arg(long)]
        out: PathBuf,
    },
}

fn print(common: &Common, s: &load::Summary) -> anyhow::Result<()> {
    if common.json {
        println!("{}", serde_json::to_string(s)?);
    } else {
        println!("{}", s.line());
    }
    Ok(())
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Check {
            addr,
            connections,
            concurrency,
            duration,
            preload,
            hit_ratio,
            batch,
            tls_ca,
            tls_server_name,
            idle_connections,
            common,
        } => {
            if !(0.0..=1.0).contains(&hit_ratio) || !(1..=MAX_BATCH).contains(&batch) {
                return Err(anyhow!(
                    "--hit-ratio must be in 0..=1 and --batch in 1..={MAX_BATCH}"
                ));
            }
            if idle_connections > 100_000 {
                return Err(anyhow!("--idle-connections must be at most 100000"));
            }
            let tls = match &tls_ca {
                Some(ca) => Some(rescind_benches::conn::Tls::from_ca(ca, &tls_server_name)?),
                None => None,
            };
            let clients = load::connect_tls(&addr, connections, tls.as_ref()).await?;
            let _idle = load::idle_connections(&addr, idle_connections).await?;
            if preload > 0 {
                load::preload(&clients, &common.token()?, preload, 64).await?;
            }
            let s = load::checks(&clients, concurrency, duration, preload, hit_ratio, batch).await;
            print(&common, &s)
        }
        Command::Revoke {
            addr,
            connections,
            concurrency,
            duration,
            common,
        } => {
            let clients = load::connect(&addr, connections).await?;
            let s = load::revokes(&clients, &common.token()?, concurrency, duration).await;
            print(&common, &s)
        }
        Command::Propagate {
            addrs,
            count,
            rate,
            common,
        } => {
            if addrs.len() < 2 || count == 0 || count > 1_000_000 {
                return Err(anyhow!(
                    "--addrs needs at least two nodes and --count 1..=1000000"
                ));
            }
            let mut nodes = Vec::new();
            for a in &addrs {
                nodes.extend(load::connect(a, 1).await?);
            }
            let s = load::propagate(&nodes, &common.token()?, count, rate).await?;
            print(&common, &s)
        }
        Command::Fill {
            data_dir,
            count,
            cache_mb,
        } => {
            if count == 0 || count > 1_000_000_000 {
                return Err(anyhow!("--count must be in 1..=1000000000"));
            }
            tokio::task::spawn_blocking(move || rescind_benches::fill::fill(&data_dir, count, cache_mb))
                .await?
        }
        Command::Watch {
            addr,
            streams,
            connections,
            rate,
            count,
            hold,
            common,
        } => {
            if streams == 0 || streams > 10_000 || count == 0 || count > 1_000_000 || rate < 0.0 {
                return Err(anyhow!(
                    "--streams must be 1..=10000, --count 1..=1000000, --rate >= 0"
                ));
            }
            let clients = load::connect(&addr, connections).await?;
            if rate == 0.0 {
                return rescind_benches::watch::hold(&clients, streams, hold).await;
            }
            let all =
                rescind_benches::watch::propagation(&clients, &common.token()?, streams, rate, count).await?;
            if common.json {
                println!("{}", serde_json::to_string(&all)?);
            } else {
                for s in &all {
                    println!("{}", s.line());
                }
            }
            Ok(())
        }
        Command::Replica {
            addr,
            timeout,
            common,
        } => {
            let cost = rescind_benches::watch::replica(&addr, common.token.clone(), timeout).await?;
            println!("{}", serde_json::to_string(&cost)?);
            Ok(())
        }
        Command::ExtAuthz {
            addr,
            jwt,
            connections,
            concurrency,
            duration,
            common,
        } => {
            let s =
                rescind_benches::gateway::ext_authz(&addr, &jwt, connections, concurrency, duration).await?;
            print(&common, &s)
        }
        Command::RevokeBatch {
            addr,
            count,
            size,
            in_flight,
            common,
        } => {
            let clients = load::connect(&addr, in_flight).await?;
            let s =
                rescind_benches::gateway::revoke_batches(&clients, &common.token()?, count, size, in_flight)
                    .await?;
            print(&common, &s)
        }
        Command::MintJwt {
            sub,
            jti,
            ext_authz_body,
        } => {
            let jwt = rescind_benches::gateway::mint(&sub, &jti, Duration::from_secs(86_400));
            if let Some(path) = ext_authz_body {
                std::fs::write(&path, rescind_benches::gateway::framed_check(&jwt))?;
            }
            println!("{jwt}");
            Ok(())
        }
        Command::Ids { count, absent } => {
            use std::io::Write;
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            for i in 0..count {
                writeln!(out, "{}", rescind_benches::uuid_like(u8::from(absent), i))?;
            }
            Ok(())
        }
        Command::GrpcBody { batch, out } => {
            if !(1..=MAX_BATCH).contains(&batch) {
                return Err(anyhow!("--batch must be in 1..={MAX_BATCH}, got {batch}"));
            }
            std::fs::write(&out, rescind_benches::check_body(batch))
                .with_context(|| format!("--out {}: cannot write", out.display()))?;
            Ok(())
        }
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let rt = match cli.threads {
        0 => {
            eprintln!("error: --threads must be at least 1");
            return std::process::ExitCode::FAILURE;
        }
        1 => tokio::runtime::Builder::new_current_thread().enable_all().build(),
        n => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n)
            .enable_all()
            .build(),
    };
    let rt = match rt {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
