//! What makes a run healthy — one definition for the CLI and the tests.

use crate::{Report, Scenario};

/// Everything wrong with a run (empty: healthy): nothing acknowledged lost,
/// full convergence, convergence within the scenario's bound after each heal /
/// restart / wipe, and no node ever reporting a staleness below its true lag.
pub fn verdict(s: &Scenario, r: &Report) -> Vec<String> {
    let mut problems = Vec::new();
    if r.lost_revocations > 0 {
        problems.push(format!("{} acknowledged revocations lost", r.lost_revocations));
    }
    if !r.converged {
        problems.push("nodes did not converge".into());
    }
    let bound = s.converge_within.as_millis() as u64;
    for (i, c) in r.convergence_after_heal_ms.iter().enumerate() {
        match c {
            Some(ms) if *ms <= bound => {}
            Some(ms) => problems.push(format!("heal {i}: converged after {ms} ms, bound {bound} ms")),
            None => problems.push(format!("heal {i}: never converged")),
        }
    }
    if r.staleness_violations > 0 {
        problems.push(format!(
            "{} samples where a node reported a staleness below its true lag",
            r.staleness_violations
        ));
    }
    if let Some(e) = &r.edges {
        if e.lost_revocations > 0 {
            problems.push(format!(
                "{} acknowledged revocations missing at an edge replica",
                e.lost_revocations
            ));
        }
        if e.staleness_violations > 0 {
            problems.push(format!(
                "{} samples where an edge replica reported a staleness below its true lag",
                e.staleness_violations
            ));
        }
    }
    problems
}
