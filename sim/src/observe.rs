//! The observer: every few simulated milliseconds it looks inside every
//! running node (their engines, not the network) and records what the report
//! needs. Incremental, so sweeps over many seeds stay fast.

use std::collections::BTreeMap;

use rescind_core::CheckQuery;
use rescind_node::Engine;

use crate::holdings::Holdings;
use crate::run::Running;

/// A revocation acknowledged to an edge client.
#[derive(Clone, Debug)]
pub struct Acked {
    /// Token id.
    pub id: String,
    /// When the edge client received the ack (sim ms). The op existed by then,
    /// so a node fresh as of a later time must hold it.
    pub at_ms: u64,
}

/// What the observer keeps between samples.
#[derive(Default)]
pub struct Observer {
    /// What each node lacks; when each revocation was held by every running node.
    pub held: Holdings,
    /// Largest staleness reported (unknown excluded).
    pub max_reported: u64,
    /// Largest true lag.
    pub max_true_lag: u64,
    /// Samples where reported < true lag.
    pub violations: u64,
    /// Latest gossip counters per (node, incarnation number).
    pub counters: BTreeMap<(String, u64), [u64; 3]>,
    /// Per 100 ms: fraction of acknowledged revocations held, per region.
    pub region_series: Vec<(u64, BTreeMap<String, f64>)>,
}

/// Is `id` revoked in `engine`?
pub fn holds(engine: &Engine, id: &str) -> bool {
    engine.check(&CheckQuery::token(id)).revoked()
}

impl Observer {
    /// Forget what `node` held (its disk was wiped).
    pub fn wiped(&mut self, node: &str, acked: usize) {
        self.held.wiped(node, acked);
    }

    /// Take one sample at `now_ms`. `running`: node → (engine, incarnation
    /// number, region); `log`: every acknowledged revocation so far.
    pub fn sample(
        &mut self,
        now_ms: u64,
        nodes: &[(String, String)],
        running: &BTreeMap<String, Running>,
        log: &[Acked],
    ) {
        self.held.grow(nodes.iter().map(|(n, _)| n), log);
        for (node, r) in running {
            let engine = &r.engine;
            let true_lag = self.held.update(node, now_ms, log, |id| holds(engine, id));
            self.max_true_lag = self.max_true_lag.max(true_lag);
            // The node's own monotonic clock started at `started_ms` of simulated time.
            let reported = engine.staleness_at(now_ms.saturating_sub(r.started_ms));
            if reported != rescind_gossip::UNKNOWN {
                self.max_reported = self.max_reported.max(reported);
                if true_lag > reported {
                    self.violations += 1;
                }
            }
            let c = engine.gossip_counters();
            let load = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
            self.counters.insert(
                (node.clone(), r.start),
                [load(&c.messages), load(&c.bytes), load(&c.duplicate_ops)],
            );
        }
        self.held.settle(now_ms, running.keys());
        if now_ms.is_multiple_of(100) {
            let mut by_region: BTreeMap<String, (usize, usize)> = BTreeMap::new();
            for (node, region) in nodes {
                if running.contains_key(node) {
                    let e = by_region.entry(region.clone()).or_default();
                    e.0 += self.held.missing_count(node);
                    e.1 += log.len();
                }
            }
            let fractions = by_region
                .into_iter()
                .map(|(r, (missing, total))| {
                    let f = if total == 0 {
                        1.0
                    } else {
                        1.0 - missing as f64 / total as f64
                    };
                    (r, (f * 1000.0).round() / 1000.0)
                })
                .collect();
            self.region_series.push((now_ms, fractions));
        }
    }

    /// Acknowledged revocations some running node still lacks.
    pub fn lost(&self, running: &BTreeMap<String, Running>) -> u64 {
        self.held.lacking(running.keys()).len() as u64
    }

    /// Summed gossip counters over every node incarnation.
    pub fn totals(&self) -> [u64; 3] {
        self.counters
            .values()
            .fold([0; 3], |a, c| [a[0] + c[0], a[1] + c[1], a[2] + c[2]])
    }
}

/// Do all running nodes hold the same state (digest and version vector)?
pub fn same_state(running: &BTreeMap<String, Running>) -> bool {
    let mut states = running.values().map(|r| {
        let s = r.engine.status();
        (s.digest, s.version_vector)
    });
    match states.next() {
        None => true,
        Some(first) => states.all(|s| s == first),
    }
}
