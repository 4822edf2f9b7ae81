//! Closed-loop load against a node: checks, durable revokes, propagation.
//! Every loop is bounded by a duration or a count.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rescind_proto::v1 as pb;
use rescind_proto::v1::revocations_client::RevocationsClient;
use serde::Serialize;

use crate::conn::H2Conn;
use crate::uuid_like;

/// A request carrying `Bearer <token>`.
pub fn bearer<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut req = tonic::Request::new(message);
    if let Ok(v) = format!("Bearer {token}").parse() {
        req.metadata_mut().insert("authorization", v);
    }
    req
}

/// A Revocations client on one lean HTTP/2 connection (see [`H2Conn`]).
pub type Client = RevocationsClient<H2Conn>;

/// Open `n` separate connections to `addr` (`host:port` or `http://host:port`).
pub async fn connect(addr: &str, n: usize) -> anyhow::Result<Vec<Client>> {
    connect_tls(addr, n, None).await
}

/// [`connect`], over TLS when `tls` is given.
pub async fn connect_tls(
    addr: &str,
    n: usize,
    tls: Option<&crate::conn::Tls>,
) -> anyhow::Result<Vec<Client>> {
    let hostport = addr.strip_prefix("http://").unwrap_or(addr);
    let scheme = if tls.is_some() { "https" } else { "http" };
    let origin: http::Uri = format!("{scheme}://{hostport}")
        .parse()
        .map_err(|e| anyhow::anyhow!("bad address {addr:?}: {e}"))?;
    let mut out = Vec::new();
    for _ in 0..n.max(1) {
        let conn = H2Conn::connect_tls(hostport, tls)
            .await
            .map_err(|e| anyhow::anyhow!("cannot reach rescind node at {addr}: {e}"))?;
        out.push(RevocationsClient::with_origin(conn, origin.clone()).max_decoding_message_size(8 << 20));
    }
    Ok(out)
}

/// Latency summary in microseconds, and throughput.
#[derive(Debug, Serialize)]
pub struct Summary {
    /// What was measured.
    pub what: String,
    /// Operations (checks, revokes) completed.
    pub ops: u64,
    /// Failed requests.
    pub errors: u64,
    /// Wall time, seconds.
    pub seconds: f64,
    /// Operations per second.
    pub per_sec: f64,
    /// Latency percentiles of one request (a whole batch for CheckBatch), µs.
    pub p50_us: u64,
    /// 90th percentile, µs.
    pub p90_us: u64,
    /// 99th percentile, µs.
    pub p99_us: u64,
    /// 99.9th percentile, µs.
    pub p999_us: u64,
}

impl Summary {
    /// A summary of `ops` operations timed in `h` over `seconds`.
    pub fn new(what: String, h: &Histogram<u64>, ops: u64, errors: u64, seconds: f64) -> Self {
        Self {
            what,
            ops,
            errors,
            seconds,
            per_sec: ops as f64 / seconds.max(1e-9),
            p50_us: h.value_at_quantile(0.50),
            p90_us: h.value_at_quantile(0.90),
            p99_us: h.value_at_quantile(0.99),
            p999_us: h.value_at_quantile(0.999),
        }
    }

    /// One line for people.
    pub fn line(&self) -> String {
        format!(
            "{}: {:.0}/s over {:.1} s ({} ok, {} errors); latency p50 {} µs, p90 {} µs, p99 {} µs, p99.9 {} µs",
            self.what,
            self.per_sec,
            self.seconds,
            self.ops,
            self.errors,
            self.p50_us,
            self.p90_us,
            self.p99_us,
            self.p999_us
        )
    }
}

/// A histogram of µs from 1 µs to 60 s.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

/// What one closed-loop worker measured: latencies, successes, failures.
type Worker = tokio::task::JoinHandle<(Histogram<u64>, u64, u64)>;

/// Let the workers run for `duration`, stop them, and merge what they measured.
async fn gather(stop: &AtomicBool, workers: Vec<Worker>, duration: Duration) -> (Histogram<u64>, u64, u64) {
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = histogram();
    let (mut ok, mut errors) = (0, 0);
    for w in workers {
        if let Ok((h, o, e)) = w.await {
            let _ = all.add(&h);
            ok += o;
            errors += e;
        }
    }
    (all, ok, errors)
}

