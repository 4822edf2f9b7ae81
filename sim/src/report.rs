//! The report of one run: what an SRE reads after "what if region X is cut
//! off?". Serialised with a fixed field order, so the same seed gives the same
//! bytes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// p50 / p99 / max of a set of durations, in milliseconds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Percentiles {
    /// Median.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
    /// Largest.
    pub max: u64,
    /// How many samples.
    pub count: u64,
}

impl Percentiles {
    /// From samples (any order).
    pub fn of(mut samples: Vec<u64>) -> Self {
        if samples.is_empty() {
            return Self::default();
        }
        samples.sort_unstable();
        let at = |p: f64| samples[((samples.len() as f64 * p).ceil() as usize).clamp(1, samples.len()) - 1];
        Self {
            p50: at(0.50),
            p99: at(0.99),
            max: samples[samples.len() - 1],
            count: samples.len() as u64,
        }
    }
}

/// Mean and largest of a figure measured per node.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PerNode {
    /// Mean over the nodes (rounded).
    pub mean: u64,
    /// Largest.
    pub max: u64,
}

impl PerNode {
    /// From one value per node.
    pub fn of(values: &[u64]) -> Self {
        if values.is_empty() {
            return Self::default();
        }
        let sum: u128 = values.iter().map(|&v| u128::from(v)).sum();
        let n = values.len() as u128;
        Self {
            mean: ((sum + n / 2) / n) as u64,
            max: values.iter().copied().max().unwrap_or(0),
        }
    }
}

/// One revocation's life, for the picture.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trace {
    /// Revocation id.
    pub id: String,
    /// When its edge client got the ack (sim ms).
    pub acked_ms: u64,
    /// When every running node first enforced it (None: never).
    pub enforced_ms: Option<u64>,
}

/// A phase of the timeline (between two events), for the picture and the
/// per-phase stale-accept counts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Phase {
    /// Label (`steady`, `partitioned`, ...).
    pub label: String,
    /// Start (sim ms).
    pub from_ms: u64,
    /// End (sim ms).
    pub to_ms: u64,
}

/// Everything one run measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Scenario name.
    pub scenario: String,
    /// Seed of the run.
    pub seed: u64,
    /// At the end every running node holds every acknowledged revocation and
    /// the same state (digest and version vector).
    pub converged: bool,
    /// Acknowledged revocations absent from some running node at the end. Must be 0.
    pub lost_revocations: u64,
    /// Checks answered "allowed" for a token already acknowledged as revoked.
    pub stale_accepts: u64,
    /// Stale accepts by the checking client's region.
    pub stale_accepts_by_region: BTreeMap<String, u64>,
    /// Stale accepts by timeline phase.
    pub stale_accepts_by_phase: BTreeMap<String, u64>,
    /// From ack to "every running node enforces it".
    pub time_to_enforce_ms: Percentiles,
    /// After each heal / restart / wipe: time until every running node held
    /// the same state (None: never within the run).
    pub convergence_after_heal_ms: Vec<Option<u64>>,
    /// Peer messages sent (calls and responses).
    pub messages: u64,
    /// Encoded op and snapshot bytes in them.
    pub bytes: u64,
    /// Bytes each node wrote on its connections to and from other nodes
    /// (HTTP/2 frames of pushes, anti-entropy rounds, snapshots and their
    /// answers; no client or edge traffic), per second of the whole run.
    pub peer_bytes_per_node_per_sec: PerNode,
    /// Peer messages sent per acknowledged revocation (anti-entropy rounds
    /// of an idle cluster included).
    pub messages_per_revocation: f64,
    /// Ops delivered to a node that already had them (eager push and
    /// anti-entropy overlap; the protocol is idempotent).
    pub duplicate_deliveries: u64,
    /// Largest staleness any node reported (unknown excluded), ms.
    pub max_reported_staleness_ms: u64,
    /// Largest true lag seen: age of the oldest acknowledged revocation a
    /// running node did not hold, ms.
    pub max_true_lag_ms: u64,
    /// Samples where a node reported itself fresher than its true lag. Must be 0.
    pub staleness_violations: u64,
    /// Revocations acknowledged.
    pub revocations: u64,
    /// Checks answered.
    pub checks: u64,
    /// Checks or revokes that failed (node down, partitioned).
    pub request_errors: u64,
    /// The timeline's phases.
    pub phases: Vec<Phase>,
    /// Per-revocation traces (for the picture).
    pub traces: Vec<Trace>,
    /// Every 100 ms: (sim ms, per region the fraction of acknowledged
    /// revocations its running nodes hold).
    pub region_convergence: Vec<(u64, BTreeMap<String, f64>)>,
    /// Edge replicas, measured apart from the nodes (absent without edges).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edges: Option<crate::edges::EdgeReport>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_node_mean_rounds_and_max_is_the_largest() {
        let p = PerNode::of(&[1, 2, 2]);
        assert_eq!((p.mean, p.max), (2, 2));
        let p = PerNode::of(&[u64::MAX, u64::MAX]);
        assert_eq!((p.mean, p.max), (u64::MAX, u64::MAX));
        assert_eq!(PerNode::of(&[]), PerNode::default());
    }

    #[test]
    fn percentiles() {
        let p = Percentiles::of((1..=100).collect());
        assert_eq!((p.p50, p.p99, p.max, p.count), (50, 99, 100, 100));
        assert_eq!(Percentiles::of(vec![]), Percentiles::default());
        assert_eq!(Percentiles::of(vec![7]).p99, 7);
    }
}
