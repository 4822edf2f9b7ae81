//! Scenario files: regions, network, a timeline of faults and a workload.
//! The schema is documented in `sim/README.md`; [`Scenario::load`] checks it.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A whole scenario.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Short name, used in reports.
    pub name: String,
    /// What it shows.
    #[serde(default)]
    pub description: String,
    /// How long the workload runs (simulated time).
    #[serde(with = "humantime_serde")]
    pub duration: Duration,
    /// Extra time after the workload for the cluster to settle before the final check.
    #[serde(with = "humantime_serde", default = "default_settle")]
    pub settle: Duration,
    /// Convergence must follow the last heal / restart / wipe within this bound.
    #[serde(with = "humantime_serde", default = "default_converge_within")]
    pub converge_within: Duration,
    /// Nodes' anti-entropy interval.
    #[serde(with = "humantime_serde", default = "default_gossip")]
    pub gossip_interval: Duration,
    /// False runs every node without replication (to prove the checker fails).
    #[serde(default = "yes")]
    pub replication: bool,
    /// Regions and their node counts.
    pub regions: Vec<Region>,
    /// Edge replicas (`rescind_client::Replica`, as `rescind edge` runs it):
    /// hosts `replica-{region}-{i}`, each following its upstream nodes.
    #[serde(default)]
    pub edges: Vec<EdgeSpec>,
    /// Latency, jitter and loss.
    #[serde(default)]
    pub network: Network,
    /// Faults over time.
    #[serde(default)]
    pub events: Vec<Event>,
    /// Revokes and checks.
    pub workload: Workload,
}

fn default_settle() -> Duration {
    Duration::from_secs(20)
}
fn default_converge_within() -> Duration {
    Duration::from_secs(10)
}
fn default_gossip() -> Duration {
    Duration::from_millis(200)
}
fn yes() -> bool {
    true
}

/// One region.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Region {
    /// Region name; its nodes are `{name}-1`, `{name}-2`, ...
    pub name: String,
    /// Node count.
    pub nodes: usize,
}

/// One edge replica.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdgeSpec {
    /// Its region (latencies as for that region's nodes).
    pub region: String,
    /// Nodes it may follow, nearest first (its own region's first).
    pub upstream: Vec<String>,
}

/// Network shape.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Network {
    /// One-way latency inside a region (and to its edge client).
    #[serde(with = "humantime_serde", default = "default_intra")]
    pub intra_region: Duration,
    /// Default jitter: extra latency up to this, exponentially distributed.
    #[serde(with = "humantime_serde", default)]
    pub jitter: Duration,
    /// Links between regions.
    #[serde(default)]
    pub links: Vec<Link>,
}

fn default_intra() -> Duration {
    Duration::from_millis(1)
}

/// The link between two regions, both ways.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Link {
    /// The two regions.
    pub between: [String; 2],
    /// One-way latency.
    #[serde(with = "humantime_serde")]
    pub latency: Duration,
    /// Extra latency up to this (reorders messages across connections).
    #[serde(with = "humantime_serde", default)]
    pub jitter: Duration,
    /// Fraction of time the link is down, 0..1 (outages of about 100 ms).
    #[serde(default)]
    pub loss: f64,
}

/// One fault at a point in simulated time. Exactly one action field is set.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// When.
    #[serde(with = "humantime_serde")]
    pub at: Duration,
    /// Cut the network between two sides (regions or node names).
    #[serde(default)]
    pub partition: Option<[Vec<String>; 2]>,
    /// Heal every partition.
    #[serde(default)]
    pub heal: bool,
    /// Crash a node (memory lost, what it committed kept).
    #[serde(default)]
    pub crash: Option<String>,
    /// Restart a crashed node.
    #[serde(default)]
    pub restart: Option<String>,
    /// Crash a node, wipe its disk and start it again (a new incarnation).
    #[serde(default)]
    pub wipe: Option<String>,
    /// Skew a node's wall clock by this many milliseconds (negative: behind).
    #[serde(default)]
    pub skew_ms: Option<i64>,
    /// The node `skew_ms` applies to.
    #[serde(default)]
    pub node: Option<String>,
}

