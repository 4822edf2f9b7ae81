//! Watch streams under load: how long a revocation takes from its ack to
//! every subscriber's stream, what idle streams cost the node, and what an
//! in-process replica costs. Every loop is bounded by a count or a time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rescind_client::{ClientConfig, Replica, ReplicaConfig};
use rescind_core::Payload;
use rescind_proto::v1 as pb;
use serde::Serialize;

use crate::load::{Client, Summary, bearer, histogram};

/// When a revoke was sent, and when its ack came back.
type Timed = (Instant, Instant);

fn id_of(run: u32, i: u64) -> String {
    format!("bench-watch-{run:08x}-{i}")
}

/// Open `streams` Watch streams spread over `clients`, starting from the
/// node's current vector (no snapshot).
async fn open(clients: &[Client], streams: usize) -> anyhow::Result<Vec<tonic::Streaming<pb::WatchEvent>>> {
    let status = clients[0]
        .clone()
        .status(pb::StatusRequest {})
        .await?
        .into_inner();
    let mut out = Vec::new();
    for s in 0..streams {
        let mut c = clients[s % clients.len()].clone();
        let req = pb::WatchRequest {
            from: status.clock.clone(),
            cluster_id: String::new(),
        };
        out.push(c.watch(req).await?.into_inner());
    }
    Ok(out)
}

/// Revoke `count` ids at `rate` per second while `streams` subscribers
/// watch; each revocation is timed from its ack (at this client) to its
/// arrival on each stream. Returns per (revocation, stream) delays in µs
/// from the ack and from the revoke being sent, and the acks' own latency.
pub async fn propagation(
    clients: &[Client],
    token: &str,
    streams: usize,
    rate: f64,
    count: u64,
) -> anyhow::Result<[Summary; 3]> {
    let run = rand::random::<u32>();
    let prefix = format!("bench-watch-{run:08x}-");
    let opened = open(clients, streams).await?;
    let arrivals: Arc<Mutex<Vec<(u64, Instant)>>> = Arc::default();
    let budget = Duration::from_secs_f64(count as f64 / rate.max(0.001)) + Duration::from_secs(30);
    let mut readers = tokio::task::JoinSet::new();
    for mut stream in opened {
        let (arrivals, prefix) = (arrivals.clone(), prefix.clone());
        readers.spawn(async move {
            let mut seen = 0u64;
            let deadline = Instant::now() + budget;
            while seen < count && Instant::now() < deadline {
                let left = deadline.saturating_duration_since(Instant::now());
                let Ok(Ok(Some(event))) = tokio::time::timeout(left, stream.message()).await else {
                    break;
                };
                let Some(pb::watch_event::Event::Ops(ops)) = event.event else {
                    continue;
                };
                let at = Instant::now();
                let Ok(ops) = rescind_core::wire::decode_ops(&ops.ops) else {
                    break;
                };
                let mut mine = Vec::new();
                for op in ops {
                    if let Payload::Token { token_id, .. } = &op.payload
                        && let Some(i) = token_id.strip_prefix(&prefix).and_then(|i| i.parse().ok())
                    {
                        mine.push((i, at));
                        seen += 1;
                    }
                }
                arrivals.lock().extend(mine);
            }
        });
    }
    let started = Instant::now();
    let gap = Duration::from_secs_f64(1.0 / rate.max(0.001));
    let acks: Arc<Mutex<Vec<Option<Timed>>>> = Arc::new(Mutex::new(vec![None; count as usize]));
    let mut writers = tokio::task::JoinSet::new();
    let mut errors = 0u64;
    for i in 0..count {
        tokio::time::sleep_until((started + gap * i as u32).into()).await;
        let mut c = clients[i as usize % clients.len()].clone();
        let (acks, token) = (acks.clone(), token.to_owned());
        writers.spawn(async move {
            let req = pb::RevokeRequest {
                target: Some(pb::revoke_request::Target::Token(pb::TokenRevocation {
                    token_id: id_of(run, i),
                    expires_at_ms: 0,
                    ..Default::default()
                })),
                reason: String::new(),
                actor: "rescind-bench".into(),
            };
            let sent = Instant::now();
            let ok = c.revoke(bearer(req, &token)).await.is_ok();
            acks.lock()[i as usize] = ok.then(|| (sent, Instant::now()));
            ok
        });
        while let Some(done) = writers.try_join_next() {
            errors += u64::from(!matches!(done, Ok(true)));
        }
    }
    while let Some(done) = writers.join_next().await {
        errors += u64::from(!matches!(done, Ok(true)));
    }
    while readers.join_next().await.is_some() {}
    let acks = acks.lock();
    let (mut from_ack, mut from_send, mut ack) = (histogram(), histogram(), histogram());
    for (sent, acked) in acks.iter().flatten() {
        let _ = ack.record((acked.duration_since(*sent).as_micros() as u64).max(1));
    }
    for (i, at) in arrivals.lock().iter() {
        if let Some(Some((sent, acked))) = acks.get(*i as usize) {
            // A stream can see an op before the revoker sees its ack: 0 then.
            let _ = from_ack.record((at.saturating_duration_since(*acked).as_micros() as u64).max(1));
            let _ = from_send.record((at.saturating_duration_since(*sent).as_micros() as u64).max(1));
        }
    }
    let expected = count * streams as u64;
    errors += expected.saturating_sub(from_ack.len());
    let seconds = started.elapsed().as_secs_f64();
    let what = format!("{count} revokes at {rate}/s, {streams} streams");
    Ok([
        Summary::new(
            format!("ack → Watch stream, {what}"),
            &from_ack,
            from_ack.len(),
            errors,
            seconds,
        ),
        Summary::new(
            format!("revoke sent → Watch stream, {what}"),
            &from_send,
            from_send.len(),
            errors,
            seconds,
        ),
        Summary::new(format!("revoke sent → ack, {what}"), &ack, ack.len(), 0, seconds),
    ])
}

