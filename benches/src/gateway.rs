//! Gateway load: Envoy `ext_authz` Check (closed loop), `RevokeBatch`
//! throughput, and JWTs minted from the test-only fixture keys for the
//! forward-auth runs `gateway.sh` drives with wrk.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use envoy_types::pb::envoy::service::auth::v3::attribute_context::{HttpRequest, Request as AttrRequest};
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use envoy_types::pb::envoy::service::auth::v3::{AttributeContext, CheckRequest};
use rescind_jwt::Algorithm;
use rescind_proto::v1 as pb;
use serde_json::json;

use crate::conn::H2Conn;
use crate::load::{Client, Summary, bearer, histogram};

/// An ES256 token (fixture key `ec-1`) for `sub`, issuer
/// `https://idp.bench`, audience `api`, valid for `ttl`.
pub fn mint(sub: &str, jti: &str, ttl: Duration) -> String {
    let now = rescind_jwt::testing::now_secs();
    let claims = json!({"iss": "https://idp.bench", "aud": "api", "sub": sub, "jti": jti,
                        "iat": now, "exp": now + ttl.as_secs()});
    rescind_jwt::testing::sign_with_fixture(Algorithm::ES256, "ec-1", rescind_jwt::testing::EC_PEM, &claims)
}

/// An ext_authz `CheckRequest` for `GET /orders` with `Bearer <token>`.
pub fn check_request(token: &str) -> CheckRequest {
    CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(AttrRequest {
                http: Some(HttpRequest {
                    method: "GET".into(),
                    path: "/orders".into(),
                    headers: [("authorization".to_string(), format!("Bearer {token}"))].into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
    }
}

/// [`check_request`] as one gRPC message on the wire, the body h2load sends.
pub fn framed_check(token: &str) -> Vec<u8> {
    crate::grpc_framed(&check_request(token))
}

/// `concurrency` callers over `connections` HTTP/2 connections send
/// ext_authz Checks carrying `Bearer <token>` for `duration`; a Check counts
/// as ok when Envoy would let the request through.
pub async fn ext_authz(
    addr: &str,
    token: &str,
    connections: usize,
    concurrency: usize,
    duration: Duration,
) -> anyhow::Result<Summary> {
    let origin: http::Uri = format!("http://{addr}").parse()?;
    let mut clients = Vec::new();
    for _ in 0..connections.max(1) {
        let conn = H2Conn::connect(addr).await?;
        clients.push(AuthorizationClient::with_origin(conn, origin.clone()));
    }
    let request = check_request(token);
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..concurrency.max(1) {
        let mut c = clients[w % clients.len()].clone();
        let (stop, request) = (stop.clone(), request.clone());
        tasks.push(tokio::spawn(async move {
            let mut h = histogram();
            let (mut ok, mut errors) = (0u64, 0u64);
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                match c.check(request.clone()).await {
                    Ok(r) if r.get_ref().status.as_ref().is_some_and(|s| s.code == 0) => {
                        ok += 1;
                        let _ = h.record(t.elapsed().as_micros().max(1) as u64);
                    }
                    _ => errors += 1,
                }
            }
            (h, ok, errors)
        }));
    }
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    let (all, ok, errors) = merge(tasks).await?;
    let what = format!("ext_authz Check, {concurrency} callers on {connections} connections");
    Ok(Summary::new(
        what,
        &all,
        ok,
        errors,
        started.elapsed().as_secs_f64(),
    ))
}

/// `count` fresh ids revoked in `RevokeBatch` calls of `size`, `in_flight`
/// batches at a time; each op counts once the batch is durable.
pub async fn revoke_batches(
    clients: &[Client],
    token: &str,
    count: u64,
    size: usize,
    in_flight: usize,
) -> anyhow::Result<Summary> {
    let run: u32 = rand::random();
    let batches = count.div_ceil(size as u64);
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..in_flight.max(1) {
        let mut c = clients[w % clients.len()].clone();
        let (next, token) = (next.clone(), token.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut h = histogram();
            let (mut ok, mut errors) = (0u64, 0u64);
            loop {
                let b = next.fetch_add(1, Ordering::Relaxed);
                if b >= batches {
                    break;
                }
                let revocations = (0..size as u64)
                    .map(|i| pb::RevokeRequest {
                        target: Some(pb::revoke_request::Target::Token(pb::TokenRevocation {
                            token_id: format!("bulk-{run:08x}-{b:06}-{i:05}"),
                            ..Default::default()
                        })),
                        reason: String::new(),
                        actor: "rescind-bench".into(),
                    })
                    .collect();
                let t = Instant::now();
                match c
                    .revoke_batch(bearer(pb::RevokeBatchRequest { revocations }, &token))
                    .await
                {
                    Ok(r) => {
                        ok += r.get_ref().revoked;
                        let _ = h.record(t.elapsed().as_micros().max(1) as u64);
                    }
                    Err(_) => errors += 1,
                }
            }
            (h, ok, errors)
        }));
    }
    let (all, ok, errors) = merge(tasks).await?;
    let what = format!("RevokeBatch x{size}, {in_flight} in flight (latency per batch)");
    Ok(Summary::new(
        what,
        &all,
        ok,
        errors,
        started.elapsed().as_secs_f64(),
    ))
}

/// What the workers measured, together: latencies, successes, failures.
async fn merge(
    tasks: Vec<tokio::task::JoinHandle<(hdrhistogram::Histogram<u64>, u64, u64)>>,
) -> anyhow::Result<(hdrhistogram::Histogram<u64>, u64, u64)> {
    let mut all = histogram();
    let (mut ok, mut errors) = (0, 0);
    for t in tasks {
        let (h, o, e) = t.await?;
        let _ = all.add(&h);
        ok += o;
        errors += e;
    }
    Ok((all, ok, errors))
}
