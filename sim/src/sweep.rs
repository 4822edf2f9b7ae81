//! `rescind-sim sweep`: one scenario over many seeds, under one or more
//! node configurations (a grid of `--set` values), on a few threads. Every
//! (configuration, seed) run is deterministic, and the results are ordered
//! by configuration and seed, so the tables do not depend on `--jobs`.

use std::fmt::Write;
use std::ops::RangeInclusive;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::report::Report;
use crate::scenario::Scenario;
use crate::settings::Overrides;
use crate::verdict;

/// One seed's run under one configuration.
#[derive(Debug, Clone)]
pub struct SeedRun {
    /// The seed.
    pub seed: u64,
    /// Its report (`None`: the run could not complete; `problems` says why).
    pub report: Option<Report>,
    /// What the verdict found (empty: healthy).
    pub problems: Vec<String>,
}

/// One configuration's runs, by seed.
#[derive(Debug, Clone)]
pub struct Configuration {
    /// The settings laid over the nodes' config.
    pub overrides: Overrides,
    /// Its runs, ordered by seed.
    pub runs: Vec<SeedRun>,
}

/// Run every seed of `seeds` under every configuration of `grid`, on `jobs`
/// threads; `progress(done, failed)` after each run.
pub fn run_grid(
    scenario: &Scenario,
    seeds: RangeInclusive<u64>,
    grid: &[Overrides],
    jobs: usize,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Vec<Configuration> {
    let seeds: Vec<u64> = seeds.collect();
    let total = seeds.len() * grid.len();
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Vec<SeedRun>>> = Mutex::new(vec![Vec::new(); grid.len()]);
    let failed = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..jobs.clamp(1, 64) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        break;
                    }
                    let (config, seed) = (i / seeds.len(), seeds[i % seeds.len()]);
                    let run = match crate::run::run_with(scenario, seed, &grid[config]) {
                        Ok(report) => SeedRun {
                            seed,
                            problems: verdict(scenario, &report),
                            report: Some(report),
                        },
                        Err(e) => SeedRun {
                            seed,
                            report: None,
                            problems: vec![format!("could not run: {e}")],
                        },
                    };
                    if !run.problems.is_empty() {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                    results.lock().unwrap_or_else(|e| e.into_inner())[config].push(run);
                    let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                    progress(n, failed.load(Ordering::Relaxed));
                }
            });
        }
    });
    let results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    grid.iter()
        .cloned()
        .zip(results)
        .map(|(overrides, mut runs)| {
            runs.sort_by_key(|r| r.seed);
            Configuration { overrides, runs }
        })
        .collect()
}

fn median(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

/// A configuration's figures over its seeds: medians, and the worst p99.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The configuration (`defaults` when nothing is set).
    pub label: String,
    /// Seeds that ran.
    pub seeds: usize,
    /// Seeds the verdict failed (or that could not run).
    pub failed: usize,
    /// Median over seeds of the p50 time to enforce, ms.
    pub p50_ms: u64,
    /// Median over seeds of the p99 time to enforce, ms.
    pub p99_ms: u64,
    /// Largest p99 of any seed, ms.
    pub p99_worst_ms: u64,
    /// Median stale accepts.
    pub stale_accepts: u64,
    /// Median of the mean peer bytes/s per node.
    pub peer_bytes_per_sec: u64,
    /// Median of the busiest node's peer bytes/s.
    pub peer_bytes_per_sec_max: u64,
    /// Median peer messages per revocation.
    pub messages_per_revocation: f64,
}

impl Configuration {
    fn reports(&self) -> impl Iterator<Item = &Report> {
        self.runs.iter().filter_map(|r| r.report.as_ref())
    }

    fn values(&self, f: impl Fn(&Report) -> u64) -> Vec<u64> {
        self.reports().map(f).collect()
    }

