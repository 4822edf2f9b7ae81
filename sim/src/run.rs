//! One seeded run of a scenario: build the turmoil world, start the real
//! nodes and the edge clients, step simulated time while injecting the
//! timeline's faults, observe, and assemble the [`Report`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rescind_node::clock::WallClock;

use rescind_node::{Config, Engine, Node, Parts};
use rescind_store::{Identity, MemStore};

use crate::edges::{EdgeLog, EdgeObserver, RunningReplica};
use crate::net::{self, PORT};
use crate::observe::{Observer, same_state};
use crate::report::{PerNode, Percentiles, Phase, Report, Trace};
use crate::scenario::Scenario;
use crate::settings::{Overrides, SettingError};
use crate::workload::{self, Log};

/// The admin token every simulated node accepts.
pub const ADMIN: &str = "simulation-admin-token-000";
const CLUSTER_KEY: &str = "simulation-cluster-key-000";
/// Unix ms at simulated time zero (2026-11-24T00:00:00Z).
pub(crate) const EPOCH_MS: u64 = 1_795_478_400_000;
/// How often the observer samples, in simulated ms.
const SAMPLE_MS: u64 = 10;

/// Why a run could not complete.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// turmoil reported a host failure.
    #[error("simulation failed: {0}")]
    Turmoil(String),
    /// A `--set` the node config refuses.
    #[error(transparent)]
    Setting(#[from] SettingError),
}

/// A node's wall clock: simulated time plus its skew.
struct SimClock {
    skew_ms: Arc<AtomicI64>,
}

impl WallClock for SimClock {
    fn now_ms(&self) -> u64 {
        let elapsed = turmoil::sim_elapsed().unwrap_or_default().as_millis() as i64;
        (EPOCH_MS as i64 + elapsed + self.skew_ms.load(Ordering::Relaxed)).max(0) as u64
    }
}

/// A running node as the observer sees it.
#[derive(Clone)]
pub struct Running {
    /// Its engine.
    pub engine: Engine,
    /// Which start of its software (1, 2, ...).
    pub start: u64,
    /// Simulated ms when it started.
    pub started_ms: u64,
}

/// What the hosts and the driving loop share.
#[derive(Default)]
pub(crate) struct World {
    /// Running nodes: engine, which start of the software it is, and the
    /// simulated ms at which it started (its monotonic clock's zero).
    engines: Mutex<BTreeMap<String, Running>>,
    /// Each node's disk: survives crashes, replaced by a wipe.
    disks: Mutex<BTreeMap<String, MemStore>>,
    /// Starts of each node's software.
    starts: Mutex<BTreeMap<String, u64>>,
    skews: BTreeMap<String, Arc<AtomicI64>>,
    /// Bytes each node wrote on its peer connections, over all its starts.
    pub(crate) peer_bytes: BTreeMap<String, Arc<AtomicU64>>,
    /// What the edge clients did.
    pub(crate) log: Mutex<Log>,
    /// Each running node's connections (see [`net::Sockets`]): a crash
    /// closes them in the order they were opened.
    sockets: Mutex<BTreeMap<String, Weak<net::Sockets>>>,
    /// Running edge replicas, by host.
    pub(crate) replicas: Mutex<BTreeMap<String, RunningReplica>>,
    /// What the edge replicas' own checks found.
    pub(crate) edge_log: Mutex<EdgeLog>,
}

/// The simulator's part of a node's config, as TOML: the settings of a
/// sweep are laid over it (see [`crate::settings`]).
fn node_table(s: &Scenario, name: &str, region: &str) -> toml::Table {
    let text = |v: &str| toml::Value::String(v.to_owned());
    let mut t = toml::Table::new();
    t.insert("node_name".into(), text(name));
    t.insert("region".into(), text(region));
    t.insert("listen".into(), text(&format!("0.0.0.0:{PORT}")));
    t.insert("admin_token".into(), text(ADMIN));
    t.insert("advertise_addr".into(), text(&format!("{name}:{PORT}")));
    // A simulated network: the cluster key is the peers' credential here.
    t.insert("insecure_peers".into(), toml::Value::Boolean(true));
    if s.replication {
        t.insert("cluster_key".into(), text(CLUSTER_KEY));
        let seeds = s
            .regions
            .iter()
            .map(|r| format!("{}-1", r.name))
            .filter(|n| n != name)
            .map(|n| {
                let mut peer = toml::Table::new();
                peer.insert("addr".into(), text(&format!("{n}:{PORT}")));
                toml::Value::Table(peer)
            })
            .collect();
        t.insert("peers".into(), toml::Value::Array(seeds));
    }
    let mut gossip = toml::Table::new();
    gossip.insert(
        "interval".into(),
        text(&format!("{}ns", s.gossip_interval.as_nanos())),
    );
    t.insert("gossip".into(), toml::Value::Table(gossip));
    t
}