/// The load.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    /// Revocations per second, spread over `revoke_regions`.
    pub revokes_per_sec: f64,
    /// Regions whose edge clients revoke (empty: all).
    #[serde(default)]
    pub revoke_regions: Vec<String>,
    /// Checks per second from each region's edge client to its nearest node.
    pub checks_per_sec: f64,
    /// When the workload starts (the cluster forms before).
    #[serde(with = "humantime_serde", default = "default_warmup")]
    pub start: Duration,
}

fn default_warmup() -> Duration {
    Duration::from_secs(2)
}

/// A scenario that cannot run.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// TOML or schema error.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// The parser's words.
        message: String,
    },
    /// A value out of range or a name that does not exist.
    #[error("{0}")]
    Invalid(String),
}

impl Scenario {
    /// Read and check a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text).map_err(|e| match e {
            ScenarioError::Parse { message, .. } => ScenarioError::Parse {
                path: path.display().to_string(),
                message,
            },
            other => other,
        })
    }

    /// Parse and check scenario text.
    pub fn parse(text: &str) -> Result<Scenario, ScenarioError> {
        let s: Scenario = toml::from_str(text).map_err(|e| ScenarioError::Parse {
            path: "scenario".into(),
            message: e.to_string(),
        })?;
        s.validate()?;
        Ok(s)
    }

    /// Every node name, region by region.
    pub fn nodes(&self) -> Vec<(String, String)> {
        self.regions
            .iter()
            .flat_map(|r| (1..=r.nodes).map(move |i| (format!("{}-{i}", r.name), r.name.clone())))
            .collect()
    }

    /// Every edge replica's host name and region, in file order.
    pub fn edge_hosts(&self) -> Vec<(String, String)> {
        let mut count: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
        self.edges
            .iter()
            .map(|e| {
                let n = count.entry(e.region.as_str()).or_default();
                *n += 1;
                (format!("replica-{}-{n}", e.region), e.region.clone())
            })
            .collect()
    }

    /// Node names of a region, or the node itself when `name` is a node.
    pub fn resolve(&self, name: &str) -> Vec<String> {
        let nodes = self.nodes();
        if nodes.iter().any(|(n, _)| n == name) {
            return vec![name.to_owned()];
        }
        nodes
            .into_iter()
            .filter(|(_, r)| r == name)
            .map(|(n, _)| n)
            .collect()
    }

    fn validate(&self) -> Result<(), ScenarioError> {
        match crate::validate::problems(self).into_iter().next() {
            Some(p) => Err(ScenarioError::Invalid(format!("scenario {}: {p}", self.name))),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_scenario_parses() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        let mut n = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
            n += 1;
        }
        assert!(n >= 7, "{n} scenarios shipped");
    }

    #[test]
    fn mistakes_are_named() {
        let base = "name='x'\nduration='10s'\n[[regions]]\nname='eu'\nnodes=2\n[workload]\nrevokes_per_sec=1.0\nchecks_per_sec=1.0\n";
        assert!(Scenario::parse(base).is_ok());
        let two = format!("{base}[[events]]\nat='1s'\nheal=true\ncrash='eu-1'\n");
        assert!(
            Scenario::parse(&two)
                .unwrap_err()
                .to_string()
                .contains("exactly one")
        );
        let unknown = format!("{base}[[events]]\nat='1s'\ncrash='us-1'\n");
        assert!(
            Scenario::parse(&unknown)
                .unwrap_err()
                .to_string()
                .contains("us-1")
        );
        let region = format!("{base}[[events]]\nat='1s'\ncrash='eu'\n");
        let e = Scenario::parse(&region).unwrap_err().to_string();
        assert!(e.contains("events[0].crash: no node eu"), "{e}");
        let side = format!("{base}[[events]]\nat='1s'\npartition=[['eu'],['ap']]\n");
        let e = Scenario::parse(&side).unwrap_err().to_string();
        assert!(
            e.contains("events[0].partition[1][0]: no node or region ap"),
            "{e}"
        );
        assert!(Scenario::parse("name='x'").is_err());
    }
}
