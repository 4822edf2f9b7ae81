//! Applying one timeline event to the running simulation.

use rand::rngs::StdRng;

use crate::observe::Observer;
use crate::run::World;
use crate::scenario::{Event, Scenario};

/// The hosts on one side of a partition: named nodes, and for a region name
/// its nodes, its edge client and its edge replicas (they stay with their region).
fn side(s: &Scenario, names: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for n in names {
        out.extend(s.resolve(n));
        if s.regions.iter().any(|r| r.name == *n) {
            out.push(format!("edge-{n}"));
            out.extend(s.edge_hosts().into_iter().filter(|(_, r)| r == n).map(|(h, _)| h));
        }
    }
    out
}

/// Apply `e`; returns the label of the phase it starts.
pub(crate) fn apply(
    sim: &mut turmoil::Sim<'_>,
    s: &Scenario,
    e: &Event,
    world: &World,
    partitioned: &mut Vec<(String, String)>,
    observer: &mut Observer,
    rng: &mut StdRng,
) -> String {
    if let Some([a, b]) = &e.partition {
        for x in side(s, a) {
            for y in side(s, b) {
                sim.partition(x.as_str(), y.as_str());
                partitioned.push((x.clone(), y));
            }
        }
        return format!("partition {} | {}", a.join(","), b.join(","));
    }
    if e.heal {
        for (x, y) in partitioned.drain(..) {
            sim.repair(x.as_str(), y.as_str());
        }
        return "healed".into();
    }
    if let Some(n) = &e.crash {
        world.crashing(n);
        sim.crash(n.as_str());
        world.crashed(n);
        return format!("crash {n}");
    }
    if let Some(n) = &e.restart {
        // Restarting a node that still runs crashes it first.
        world.crashing(n);
        world.crashed(n);
        sim.bounce(n.as_str());
        return format!("restart {n}");
    }
    if let Some(n) = &e.wipe {
        world.crashing(n);
        sim.crash(n.as_str());
        world.crashed(n);
        world.wipe(n, rng);
        observer.wiped(n, world.acked_count());
        sim.bounce(n.as_str());
        return format!("wipe {n}");
    }
    if let (Some(ms), Some(n)) = (e.skew_ms, &e.node) {
        world.skew(n, ms);
        return format!("skew {n} {ms:+}ms");
    }
    "steady".into()
}