/// Every node's config: the simulator's keys with `overrides` laid over.
fn node_configs(
    s: &Scenario,
    nodes: &[(String, String)],
    overrides: &Overrides,
) -> Result<Vec<Config>, SettingError> {
    nodes
        .iter()
        .map(|(name, region)| overrides.config(node_table(s, name, region)))
        .collect()
}

/// Check `overrides` against `scenario` without running it: the error a
/// run would stop with, if any.
pub fn check_overrides(scenario: &Scenario, overrides: &Overrides) -> Result<(), SettingError> {
    node_configs(scenario, &scenario.nodes(), overrides).map(|_| ())
}

fn fresh_disk(name: &str, rng: &mut StdRng) -> MemStore {
    MemStore::with_identity(Identity {
        node_name: name.to_owned(),
        incarnation: rng.random::<u64>().max(1),
    })
}

/// Run `scenario` with `seed`, the nodes on their default config.
pub fn run(scenario: &Scenario, seed: u64) -> Result<Report, SimError> {
    run_with(scenario, seed, &Overrides::default())
}

/// Run `scenario` with `seed`, each node's config changed by `overrides`.
pub fn run_with(scenario: &Scenario, seed: u64, overrides: &Overrides) -> Result<Report, SimError> {
    let total = scenario.workload.start + scenario.duration + scenario.settle;
    let mut sim = turmoil::Builder::new()
        .simulation_duration(total + Duration::from_secs(5))
        .tick_duration(Duration::from_millis(1))
        .rng_seed(seed)
        .repair_rate(0.01)
        .build();
    let mut rng = StdRng::seed_from_u64(seed);
    let nodes = scenario.nodes();
    let configs = node_configs(scenario, &nodes, overrides)?;
    let world = Arc::new(World {
        skews: nodes
            .iter()
            .map(|(n, _)| (n.clone(), Arc::new(AtomicI64::new(0))))
            .collect(),
        peer_bytes: nodes
            .iter()
            .map(|(n, _)| (n.clone(), Arc::new(AtomicU64::new(0))))
            .collect(),
        ..World::default()
    });
    for (name, _) in &nodes {
        world
            .disks
            .lock()
            .insert(name.clone(), fresh_disk(name, &mut rng));
    }
    let node_names: Arc<BTreeSet<String>> = Arc::new(nodes.iter().map(|(n, _)| n.clone()).collect());
    for ((name, _), config) in nodes.iter().zip(configs) {
        let (world, name) = (world.clone(), name.clone());
        let host = name.clone();
        let node_names = node_names.clone();
        sim.host(host.as_str(), move || {
            let (world, config, name) = (world.clone(), config.clone(), name.clone());
            let node_names = node_names.clone();
            async move {
                let start = {
                    let mut starts = world.starts.lock();
                    let n = starts.entry(name.clone()).or_insert(0);
                    *n += 1;
                    *n
                };
                let store = world.disks.lock()[&name].clone();
                // Held until the software stops: the last handle, so a
                // crash closes the connections only once every task is gone.
                let sockets = net::Sockets::counting(world.peer_bytes[&name].clone());
                world
                    .sockets
                    .lock()
                    .insert(name.clone(), Arc::downgrade(&sockets));
                let parts = Parts {
                    store: Arc::new(store),
                    clock: Arc::new(SimClock {
                        skew_ms: world.skews[&name].clone(),
                    }),
                    channels: net::channels(Duration::from_secs(2), sockets.clone()),

                    gossip_seed: Some(seed ^ (start << 32) ^ fxhash(&name)),
                };
                let started_ms = turmoil::sim_elapsed().unwrap_or_default().as_millis() as u64;
                let node = Node::assemble(config, parts)?;
                let running = Running {
                    engine: node.engine().clone(),
                    start,
                    started_ms,
                };
                world.engines.lock().insert(name.clone(), running);
                let incoming = net::incoming(sockets.clone(), node_names).await?;
                node.serve_incoming(incoming, &format!("{name}:{PORT}"), std::future::pending())
                    .await?;
                drop(sockets);
                Ok(())
            }
        });
    }
    workload::spawn_edges(&mut sim, scenario, seed, world.clone());
    crate::edges::spawn_replicas(&mut sim, scenario, seed, world.clone());
    let edge_hosts = scenario.edge_hosts();
    let mut edge_observer = EdgeObserver::default();
    configure_network(&mut sim, scenario);

    let mut events: Vec<(usize, &crate::scenario::Event)> = scenario.events.iter().enumerate().collect();
    events.sort_by_key(|(i, e)| (e.at, *i));
    let mut next_event = 0;
    let mut observer = Observer::default();
    let mut phases = vec![Phase {
        label: "steady".into(),
        from_ms: 0,
        to_ms: total.as_millis() as u64,
    }];
    let mut waiting_since: Vec<u64> = Vec::new();
    let mut convergence: Vec<Option<u64>> = Vec::new();
    let mut partitioned: Vec<(String, String)> = Vec::new();
    loop {
        let now = sim.elapsed();
        let now_ms = now.as_millis() as u64;
        while next_event < events.len() && events[next_event].1.at <= now {
            let (_, e) = events[next_event];
            let label = crate::events::apply(
                &mut sim,
                scenario,
                e,
                &world,
                &mut partitioned,
                &mut observer,
                &mut rng,
            );
            if e.heal || e.restart.is_some() || e.wipe.is_some() {
                waiting_since.push(now_ms);
                convergence.push(None);
            }
            if let Some(last) = phases.last_mut() {
                last.to_ms = now_ms;
            }
            phases.push(Phase {
                label,
                from_ms: now_ms,
                to_ms: total.as_millis() as u64,
            });
            next_event += 1;
        }
        if now_ms.is_multiple_of(SAMPLE_MS) {
            let running = world.engines.lock().clone();
            // The hosts only run inside `sim.step()`, so holding the log here blocks nobody.
            observer.sample(now_ms, &nodes, &running, &world.log.lock().acked);
            let replicas = world.replicas.lock().clone();
            edge_observer.sample(now_ms, &edge_hosts, &replicas, &world.log.lock().acked);
            if convergence.iter().any(Option::is_none) && same_state(&running) && observer.lost(&running) == 0
            {
                for (i, since) in waiting_since.iter().enumerate() {
                    if convergence[i].is_none() {
                        convergence[i] = Some(now_ms - since);
                    }
                }
            }
        }
        if now >= total {
            break;
        }
        sim.step().map_err(|e| SimError::Turmoil(e.to_string()))?;
    }

    let running = world.engines.lock().clone();
    let log = world.log.lock();
    let edges = edge_observer.report(
        &edge_hosts,
        &world.replicas.lock(),
        &log.acked,
        &world.edge_log.lock(),
    );
    let lost = observer.lost(&running);
    let [messages, bytes, duplicates] = observer.totals();
    let run_secs = total.as_secs_f64().max(0.001);
    let peer_rates: Vec<u64> = world
        .peer_bytes
        .values()
        .map(|b| (b.load(Ordering::Relaxed) as f64 / run_secs).round() as u64)
        .collect();
    let acked = log.acked.len() as u64;
    let messages_per_revocation = if acked == 0 {
        0.0
    } else {
        (messages as f64 / acked as f64 * 10.0).round() / 10.0
    };
    let traces: Vec<Trace> = log
        .acked
        .iter()
        .zip(&observer.held.enforced_ms)
        .map(|(a, e)| Trace {
            id: a.id.clone(),
            acked_ms: a.at_ms,
            enforced_ms: *e,
        })
        .collect();
    let enforce = traces
        .iter()
        .filter_map(|t| t.enforced_ms.map(|e| e.saturating_sub(t.acked_ms)))
        .collect();
    let phase_of = |t: u64| {
        phases
            .iter()
            .rev()
            .find(|p| p.from_ms <= t)
            .map_or("steady".to_string(), |p| p.label.clone())
    };
    let mut by_region = BTreeMap::new();
    let mut by_phase = BTreeMap::new();
    for (t, region) in &log.stale {
        *by_region.entry(region.clone()).or_insert(0) += 1;
        *by_phase.entry(phase_of(*t)).or_insert(0) += 1;
    }
    Ok(Report {
        scenario: scenario.name.clone(),
        seed,
        converged: lost == 0 && same_state(&running) && !running.is_empty(),
        lost_revocations: lost,
        stale_accepts: log.stale.len() as u64,
        stale_accepts_by_region: by_region,
        stale_accepts_by_phase: by_phase,
        time_to_enforce_ms: Percentiles::of(enforce),
        convergence_after_heal_ms: convergence,
        messages,
        bytes,
        peer_bytes_per_node_per_sec: PerNode::of(&peer_rates),
        messages_per_revocation,
        duplicate_deliveries: duplicates,
        max_reported_staleness_ms: observer.max_reported,
        max_true_lag_ms: observer.max_true_lag,
        staleness_violations: observer.violations,
        revocations: acked,
        checks: log.checks,
        request_errors: log.errors,
        phases,
        traces,
        region_convergence: observer.region_series.clone(),
        edges,
    })
}

