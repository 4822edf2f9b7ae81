//! What makes a scenario runnable: every problem a parsed [`Scenario`] has,
//! each naming its field as a path (`events[2].crash`) so that
//! [`crate::check`] can point at its line and column.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::scenario::Scenario;

/// Regions a scenario may have (the latency matrix grows as their square).
pub const MAX_REGIONS: usize = 200;

/// One problem in a scenario.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The field: `regions[1].nodes`, `network.links[0].between[1]`,
    /// `events[3]`; empty for the scenario as a whole.
    pub field: String,
    /// What is wrong, naming the limit or the names that exist.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.field.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}

/// Problems listed at most (a file of ten thousand mistakes gets the first ones).
pub const MAX_PROBLEMS: usize = 50;

/// Collects problems in file order, at most [`MAX_PROBLEMS`].
#[derive(Default)]
struct Problems(Vec<Problem>, usize);

impl Problems {
    fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        if self.0.len() < MAX_PROBLEMS {
            self.0.push(Problem {
                field: field.into(),
                message: message.into(),
            });
        } else {
            self.1 += 1;
        }
    }

    fn done(mut self) -> Vec<Problem> {
        if self.1 > 0 {
            self.0.push(Problem {
                field: String::new(),
                message: format!("and {} more problems, not listed", self.1),
            });
        }
        self.0
    }
}

/// Every problem of `s`, in the order of the file's sections.
pub fn problems(s: &Scenario) -> Vec<Problem> {
    let mut p = Problems::default();
    regions(s, &mut p);
    if !p.0.is_empty() {
        // Node names, links and events all rest on the regions; with these
        // wrong (or far too many) their checks would mislead, or take forever.
        return p.done();
    }
    if s.duration.is_zero() || s.duration > HOUR {
        p.add("duration", "must be between 1ms and 1h");
    }
    if s.settle > HOUR {
        p.add("settle", "must be at most 1h");
    }
    if s.workload.start > HOUR {
        p.add("workload.start", "must be at most 1h");
    }
    workload(s, &mut p);
    edges(s, &mut p);
    links(s, &mut p);
    events(s, &mut p);
    p.done()
}

const HOUR: Duration = Duration::from_secs(3600);

fn regions(s: &Scenario, p: &mut Problems) {
    if s.regions.is_empty() {
        p.add(
            "regions",
            "name at least one region ([[regions]] name = \"eu\", nodes = 2)",
        );
    }
    if s.regions.len() > MAX_REGIONS {
        p.add(
            "regions",
            format!("at most {MAX_REGIONS}, got {}", s.regions.len()),
        );
        return;
    }
    let mut seen = BTreeMap::new();
    for (i, r) in s.regions.iter().enumerate() {
        if r.nodes == 0 || r.nodes > 50 {
            p.add(
                format!("regions[{i}].nodes"),
                format!("must be 1..=50, got {}", r.nodes),
            );
        }
        if rescind_core::limits::label("region", &r.name).is_err() {
            p.add(
                format!("regions[{i}].name"),
                format!("{:?} must be 1..=64 of A-Z a-z 0-9 . _ -", r.name),
            );
        }
        if let Some(j) = seen.insert(r.name.as_str(), i) {
            p.add(
                format!("regions[{i}].name"),
                format!("region {} is already regions[{j}]", r.name),
            );
        }
    }
}

fn region_names(s: &Scenario) -> BTreeSet<&str> {
    s.regions.iter().map(|r| r.name.as_str()).collect()
}

fn node_names(s: &Scenario) -> BTreeSet<String> {
    s.nodes().into_iter().map(|(n, _)| n).collect()
}

/// "ap, eu, us" for a message; past ten names, the first ten and a count.
fn listed<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    let names: Vec<&str> = names.into_iter().collect();
    let shown = names.iter().take(10).copied().collect::<Vec<_>>().join(", ");
    match names.len() {
        0..=10 => shown,
        n => format!("{shown}, … ({n} in all)"),
    }
}

