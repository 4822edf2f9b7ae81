//! Edge replicas in a simulation: each host runs a `rescind_client::Replica`
//! (the code `rescind edge` runs) following its upstream nodes over the
//! simulated network, and checks tokens against its own memory. The
//! observer here measures them apart from the nodes: time until every
//! replica enforces a revocation, stale accepts at the edges, and whether a
//! replica ever reported itself fresher than its true lag.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rescind_client::{ClientConfig, ClientError, Replica, ReplicaConfig};
use rescind_core::CheckQuery;
use serde::{Deserialize, Serialize};

use crate::holdings::Holdings;
use crate::net::{self, PORT};
use crate::observe::Acked;
use crate::report::Percentiles;
use crate::run::{EPOCH_MS, World, fxhash};
use crate::scenario::Scenario;

/// A running replica as the observer sees it.
#[derive(Clone)]
pub struct RunningReplica {
    /// The replica.
    pub replica: Arc<Replica>,
    /// Simulated ms when it started (its monotonic clock's zero).
    pub started_ms: u64,
}

/// What the edge replicas' own checks found.
#[derive(Default)]
pub struct EdgeLog {
    /// Checks answered from a replica's memory.
    pub checks: u64,
    /// Of those, "allowed" for a token already acknowledged as revoked.
    pub stale_accepts: u64,
}

/// The edge part of a report.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EdgeReport {
    /// Edge replicas in the scenario.
    pub replicas: u64,
    /// From ack to "every edge replica enforces it".
    pub time_to_enforce_ms: Percentiles,
    /// Acknowledged revocations some replica lacks at the end. Must be 0.
    pub lost_revocations: u64,
    /// Checks the replicas answered from memory.
    pub checks: u64,
    /// Of those, "allowed" for a token already acknowledged as revoked.
    pub stale_accepts: u64,
    /// Largest staleness a replica reported (unknown excluded), ms.
    pub max_reported_staleness_ms: u64,
    /// Largest true lag of a replica, ms.
    pub max_true_lag_ms: u64,
    /// Samples where a replica reported itself fresher than its true lag. Must be 0.
    pub staleness_violations: u64,
    /// Watch streams the replicas opened (one each, plus every resume).
    pub streams: u64,
}

fn now_ms() -> u64 {
    turmoil::sim_elapsed().unwrap_or_default().as_millis() as u64
}

/// One host per edge replica.
pub(crate) fn spawn_replicas(sim: &mut turmoil::Sim<'_>, s: &Scenario, seed: u64, world: Arc<World>) {
    let check_every =
        (s.workload.checks_per_sec > 0.0).then(|| Duration::from_secs_f64(1.0 / s.workload.checks_per_sec));
    let (start, end) = (s.workload.start, s.workload.start + s.duration);
    for ((host, region), spec) in s.edge_hosts().into_iter().zip(&s.edges) {
        let endpoints: Vec<String> = spec.upstream.iter().map(|n| format!("{n}:{PORT}")).collect();
        let world = world.clone();
        let name = host.clone();
        let region = region.clone();
        sim.client(host.as_str(), async move {
            let sockets = net::Sockets::new();
            let connector: rescind_client::Connector = Arc::new(move |addr: &str| {
                net::channel(addr, Duration::from_secs(2), sockets.clone(), false)
                    .ok_or_else(|| ClientError::Config(format!("cannot dial {addr}")))
            });
            let mut config =
                ReplicaConfig::new(ClientConfig::new(endpoints).region(region).connector(connector));
            config.wall_clock = Some(Arc::new(|| EPOCH_MS + now_ms()));
            let started_ms = now_ms();
            let replica = Arc::new(Replica::start(config).await?);
            world.replicas.lock().insert(
                name.clone(),
                RunningReplica {
                    replica: replica.clone(),
                    started_ms,
                },
            );
            let mut rng = StdRng::seed_from_u64(seed ^ fxhash(&name));
            if let Some(every) = check_every {
                tokio::time::sleep(start.saturating_sub(Duration::from_millis(now_ms()))).await;
                while Duration::from_millis(now_ms()) < end {
                    tokio::time::sleep(every).await;
                    let revoked = {
                        let log = world.log.lock();
                        (!log.acked.is_empty() && rng.random_bool(0.8))
                            .then(|| log.acked[rng.random_range(0..log.acked.len())].id.clone())
                    };
                    let id = revoked
                        .clone()
                        .unwrap_or_else(|| format!("never-{}", rng.random::<u32>()));
                    let held = replica.check(&CheckQuery::token(&id)).decision.revoked();
                    let mut log = world.edge_log.lock();
                    log.checks += 1;
                    if revoked.is_some() && !held {
                        log.stale_accepts += 1;
                    }
                }
            }
            // Keep following until the run ends.
            std::future::pending::<()>().await;
            Ok(())
        });
    }
}

/// What the observer keeps of the replicas between samples.
#[derive(Default)]
pub struct EdgeObserver {
    held: Holdings,
    max_reported: u64,
    max_true_lag: u64,
    violations: u64,
}

impl EdgeObserver {
    /// One sample at `now_ms` of every replica in `hosts`.
    pub fn sample(
        &mut self,
        now_ms: u64,
        hosts: &[(String, String)],
        running: &BTreeMap<String, RunningReplica>,
        log: &[Acked],
    ) {
        if hosts.is_empty() {
            return;
        }
        self.held.grow(hosts.iter().map(|(h, _)| h), log);
        for (host, r) in running {
            let replica = &r.replica;
            let true_lag = self.held.update(host, now_ms, log, |id| {
                replica.check(&CheckQuery::token(id)).decision.revoked()
            });
            self.max_true_lag = self.max_true_lag.max(true_lag);
            let since = Duration::from_millis(now_ms.saturating_sub(r.started_ms));
            if let Some(reported) = r.replica.staleness_at(since) {
                let reported = reported.as_millis() as u64;
                self.max_reported = self.max_reported.max(reported);
                if true_lag > reported {
                    self.violations += 1;
                }
            }
        }
        // Every replica counts, started or not: an edge that never ran lacks all.
        self.held.settle(now_ms, hosts.iter().map(|(h, _)| h));
    }

    /// The edge part of the report (None without edges).
    pub fn report(
        &self,
        hosts: &[(String, String)],
        running: &BTreeMap<String, RunningReplica>,
        log: &[Acked],
        edge_log: &EdgeLog,
    ) -> Option<EdgeReport> {
        if hosts.is_empty() {
            return None;
        }
        let enforce = log
            .iter()
            .zip(&self.held.enforced_ms)
            .filter_map(|(a, e)| e.map(|e| e.saturating_sub(a.at_ms)))
            .collect();
        Some(EdgeReport {
            replicas: hosts.len() as u64,
            time_to_enforce_ms: Percentiles::of(enforce),
            lost_revocations: self.held.lacking(hosts.iter().map(|(h, _)| h)).len() as u64,
            checks: edge_log.checks,
            stale_accepts: edge_log.stale_accepts,
            max_reported_staleness_ms: self.max_reported,
            max_true_lag_ms: self.max_true_lag,
            staleness_violations: self.violations,
            streams: running.values().map(|r| r.replica.status().streams).sum(),
        })
    }
}