/// Latency, jitter and loss between every pair of hosts.
fn configure_network(sim: &mut turmoil::Sim<'_>, s: &Scenario) {
    let mut hosts: Vec<(String, String)> = s.nodes();
    hosts.extend(
        s.regions
            .iter()
            .map(|r| (format!("edge-{}", r.name), r.name.clone())),
    );
    hosts.extend(s.edge_hosts());
    for (i, (a, ra)) in hosts.iter().enumerate() {
        for (b, rb) in &hosts[i + 1..] {
            let link = s.network.links.iter().find(|l| {
                (l.between[0] == *ra && l.between[1] == *rb) || (l.between[0] == *rb && l.between[1] == *ra)
            });
            let (latency, jitter, loss) = match (ra == rb, link) {
                (true, _) => (s.network.intra_region, s.network.jitter, 0.0),
                (false, Some(l)) => (l.latency, l.jitter, l.loss),
                // Not for a checked scenario: validation wants every pair linked.
                (false, None) => (Duration::from_millis(50), s.network.jitter, 0.0),
            };
            sim.set_link_latency(a.as_str(), b.as_str(), latency);
            sim.set_link_max_message_latency(a.as_str(), b.as_str(), latency + jitter);
            if loss > 0.0 {
                // Outages of ~100 ms (repair rate 1% per 1 ms tick) covering `loss` of the time.
                sim.set_link_fail_rate(a.as_str(), b.as_str(), 0.01 * loss / (1.0 - loss));
            }
        }
    }
}

/// A stable hash of a name (FNV-1a), for deterministic per-node seeds.
pub(crate) fn fxhash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl World {
    /// `node` is about to crash: its connections close in the order they
    /// were opened, whatever order its runtime drops its tasks in.
    pub(crate) fn crashing(&self, node: &str) {
        if let Some(sockets) = self.sockets.lock().get(node).and_then(Weak::upgrade) {
            sockets.crashing();
        }
    }

    /// Stop a node's software and drop its memory.
    pub(crate) fn crashed(&self, node: &str) {
        self.engines.lock().remove(node);
    }

    /// Replace a node's disk with an empty one (new incarnation).
    pub(crate) fn wipe(&self, node: &str, rng: &mut StdRng) {
        self.disks.lock().insert(node.to_owned(), fresh_disk(node, rng));
    }

    /// Set a node's clock skew.
    pub(crate) fn skew(&self, node: &str, ms: i64) {
        if let Some(s) = self.skews.get(node) {
            s.store(ms, Ordering::Relaxed);
        }
    }

    /// Acknowledged revocations so far.
    pub(crate) fn acked_count(&self) -> usize {
        self.log.lock().acked.len()
    }
}
