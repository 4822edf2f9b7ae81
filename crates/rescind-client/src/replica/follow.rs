//! Following a node's `Watch` stream, failing over to another endpoint,
//! and adopting freshness from probes (see the module doc of `replica`).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rescind_core::VersionVector;
use rescind_core::wire::{decode_cutoffs, decode_deny, decode_ops};
use rescind_proto::v1 as pb;
use rescind_proto::v1::revocations_client::RevocationsClient;
use tokio::sync::watch;
use tokio::time::Instant;
use tonic::transport::Channel;

use super::{ReplicaConfig, Shared, save_checkpoint};
use crate::answer::{vector_from_pb, vector_to_pb};
use crate::client::{Client, MAX_MESSAGE_BYTES};

/// How a stream from one endpoint ended.
enum Ended {
    /// The replica is shutting down.
    Stopped,
    /// The stream ended or failed; `followed`: it had delivered events.
    Lost { followed: bool, why: String },
}

/// Probes waiting for the replica's vector to cover theirs; a few at most.
const MAX_PENDING_PROBES: usize = 8;

/// The system's wall clock, unix ms.
pub(crate) fn system_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The follower: stream from the best endpoint; on loss, the next.
pub(crate) async fn run(
    shared: Arc<Shared>,
    client: Client,
    config: ReplicaConfig,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_millis(50);
    let mut last_checkpoint = Instant::now();
    let mut last_gc = Instant::now();
    loop {
        let mut progressed = false;
        for (i, addr, channel) in client.order() {
            if *stop.borrow() {
                return;
            }
            match follow_one(&shared, &client, &config, &addr, channel, &mut stop).await {
                Ended::Stopped => return,
                Ended::Lost { followed, why } => {
                    *shared.upstream.lock() = None;
                    *shared.last_error.lock() = Some(format!("{addr}: {why}"));
                    client.mark_down(i);
                    tracing::warn!(upstream = %addr, reason = %why, "replica lost its upstream; resuming from its vector on another endpoint");
                    if followed {
                        progressed = true;
                        break;
                    }
                }
            }
        }
        if last_gc.elapsed() >= config.gc_interval {
            prune(&shared, shared.now_ms());
            last_gc = Instant::now();
        }
        if config.checkpoint.is_some() && last_checkpoint.elapsed() >= config.checkpoint_interval {
            if let Err(e) = save_checkpoint(&shared, config.checkpoint.clone()).await {
                tracing::warn!(error = %e, "replica checkpoint not saved");
            }
            last_checkpoint = Instant::now();
        }
        if progressed {
            backoff = Duration::from_millis(50);
            continue;
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stop.changed() => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(1));
    }
}

fn prune(shared: &Shared, now_ms: u64) {
    let n = shared.state.write().prune_expired(now_ms).len();
    if n > 0 {
        tracing::debug!(pruned = n, "replica dropped expired entries");
    }
}

type Probe = std::pin::Pin<Box<dyn std::future::Future<Output = Option<(u64, pb::StatusResponse)>> + Send>>;