    /// Its figures.
    pub fn row(&self) -> Row {
        let mut per_revocation: Vec<f64> = self.reports().map(|r| r.messages_per_revocation).collect();
        per_revocation.sort_by(f64::total_cmp);
        Row {
            label: self.overrides.to_string(),
            seeds: self.runs.len(),
            failed: self.runs.iter().filter(|r| !r.problems.is_empty()).count(),
            p50_ms: median(self.values(|r| r.time_to_enforce_ms.p50)),
            p99_ms: median(self.values(|r| r.time_to_enforce_ms.p99)),
            p99_worst_ms: self
                .values(|r| r.time_to_enforce_ms.p99)
                .into_iter()
                .max()
                .unwrap_or(0),
            stale_accepts: median(self.values(|r| r.stale_accepts)),
            peer_bytes_per_sec: median(self.values(|r| r.peer_bytes_per_node_per_sec.mean)),
            peer_bytes_per_sec_max: median(self.values(|r| r.peer_bytes_per_node_per_sec.max)),
            messages_per_revocation: per_revocation
                .get(per_revocation.len() / 2)
                .copied()
                .unwrap_or(0.0),
        }
    }

    /// The one-configuration table: each metric's median and worst over the seeds.
    pub fn metrics_table(&self) -> String {
        let edge = |f: fn(&crate::edges::EdgeReport) -> u64| -> Vec<u64> {
            self.reports().filter_map(|r| r.edges.as_ref().map(f)).collect()
        };
        let rows: Vec<(&str, Vec<u64>)> = vec![
            (
                "time to enforce p50 (ms)",
                self.values(|r| r.time_to_enforce_ms.p50),
            ),
            (
                "time to enforce p99 (ms)",
                self.values(|r| r.time_to_enforce_ms.p99),
            ),
            ("stale accepts", self.values(|r| r.stale_accepts)),
            (
                "convergence after heal (ms)",
                self.values(|r| {
                    r.convergence_after_heal_ms
                        .iter()
                        .map(|c| c.unwrap_or(u64::MAX))
                        .max()
                        .unwrap_or(0)
                }),
            ),
            ("lost revocations", self.values(|r| r.lost_revocations)),
            ("staleness violations", self.values(|r| r.staleness_violations)),
            (
                "peer bytes/s per node (mean)",
                self.values(|r| r.peer_bytes_per_node_per_sec.mean),
            ),
            (
                "peer bytes/s (busiest node)",
                self.values(|r| r.peer_bytes_per_node_per_sec.max),
            ),
            (
                "edge time to enforce p50 (ms)",
                edge(|e| e.time_to_enforce_ms.p50),
            ),
            (
                "edge time to enforce p99 (ms)",
                edge(|e| e.time_to_enforce_ms.p99),
            ),
            ("edge stale accepts", edge(|e| e.stale_accepts)),
            ("edge staleness violations", edge(|e| e.staleness_violations)),
        ];
        let mut s = format!("{:<34} {:>10} {:>10}\n", "metric", "median", "worst");
        for (name, values) in rows {
            if values.is_empty() && name.starts_with("edge") {
                continue;
            }
            let worst = values.iter().copied().max().unwrap_or(0);
            let _ = writeln!(s, "{name:<34} {:>10} {:>10}", median(values), worst);
        }
        s
    }
}

/// The grid table: one line per configuration.
pub fn grid_table(configurations: &[Configuration]) -> String {
    let rows: Vec<Row> = configurations.iter().map(Configuration::row).collect();
    let width = rows
        .iter()
        .map(|r| r.label.len())
        .max()
        .unwrap_or(0)
        .max("configuration".len());
    let mut s = format!(
        "{:<width$}  {:>6}  {:>7}  {:>7}  {:>9}  {:>6}  {:>10}  {:>10}  {:>8}\n",
        "configuration",
        "failed",
        "p50 ms",
        "p99 ms",
        "worst p99",
        "stale",
        "peer B/s",
        "busiest",
        "msgs/rev"
    );
    for r in &rows {
        let _ = writeln!(
            s,
            "{:<width$}  {:>6}  {:>7}  {:>7}  {:>9}  {:>6}  {:>10}  {:>10}  {:>8.1}",
            r.label,
            format!("{}/{}", r.failed, r.seeds),
            r.p50_ms,
            r.p99_ms,
            r.p99_worst_ms,
            r.stale_accepts,
            r.peer_bytes_per_sec,
            r.peer_bytes_per_sec_max,
            r.messages_per_revocation
        );
    }
    s.push_str(
        "(medians over the seeds; time to enforce: ack to every running node enforcing; \
         peer B/s: bytes a node writes to other nodes per second, mean over nodes and the busiest)\n",
    );
    s
}