fn workload(s: &Scenario, p: &mut Problems) {
    let w = &s.workload;
    if !(0.0..=1000.0).contains(&w.revokes_per_sec) {
        p.add(
            "workload.revokes_per_sec",
            format!("must be 0..=1000, got {}", w.revokes_per_sec),
        );
    }
    if !(0.0..=10_000.0).contains(&w.checks_per_sec) {
        p.add(
            "workload.checks_per_sec",
            format!("must be 0..=10000, got {}", w.checks_per_sec),
        );
    }
    let names = region_names(s);
    for (i, r) in w.revoke_regions.iter().enumerate() {
        if !names.contains(r.as_str()) {
            p.add(
                format!("workload.revoke_regions[{i}]"),
                format!("no region {r} (regions: {})", listed(names.iter().copied())),
            );
        }
    }
}

fn edges(s: &Scenario, p: &mut Problems) {
    if s.edges.len() > 100 {
        p.add("edges", format!("at most 100, got {}", s.edges.len()));
    }
    let names = region_names(s);
    let nodes = node_names(s);
    for (i, e) in s.edges.iter().enumerate() {
        if !names.contains(e.region.as_str()) {
            p.add(
                format!("edges[{i}].region"),
                format!(
                    "no region {} (regions: {})",
                    e.region,
                    listed(names.iter().copied())
                ),
            );
        }
        if e.upstream.is_empty() {
            p.add(format!("edges[{i}].upstream"), "name at least one node");
        }
        for (j, u) in e.upstream.iter().enumerate() {
            if !nodes.contains(u.as_str()) {
                p.add(format!("edges[{i}].upstream[{j}]"), format!("no node {u}"));
            }
        }
    }
}

/// Every pair of regions needs exactly one link: a missing one would run at
/// an invented latency.
fn links(s: &Scenario, p: &mut Problems) {
    let names = region_names(s);
    let mut pairs: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for (i, l) in s.network.links.iter().enumerate() {
        let mut known = true;
        for (j, r) in l.between.iter().enumerate() {
            if !names.contains(r.as_str()) {
                known = false;
                p.add(
                    format!("network.links[{i}].between[{j}]"),
                    format!("no region {r} (regions: {})", listed(names.iter().copied())),
                );
            }
        }
        if !(0.0..0.95).contains(&l.loss) {
            p.add(
                format!("network.links[{i}].loss"),
                format!("must be in 0..0.95, got {}", l.loss),
            );
        }
        let [a, b] = &l.between;
        if a == b {
            p.add(
                format!("network.links[{i}].between"),
                format!("links join two regions; inside {a} the latency is network.intra_region"),
            );
            continue;
        }
        let pair = if a < b {
            (a.as_str(), b.as_str())
        } else {
            (b.as_str(), a.as_str())
        };
        if let Some(j) = pairs.insert(pair, i)
            && known
        {
            p.add(
                format!("network.links[{i}].between"),
                format!("{a} and {b} are already joined by network.links[{j}]"),
            );
        }
    }
    let regions: Vec<&str> = s.regions.iter().map(|r| r.name.as_str()).collect();
    let mut missing = Vec::new();
    for (i, a) in regions.iter().enumerate() {
        for b in &regions[i + 1..] {
            let pair = if a < b { (*a, *b) } else { (*b, *a) };
            if a != b && !pairs.contains_key(&pair) {
                missing.push(format!("{a}–{b}"));
            }
        }
    }
    if !missing.is_empty() {
        let field = if s.network.links.is_empty() {
            "network"
        } else {
            "network.links"
        };
        let shown = missing.iter().take(5).cloned().collect::<Vec<_>>().join(", ");
        let more = missing.len().saturating_sub(5);
        p.add(
            field,
            format!(
                "the latency matrix misses {} pair(s) of regions: {shown}{}; every pair needs a [[network.links]] entry",
                missing.len(),
                if more > 0 { format!(" and {more} more") } else { String::new() }
            ),
        );
    }
}