/// Make sure ids `uuid_like(0, 0..count)` are revoked (skips when the node
/// already holds that many), `concurrency` revokes in flight; prints progress.
pub async fn preload(clients: &[Client], token: &str, count: u64, concurrency: usize) -> anyhow::Result<()> {
    let status = clients[0]
        .clone()
        .status(pb::StatusRequest {})
        .await?
        .into_inner();
    if status.deny_entries >= count {
        eprintln!(
            "preload: node already holds {} revoked ids, using them",
            status.deny_entries
        );
        return Ok(());
    }
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..concurrency.max(1) {
        let mut c = clients[w % clients.len()].clone();
        let (next, token) = (next.clone(), token.to_owned());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    return Ok::<_, tonic::Status>(());
                }
                let req = pb::RevokeRequest {
                    target: Some(pb::revoke_request::Target::Token(pb::TokenRevocation {
                        token_id: uuid_like(0, i),
                        expires_at_ms: 0,
                        ..Default::default()
                    })),
                    reason: "preload".into(),
                    actor: "rescind-bench".into(),
                };
                c.revoke(bearer(req, &token)).await?;
                if i > 0 && i % 50_000 == 0 {
                    eprintln!(
                        "preload: {i}/{count} ({:.0}/s)",
                        i as f64 / started.elapsed().as_secs_f64()
                    );
                }
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    eprintln!(
        "preload: {count} revoked in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Closed-loop checks: `concurrency` workers, each one request in flight, for
/// `duration`. `batch` > 1 uses CheckBatch. A fraction `hit_ratio` of ids are
/// revoked ones.
pub async fn checks(
    clients: &[Client],
    concurrency: usize,
    duration: Duration,
    preloaded: u64,
    hit_ratio: f64,
    batch: usize,
) -> Summary {
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..concurrency.max(1) {
        let mut c = clients[w % clients.len()].clone();
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(w as u64);
            let mut h = histogram();
            let (mut ok, mut errors) = (0u64, 0u64);
            let mut id = || {
                if preloaded > 0 && rng.random_bool(hit_ratio) {
                    uuid_like(0, rng.random_range(0..preloaded))
                } else {
                    uuid_like(1, rng.random::<u32>() as u64)
                }
            };
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let result = if batch > 1 {
                    let checks: Vec<_> = (0..batch)
                        .map(|_| pb::CheckRequest {
                            token_id: Some(id()),
                            ..Default::default()
                        })
                        .collect();
                    c.check_batch(pb::CheckBatchRequest::from(checks))
                        .await
                        .map(|_| batch as u64)
                } else {
                    c.check(pb::CheckRequest {
                        token_id: Some(id()),
                        ..Default::default()
                    })
                    .await
                    .map(|_| 1)
                };
                match result {
                    Ok(n) => {
                        ok += n;
                        let _ = h.record(t.elapsed().as_micros().max(1) as u64);
                    }
                    Err(_) => errors += 1,
                }
            }
            (h, ok, errors)
        }));
    }
    let (all, ok, errors) = gather(&stop, tasks, duration).await;
    let what = if batch > 1 {
        format!("CheckBatch x{batch}, {concurrency} callers")
    } else {
        format!("Check, {concurrency} callers")
    };
    Summary::new(what, &all, ok, errors, started.elapsed().as_secs_f64())
}

