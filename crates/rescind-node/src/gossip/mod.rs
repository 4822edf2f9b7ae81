//! Replication: the node's side of the gossip protocol.
//!
//! The protocol itself lives in `rescind-gossip` as synchronous functions
//! with no I/O (`round`: request, answer, receive, adopt, push back, relay;
//! `snapshot`: paging and pulling; see its `ALGORITHM.md`). This module is
//! the transport: it converts protobuf ↔ the core's messages, runs the
//! core's reads on the store thread, applies what the core hands back
//! through the [`Engine`] (whose writer makes it durable), and makes the
//! gRPC calls.
//! - [`service`]: the `Peers` service a node answers;
//! - [`client`]: channels to peers, with the cluster key;
//! - [`rounds`]: an anti-entropy round, a snapshot pull, the eager pusher;
//! - [`source`]: the store as the core's `OpLog` and `SnapshotSource`;
//! - [`wire`]: protobuf ↔ gossip types, validated.
//!
//! [`Gossip::spawn`] starts the anti-entropy loop and the pusher as tracked
//! tasks; [`Gossip::shutdown`] stops them.

pub mod client;
pub mod rounds;
pub mod service;
pub mod source;
pub mod wire;

use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rescind_core::Op;
use rescind_gossip::Limits;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tracing::Instrument;

pub use client::{ChannelFactory, PeerChannels, tcp_channels};
pub use service::PeerService;

use crate::engine::Engine;

/// Settings of the gossip loops.
#[derive(Clone, Debug)]
pub struct GossipSettings {
    /// Mean time between anti-entropy rounds (each is jittered ±25%).
    pub interval: Duration,
    /// Peers an op is pushed to at once.
    pub push_fanout: usize,
    /// Message bounds.
    pub limits: Limits,
    /// Seed for peer choice and jitter (None: from the OS).
    pub seed: Option<u64>,
}

/// The running gossip tasks.
pub struct Gossip {
    tasks: JoinSet<()>,
}

impl Gossip {
    /// Start anti-entropy and the eager pusher.
    pub fn spawn(
        engine: Engine,
        channels: Arc<PeerChannels>,
        local_ops: mpsc::Receiver<Op>,
        settings: GossipSettings,
    ) -> Gossip {
        let rng = match settings.seed {
            Some(s) => StdRng::seed_from_u64(s),
            None => StdRng::from_os_rng(),
        };
        let mut tasks = JoinSet::new();
        // A push target counts as live if heard from within ~10 rounds.
        let fresh_ms = settings.interval.as_millis() as u64 * 10;
        tasks.spawn(rounds::push_loop(
            engine.clone(),
            channels.clone(),
            local_ops,
            settings.push_fanout,
            settings.limits.max_ops,
            fresh_ms,
        ));
        tasks.spawn(anti_entropy_loop(engine, channels, settings, rng));
        Gossip { tasks }
    }

    /// Stop every gossip task.
    pub async fn shutdown(mut self) {
        self.tasks.shutdown().await;
    }
}

/// Most anti-entropy rounds in flight: a peer that hangs (stopped, partitioned)
/// holds one slot until `peer_timeout`, and the others keep every other peer fresh.
const MAX_ROUNDS_IN_FLIGHT: usize = 4;

async fn anti_entropy_loop(
    engine: Engine,
    channels: Arc<PeerChannels>,
    settings: GossipSettings,
    mut rng: StdRng,
) {
    let base = settings.interval.as_millis().max(1) as u64;
    let fresh_ms = base * 10;
    let mut rounds = JoinSet::new();
    let mut turn = 0usize;
    let failures = Arc::new(FailureLog::default());
    loop {
        let jitter = rng.random_range(base * 3 / 4..=base * 5 / 4);
        tokio::time::sleep(Duration::from_millis(jitter)).await;
        while rounds.try_join_next().is_some() {}
        if rounds.len() >= MAX_ROUNDS_IN_FLIGHT {
            continue;
        }
        // Every other round goes to one of the eager-push targets in turn, so
        // their connections are warm before a revocation needs them.
        turn += 1;
        let now = engine.mono_ms();
        let target = engine.with_cluster(|c| {
            let sticky = c.push_targets(now, fresh_ms, settings.push_fanout);
            if turn.is_multiple_of(2) && !sticky.is_empty() {
                Some(sticky[(turn / 2) % sticky.len()].clone())
            } else {
                c.anti_entropy_target(&mut rng)
            }
        });
        let Some(addr) = target else {
            continue;
        };
        let (engine, channels, limits) = (engine.clone(), channels.clone(), settings.limits);
        let failures = failures.clone();
        let span = tracing::debug_span!("gossip_round", peer = %addr);
        rounds.spawn(
            async move {
                let result = rounds::anti_entropy(&engine, &channels, &addr, &limits).await;
                engine.metrics().gossip.round(result.is_ok());
                match result {
                    Ok(s) if s.pulled + s.pushed > 0 || s.snapshot => {
                        tracing::debug!(
                            pulled = s.pulled,
                            pushed = s.pushed,
                            snapshot = s.snapshot,
                            "round"
                        );
                    }
                    Ok(_) => {}
                    Err(e) if failures.first_in_a_while(&addr) => {
                        tracing::warn!(peer = %addr, error = %e, "gossip round failed (repeats are logged at debug for a minute)");
                    }
                    Err(e) => tracing::debug!(error = %e, "gossip round failed"),
                }
            }
            .instrument(span),
        );
    }
}

/// How often a failing peer is logged at `warn`.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// When each failing peer was last logged at `warn` (peer addresses come
/// from the membership, so it holds at most one entry per member).
#[derive(Default)]
struct FailureLog(parking_lot::Mutex<std::collections::HashMap<String, tokio::time::Instant>>);

impl FailureLog {
    /// `addr` failed; true when it was not logged at `warn` in the last minute.
    fn first_in_a_while(&self, addr: &str) -> bool {
        let now = tokio::time::Instant::now();
        let mut last = self.0.lock();
        match last.get(addr) {
            Some(t) if now.duration_since(*t) < WARN_EVERY => false,
            _ => {
                last.insert(addr.to_owned(), now);
                true
            }
        }
    }
}