/// The timeline: each event names what exists and makes sense at its time.
fn events(s: &Scenario, p: &mut Problems) {
    let nodes = node_names(s);
    let regions = region_names(s);
    let example = s
        .regions
        .first()
        .map_or("eu-1".to_owned(), |r| format!("{}-1", r.name));
    let end = s
        .workload
        .start
        .saturating_add(s.duration)
        .saturating_add(s.settle);
    for (i, e) in s.events.iter().enumerate() {
        let actions = [
            e.partition.is_some(),
            e.heal,
            e.crash.is_some(),
            e.restart.is_some(),
            e.wipe.is_some(),
            e.skew_ms.is_some(),
        ];
        if actions.iter().filter(|a| **a).count() != 1 {
            p.add(
                format!("events[{i}]"),
                "set exactly one of partition, heal, crash, restart, wipe, skew_ms",
            );
        }
        if e.at > end {
            p.add(
                format!("events[{i}].at"),
                format!(
                    "{} is after the run ends ({} = workload.start + duration + settle)",
                    humantime::format_duration(e.at),
                    humantime::format_duration(end)
                ),
            );
        }
        // A crash, restart, wipe or skew acts on one node; a partition side
        // may also name whole regions.
        for (field, n) in [
            ("crash", &e.crash),
            ("restart", &e.restart),
            ("wipe", &e.wipe),
            ("node", &e.node),
        ] {
            if let Some(n) = n
                && !nodes.contains(n.as_str())
            {
                p.add(
                    format!("events[{i}].{field}"),
                    format!("no node {n} (nodes are named <region>-<n>, e.g. {example})"),
                );
            }
        }
        if let Some(sides) = &e.partition {
            for (side, names) in sides.iter().enumerate() {
                for (j, n) in names.iter().enumerate() {
                    if !nodes.contains(n.as_str()) && !regions.contains(n.as_str()) {
                        p.add(
                            format!("events[{i}].partition[{side}][{j}]"),
                            format!("no node or region {n}"),
                        );
                    }
                }
            }
        }
        if e.skew_ms.is_some() && e.node.is_none() {
            p.add(format!("events[{i}]"), "skew_ms needs node");
        }
    }
    timeline(s, p);
}