/// Closed-loop durable revokes of fresh ids for `duration`.
pub async fn revokes(clients: &[Client], token: &str, concurrency: usize, duration: Duration) -> Summary {
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let run = rand::random::<u32>();
    let mut tasks = Vec::new();
    for w in 0..concurrency.max(1) {
        let mut c = clients[w % clients.len()].clone();
        let (stop, token) = (stop.clone(), token.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut h = histogram();
            let (mut ok, mut errors, mut i) = (0u64, 0u64, 0u64);
            while !stop.load(Ordering::Relaxed) {
                let req = pb::RevokeRequest {
                    target: Some(pb::revoke_request::Target::Token(pb::TokenRevocation {
                        token_id: format!("bench-revoke-{run:08x}-{w}-{i}"),
                        expires_at_ms: 0,
                        ..Default::default()
                    })),
                    reason: String::new(),
                    actor: "rescind-bench".into(),
                };
                i += 1;
                let t = Instant::now();
                match c.revoke(bearer(req, &token)).await {
                    Ok(_) => {
                        ok += 1;
                        let _ = h.record(t.elapsed().as_micros().max(1) as u64);
                    }
                    Err(_) => errors += 1,
                }
            }
            (h, ok, errors)
        }));
    }
    let (all, ok, errors) = gather(&stop, tasks, duration).await;
    Summary::new(
        format!("durable Revoke, {concurrency} callers"),
        &all,
        ok,
        errors,
        started.elapsed().as_secs_f64(),
    )
}

/// Revoke `count` ids round-robin on the nodes, at most `rate` per second, and
/// time each until every other node answers a Check carrying its consistency
/// token. Returns per (revocation, other node) delays in µs.
pub async fn propagate(nodes: &[Client], token: &str, count: u64, rate: f64) -> anyhow::Result<Summary> {
    let started = Instant::now();
    let gap = Duration::from_secs_f64(1.0 / rate.max(0.001));
    let run = rand::random::<u32>();
    let mut tasks = tokio::task::JoinSet::new();
    let mut h = histogram();
    let mut errors = 0u64;
    for i in 0..count {
        tokio::time::sleep_until((started + gap * i as u32).into()).await;
        let origin = (i as usize) % nodes.len();
        let mut writer = nodes[origin].clone();
        let others: Vec<_> = nodes
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != origin)
            .map(|(_, c)| c.clone())
            .collect();
        let token = token.to_owned();
        tasks.spawn(async move {
            let id = format!("bench-propagate-{run:08x}-{i}");
            let req = pb::RevokeRequest {
                target: Some(pb::revoke_request::Target::Token(pb::TokenRevocation {
                    token_id: id.clone(),
                    expires_at_ms: 0,
                    ..Default::default()
                })),
                reason: String::new(),
                actor: "rescind-bench".into(),
            };
            let ack = writer.revoke(bearer(req, &token)).await?.into_inner();
            let acked = Instant::now();
            let asks = others.into_iter().map(|mut c| {
                let mut req = tonic::Request::new(pb::CheckRequest {
                    token_id: Some(id.clone()),
                    consistency_token: Some(ack.consistency_token.clone()),
                    ..Default::default()
                });
                req.set_timeout(Duration::from_secs(10));
                async move {
                    let r = c.check(req).await?.into_inner();
                    if !r.revoked {
                        return Err(tonic::Status::internal(
                            "a node answered allowed after catching up",
                        ));
                    }
                    Ok(acked.elapsed().as_micros() as u64)
                }
            });
            futures_util::future::join_all(asks)
                .await
                .into_iter()
                .collect::<Result<Vec<u64>, _>>()
        });
        while let Some(done) = tasks.try_join_next() {
            match done {
                Ok(Ok(d)) => d.into_iter().for_each(|v| {
                    let _ = h.record(v.max(1));
                }),
                _ => errors += 1,
            }
        }
    }
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(Ok(d)) => d.into_iter().for_each(|v| {
                let _ = h.record(v.max(1));
            }),
            _ => errors += 1,
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(Summary::new(
        format!("propagation to every other node, {count} revokes at {rate}/s"),
        &h,
        h.len(),
        errors,
        seconds,
    ))
}

/// Open `n` TCP connections to `addr` that send nothing (they stay open
/// until dropped, or until the node closes them).
pub async fn idle_connections(addr: &str, n: usize) -> anyhow::Result<Vec<tokio::net::TcpStream>> {
    let hostport = addr.strip_prefix("http://").unwrap_or(addr);
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(tokio::net::TcpStream::connect(hostport).await?);
    }
    Ok(out)
}
