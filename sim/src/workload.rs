//! Edge clients: one per region, attached to its nearest (own-region) node,
//! revoking and checking at the scenario's rates over the simulated network.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rescind_proto::v1 as pb;
use rescind_proto::v1::revocations_client::RevocationsClient;
use tonic::transport::Channel;

use crate::net::{self, PORT};
use crate::observe::Acked;
use crate::run::{ADMIN, World, fxhash};
use crate::scenario::Scenario;

/// What the edge clients did.
#[derive(Default)]
pub struct Log {
    /// Revocations acknowledged, in order.
    pub acked: Vec<Acked>,
    /// Stale accepts: (sim ms of the check, client region).
    pub stale: Vec<(u64, String)>,
    /// Checks answered.
    pub checks: u64,
    /// Requests that failed.
    pub errors: u64,
}

fn now_ms() -> u64 {
    turmoil::sim_elapsed().unwrap_or_default().as_millis() as u64
}

/// One edge client per region.
pub(crate) fn spawn_edges(sim: &mut turmoil::Sim<'_>, s: &Scenario, seed: u64, world: Arc<World>) {
    let revokers: Vec<&str> = s
        .regions
        .iter()
        .map(|r| r.name.as_str())
        .filter(|r| s.workload.revoke_regions.is_empty() || s.workload.revoke_regions.iter().any(|x| x == r))
        .collect();
    let every = |rate: f64| (rate > 0.0).then(|| Duration::from_secs_f64(1.0 / rate));
    let start = s.workload.start;
    let end = start + s.duration;
    for region in &s.regions {
        let mut candidates: Vec<String> = s.resolve(&region.name);
        candidates.extend(
            s.nodes()
                .into_iter()
                .map(|(n, _)| n)
                .filter(|n| !n.starts_with(&format!("{}-", region.name))),
        );
        let revoke_every = if revokers.contains(&region.name.as_str()) {
            every(s.workload.revokes_per_sec / revokers.len() as f64)
        } else {
            None
        };
        let edge = Edge {
            region: region.name.clone(),
            candidates,
            revoke_every,
            check_every: every(s.workload.checks_per_sec),
            rng: StdRng::seed_from_u64(seed ^ fxhash(&region.name)),
            world: world.clone(),
            clients: BTreeMap::new(),
            sockets: net::Sockets::new(),
            target: 0,
        };
        sim.client(format!("edge-{}", region.name), edge.run(start, end));
    }
}

struct Edge {
    region: String,
    /// Own region's nodes first, then the others.
    candidates: Vec<String>,
    revoke_every: Option<Duration>,
    check_every: Option<Duration>,
    rng: StdRng,
    world: Arc<World>,
    clients: BTreeMap<String, RevocationsClient<Channel>>,
    /// This client host's connections (it never crashes).
    sockets: Arc<net::Sockets>,
    /// Which candidate is "nearest" right now (moves on after an error).
    target: usize,
}

impl Edge {
    fn client(&mut self) -> Option<RevocationsClient<Channel>> {
        let node = self.candidates.get(self.target)?.clone();
        if !self.clients.contains_key(&node) {
            let channel = net::channel(
                &format!("{node}:{PORT}"),
                Duration::from_secs(2),
                self.sockets.clone(),
                false,
            )?;
            self.clients.insert(node.clone(), RevocationsClient::new(channel));
        }
        self.clients.get(&node).cloned()
    }

    fn failed(&mut self) {
        self.world.log.lock().errors += 1;
        self.target = (self.target + 1) % self.candidates.len().max(1);
    }

    async fn run(mut self, start: Duration, end: Duration) -> turmoil::Result {
        tokio::time::sleep(start).await;
        let mut next_revoke = self.revoke_every.map(|_| start);
        let mut next_check = self.check_every.map(|_| start);
        let mut k = 0u64;
        loop {
            let now = Duration::from_millis(now_ms());
            let next = match (next_revoke, next_check) {
                (Some(r), Some(c)) => r.min(c),
                (Some(r), None) => r,
                (None, Some(c)) => c,
                (None, None) => break,
            };
            if next >= end {
                break;
            }
            if next > now {
                tokio::time::sleep(next - now).await;
            }
            if next_revoke == Some(next) {
                next_revoke = next_revoke.zip(self.revoke_every).map(|(t, e)| t + e);
                let id = format!("{}-{k}", self.region);
                k += 1;
                self.revoke(id).await;
            } else {
                next_check = next_check.zip(self.check_every).map(|(t, e)| t + e);
                self.check().await;
            }
        }
        Ok(())
    }

    async fn revoke(&mut self, id: String) {
        let Some(mut client) = self.client() else {
            return self.failed();
        };
        let mut req = tonic::Request::new(pb::RevokeRequest {
            target: Some(pb::revoke_request::Target::Token(pb::TokenRevocation {
                token_id: id.clone(),
                expires_at_ms: 0,
                ..Default::default()
            })),
            reason: "simulation".into(),
            actor: self.region.clone(),
        });
        req.set_timeout(Duration::from_secs(2));
        let bearer = format!("Bearer {ADMIN}").parse().expect("ascii token");
        req.metadata_mut().insert("authorization", bearer);
        match client.revoke(req).await {
            Ok(_) => self.world.log.lock().acked.push(Acked { id, at_ms: now_ms() }),
            Err(_) => self.failed(),
        }
    }

    async fn check(&mut self) {
        // Mostly tokens already revoked (the interesting case), some never revoked.
        let revoked = {
            let log = self.world.log.lock();
            (!log.acked.is_empty() && self.rng.random_bool(0.8))
                .then(|| log.acked[self.rng.random_range(0..log.acked.len())].id.clone())
        };
        let id = revoked
            .clone()
            .unwrap_or_else(|| format!("never-{}", self.rng.random::<u32>()));
        let Some(mut client) = self.client() else {
            return self.failed();
        };
        let sent = now_ms();
        let mut req = tonic::Request::new(pb::CheckRequest {
            token_id: Some(id),
            ..Default::default()
        });
        req.set_timeout(Duration::from_secs(2));
        match client.check(req).await {
            Ok(resp) => {
                let mut log = self.world.log.lock();
                log.checks += 1;
                if revoked.is_some() && !resp.into_inner().revoked {
                    log.stale.push((sent, self.region.clone()));
                }
            }
            Err(_) => self.failed(),
        }
    }
}