/// Events in time order: two at the same instant must not act on the same
/// node, a crash needs a running node, a restart a crashed one, a heal a
/// partition.
fn timeline(s: &Scenario, p: &mut Problems) {
    let mut order: Vec<usize> = (0..s.events.len()).collect();
    order.sort_by_key(|&i| (s.events[i].at, i));
    let mut down: BTreeMap<&str, usize> = BTreeMap::new();
    let mut partitioned: Option<usize> = None;
    let mut last_touch: BTreeMap<&str, usize> = BTreeMap::new();
    for &i in &order {
        let e = &s.events[i];
        let actions = [
            e.partition.is_some(),
            e.heal,
            e.crash.is_some(),
            e.restart.is_some(),
        ];
        let actions = actions.into_iter().filter(|a| *a).count()
            + usize::from(e.wipe.is_some())
            + usize::from(e.skew_ms.is_some());
        if actions != 1 {
            // Already named by `events`; what it would do is unclear.
            continue;
        }
        let touched: Vec<&str> = [&e.crash, &e.restart, &e.wipe]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect();
        for n in &touched {
            if let Some(&j) = last_touch.get(n)
                && s.events[j].at == e.at
            {
                p.add(
                    format!("events[{i}]"),
                    format!(
                        "overlaps events[{j}]: both act on {n} at {} (their order would be a guess)",
                        humantime::format_duration(e.at)
                    ),
                );
            }
            last_touch.insert(n, i);
        }
        if let Some(n) = &e.crash
            && let Some(j) = down.insert(n, i)
        {
            p.add(
                format!("events[{i}].crash"),
                format!("{n} is already down (crashed by events[{j}] and not restarted)"),
            );
        }
        if let Some(n) = &e.restart
            && down.remove(n.as_str()).is_none()
        {
            p.add(
                format!("events[{i}].restart"),
                format!("{n} is running at that time (restart follows a crash)"),
            );
        }
        if let Some(n) = &e.wipe {
            // A wipe starts the node again, down or not.
            down.remove(n.as_str());
        }
        if e.partition.is_some() {
            partitioned = Some(i);
        }
        if e.heal && partitioned.take().is_none() {
            p.add(format!("events[{i}].heal"), "nothing is partitioned at that time");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "name='x'\nduration='10s'\n[[regions]]\nname='eu'\nnodes=2\n[[regions]]\nname='us'\nnodes=1\n[[network.links]]\nbetween=['eu','us']\nlatency='40ms'\n[workload]\nrevokes_per_sec=1.0\nchecks_per_sec=1.0\n";

    fn fields(text: &str) -> Vec<String> {
        let s: Scenario = toml::from_str(text).unwrap();
        problems(&s).into_iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn a_good_scenario_has_no_problem() {
        assert_eq!(fields(BASE), Vec::<String>::new());
        let timeline = format!(
            "{BASE}[[events]]\nat='1s'\ncrash='eu-1'\n[[events]]\nat='2s'\nrestart='eu-1'\n[[events]]\nat='3s'\nwipe='us-1'\n[[events]]\nat='4s'\npartition=[['eu'],['us']]\n[[events]]\nat='5s'\nheal=true\n"
        );
        assert_eq!(fields(&timeline), Vec::<String>::new());
    }

    #[test]
    fn a_missing_or_doubled_link_is_named() {
        let third = BASE.replace("[workload]", "[[regions]]\nname='ap'\nnodes=1\n[workload]");
        let p = fields(&third);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].contains("misses 2 pair(s) of regions: eu–ap, us–ap"),
            "{p:?}"
        );
        let twice = BASE.replace(
            "[workload]",
            "[[network.links]]\nbetween=['us','eu']\nlatency='41ms'\n[workload]",
        );
        assert_eq!(
            fields(&twice),
            vec!["network.links[1].between: us and eu are already joined by network.links[0]"]
        );
    }

    #[test]
    fn overlapping_and_impossible_events_are_named() {
        let same_time =
            format!("{BASE}[[events]]\nat='1s'\ncrash='eu-1'\n[[events]]\nat='1s'\nwipe='eu-1'\n");
        let p = fields(&same_time);
        assert!(
            p.iter()
                .any(|p| p.starts_with("events[1]: overlaps events[0]: both act on eu-1 at 1s")),
            "{p:?}"
        );
        let twice = format!("{BASE}[[events]]\nat='1s'\ncrash='eu-1'\n[[events]]\nat='2s'\ncrash='eu-1'\n");
        assert_eq!(
            fields(&twice),
            vec!["events[1].crash: eu-1 is already down (crashed by events[0] and not restarted)"]
        );
        let running = format!("{BASE}[[events]]\nat='1s'\nrestart='us-1'\n");
        assert_eq!(
            fields(&running),
            vec!["events[0].restart: us-1 is running at that time (restart follows a crash)"]
        );
        let heal = format!("{BASE}[[events]]\nat='1s'\nheal=true\n");
        assert_eq!(
            fields(&heal),
            vec!["events[0].heal: nothing is partitioned at that time"]
        );
        let late = format!("{BASE}[[events]]\nat='1h'\ncrash='us-1'\n");
        let p = fields(&late);
        assert!(
            p[0].starts_with("events[0].at: 1h is after the run ends (32s"),
            "{p:?}"
        );
    }

    #[test]
    fn bad_regions_stop_the_checks_that_rest_on_them() {
        let huge = BASE.replace("nodes=1", "nodes=18446744073709551615");
        assert_eq!(
            fields(&huge),
            vec!["regions[1].nodes: must be 1..=50, got 18446744073709551615"]
        );
        let many: String = (0..=MAX_REGIONS)
            .map(|i| format!("[[regions]]\nname='r{i}'\nnodes=1\n"))
            .collect();
        let text =
            format!("name='x'\nduration='1s'\n{many}[workload]\nrevokes_per_sec=1.0\nchecks_per_sec=1.0\n");
        assert_eq!(
            fields(&text),
            vec![format!("regions: at most {MAX_REGIONS}, got {}", MAX_REGIONS + 1)]
        );
    }

    #[test]
    fn huge_times_and_many_mistakes_are_named_not_panicked_on() {
        let long = BASE.replace(
            "duration='10s'",
            "duration='18446744073709551615s'\nsettle='18446744073709551615s'",
        );
        let long = format!("{long}[[events]]\nat='1s'\ncrash='us-1'\n");
        let p = fields(&long);
        assert_eq!(
            p[..2],
            [
                "duration: must be between 1ms and 1h",
                "settle: must be at most 1h"
            ],
            "{p:?}"
        );
        let names: String = (0..200).map(|i| format!("'x{i}',")).collect();
        let many = BASE.replace(
            "checks_per_sec=1.0",
            &format!("checks_per_sec=1.0\nrevoke_regions=[{names}]"),
        );
        let p = fields(&many);
        assert_eq!(p.len(), MAX_PROBLEMS + 1, "{p:?}");
        assert_eq!(p[0], "workload.revoke_regions[0]: no region x0 (regions: eu, us)");
        assert_eq!(p[MAX_PROBLEMS], "and 150 more problems, not listed");
    }
}