/// Open `streams` idle Watch streams, print one line when they are open,
/// and hold them (reading heartbeats) for `hold`.
pub async fn hold(clients: &[Client], streams: usize, hold: Duration) -> anyhow::Result<()> {
    let opened = open(clients, streams).await?;
    println!(
        "{streams} Watch streams open; holding them for {} s",
        hold.as_secs()
    );
    let mut readers = tokio::task::JoinSet::new();
    let deadline = Instant::now() + hold;
    for mut stream in opened {
        readers.spawn(async move {
            while let Ok(Ok(Some(_))) = tokio::time::timeout(
                deadline.saturating_duration_since(Instant::now()),
                stream.message(),
            )
            .await
            {}
        });
    }
    while readers.join_next().await.is_some() {}
    Ok(())
}

/// What following a node with an in-process replica cost.
#[derive(Debug, Serialize)]
pub struct ReplicaCost {
    /// Deny entries the replica holds.
    pub entries: u64,
    /// Bytes of its deny set.
    pub deny_bytes: u64,
    /// Per entry.
    pub deny_bytes_per_entry: f64,
    /// Resident memory of this process grew by this much while syncing, KiB.
    pub rss_delta_kib: u64,
    /// Time until the replica's digest equalled the node's, seconds.
    pub sync_seconds: f64,
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Follow `addr` with a [`Replica`] until it holds the node's digest (at
/// most `timeout`), and report its memory.
pub async fn replica(addr: &str, token: Option<String>, timeout: Duration) -> anyhow::Result<ReplicaCost> {
    let mut config = ClientConfig::new([addr.to_owned()]);
    config.token = token;
    let probe = rescind_client::Client::new(config.clone())?;
    let want = probe.status().await?.digest;
    let before = rss_kib();
    let started = Instant::now();
    let replica = Replica::start(ReplicaConfig::new(config)).await?;
    loop {
        if replica.status().digest.to_string() == want {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < timeout,
            "the replica did not catch up within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let s = replica.status();
    let bytes = replica.deny_bytes() as u64;
    Ok(ReplicaCost {
        entries: s.deny_entries,
        deny_bytes: bytes,
        deny_bytes_per_entry: bytes as f64 / s.deny_entries.max(1) as f64,
        rss_delta_kib: rss_kib().saturating_sub(before),
        sync_seconds: started.elapsed().as_secs_f64(),
    })
}