/// Follow one endpoint until its stream ends or the replica stops.
async fn follow_one(
    shared: &Arc<Shared>,
    client: &Client,
    config: &ReplicaConfig,
    addr: &str,
    channel: Channel,
    stop: &mut watch::Receiver<bool>,
) -> Ended {
    let lost = |followed: bool, why: String| Ended::Lost { followed, why };
    let mut stub = RevocationsClient::new(channel.clone())
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let request = pb::WatchRequest {
        from: vector_to_pb(shared.state.read().clock()),
        cluster_id: shared.cluster_id.lock().clone().unwrap_or_default(),
    };
    let mut req = client.request(request, config.client.attempt_timeout);
    // A stream has no deadline: drop the one `request` set.
    req.metadata_mut().remove("grpc-timeout");
    let opened = tokio::time::timeout(config.client.attempt_timeout, stub.watch(req)).await;
    let mut stream = match opened {
        Err(_) => return lost(false, "no answer to Watch".into()),
        Ok(Err(status)) => return lost(false, format!("{:?}: {}", status.code(), status.message())),
        Ok(Ok(s)) => s.into_inner(),
    };
    shared.streams.fetch_add(1, Ordering::Relaxed);
    let mut followed = false;
    let mut pending: Vec<(u64, u64, VersionVector)> = Vec::new();
    let mut probe: Option<Probe> = None;
    let mut next_probe = Instant::now();
    let mut last_event = Instant::now();
    loop {
        if probe.is_none() && Instant::now() >= next_probe && followed {
            probe = Some(start_probe(
                client,
                channel.clone(),
                shared.clone(),
                config.client.attempt_timeout,
            ));
            next_probe = Instant::now() + config.probe_interval;
        }
        let silence = (last_event + config.silence_timeout).saturating_duration_since(Instant::now());
        // The probe timer only runs while following (before the hello no
        // probe starts, and a timer already due would spin this loop).
        let arm = probe.is_none() && followed;
        let probing = async {
            match probe.as_mut() {
                Some(p) => p.await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = stop.changed() => return Ended::Stopped,
            _ = tokio::time::sleep(silence) => {
                return lost(followed, format!("silent for {} ms", config.silence_timeout.as_millis()));
            }
            _ = tokio::time::sleep_until(next_probe), if arm => {}
            answer = probing => {
                probe = None;
                if let Some((sent_at, s)) = answer
                    && s.staleness_ms != u64::MAX
                {
                    if pending.len() == MAX_PENDING_PROBES {
                        pending.remove(0);
                    }
                    pending.push((sent_at, s.staleness_ms, vector_from_pb(&s.clock)));
                    adopt(shared, &mut pending);
                }
            }
            message = stream.message() => {
                let event = match message {
                    Ok(Some(e)) => e,
                    Ok(None) => return lost(followed, "the stream ended".into()),
                    Err(status) => return lost(followed, format!("{:?}: {}", status.code(), status.message())),
                };
                last_event = Instant::now();
                if let Err(why) = apply(shared, addr, event, &mut followed) {
                    return lost(followed, why);
                }
                adopt(shared, &mut pending);
            }
        }
    }
}

/// Ask the node for its staleness and vector; `sent_at` on our clock.
fn start_probe(client: &Client, channel: Channel, shared: Arc<Shared>, timeout: Duration) -> Probe {
    let req = client.request(pb::StatusRequest {}, timeout);
    Box::pin(async move {
        let sent_at = shared.mono_ms();
        let mut stub = RevocationsClient::new(channel).max_decoding_message_size(MAX_MESSAGE_BYTES);
        match tokio::time::timeout(timeout, stub.status(req)).await {
            Ok(Ok(s)) => Some((sent_at, s.into_inner())),
            _ => None,
        }
    })
}

/// Adopt every probe whose vector the replica now covers.
fn adopt(shared: &Shared, pending: &mut Vec<(u64, u64, VersionVector)>) {
    if pending.is_empty() {
        return;
    }
    let held = shared.state.read().clock().clone();
    let mut newest = None;
    pending.retain(|(sent_at, staleness, v)| {
        let covered = v.iter().all(|(o, seq)| held.get(o) >= seq);
        if covered {
            newest = Some(newest.unwrap_or(0).max(sent_at.saturating_sub(*staleness)));
        }
        !covered
    });
    if let Some(t) = newest {
        shared.fresh_at(t);
    }
}

/// Apply one event; an error means the upstream misbehaved.
fn apply(shared: &Shared, addr: &str, event: pb::WatchEvent, followed: &mut bool) -> Result<(), String> {
    use pb::watch_event::Event;
    match event.event {
        None => return Err("an empty event".into()),
        Some(Event::Hello(h)) => {
            let mut cluster = shared.cluster_id.lock();
            match cluster.as_deref() {
                Some(mine) if mine != h.cluster_id => {
                    return Err(format!(
                        "upstream {addr} ({}) belongs to cluster `{}`, this replica follows `{mine}`: refusing to merge two clusters",
                        h.node_id, h.cluster_id
                    ));
                }
                _ => *cluster = Some(h.cluster_id.clone()),
            }
            drop(cluster);
            tracing::info!(upstream = %addr, node = %h.node_id, "replica following");
            *shared.upstream.lock() = Some((addr.to_owned(), h.node_id));
            *followed = true;
        }
        Some(Event::Snapshot(page)) => {
            let deny = decode_deny(&page.deny).map_err(|e| format!("snapshot: {e}"))?;
            let cutoffs = decode_cutoffs(&page.cutoffs).map_err(|e| format!("snapshot: {e}"))?;
            let now = shared.now_ms();
            let mut state = shared.state.write();
            for (id, entry) in &deny {
                state.merge_deny(id, entry, now);
            }
            for (kind, principal, cutoff) in &cutoffs {
                state.merge_cutoff(*kind, principal, *cutoff);
            }
            if page.done {
                for (origin, seq) in vector_from_pb(&page.covered).iter() {
                    state.raise_clock(origin, seq);
                }
            }
        }
        Some(Event::Ops(ops)) => {
            let ops = decode_ops(&ops.ops).map_err(|e| e.to_string())?;
            let now = shared.now_ms();
            let mut state = shared.state.write();
            for op in &ops {
                state.apply_op(op, now);
            }
        }
        Some(Event::Heartbeat(_)) => {}
    }
    shared.applied.send_modify(|n| *n += 1);
    Ok(())
}
