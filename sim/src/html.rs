//! `rescind-sim run --html OUT`: one self-contained file an SRE can hand
//! on — the verdict and headline figures, the timeline picture (inline
//! SVG), per-region and per-phase tables, the scenario text and the
//! command that replays the run. No script, no external resource.

use std::fmt::Write;

use crate::report::Report;
use crate::scenario::Scenario;
use crate::svg::escape;

/// What goes into the page besides the report.
pub struct Page<'a> {
    /// The scenario as run.
    pub scenario: &'a Scenario,
    /// The scenario file's text, shown as written.
    pub scenario_text: &'a str,
    /// The command that replays the run.
    pub replay: &'a str,
    /// The verdict's problems (empty: healthy).
    pub problems: &'a [String],
}

const STYLE: &str = "body{font-family:sans-serif;margin:2em;max-width:1000px;color:#222}\
table{border-collapse:collapse;margin:0.5em 0 1.5em}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}\
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}\
pre{background:#f7f7f7;padding:1em;overflow-x:auto;font-size:12px}\
.healthy{color:#1a7f37}.failed{color:#c62828}";

fn row(s: &mut String, cells: &[String]) {
    s.push_str("<tr>");
    for c in cells {
        let _ = write!(s, "<td>{}</td>", escape(c));
    }
    s.push_str("</tr>\n");
}

fn head(s: &mut String, cells: &[&str]) {
    s.push_str("<tr>");
    for c in cells {
        let _ = write!(s, "<th>{}</th>", escape(c));
    }
    s.push_str("</tr>\n");
}

/// The page for report `r`.
pub fn render(page: &Page<'_>, r: &Report) -> String {
    let mut s = String::new();
    let title = format!("{} (seed {})", r.scenario, r.seed);
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>rescind-sim: {}</title><style>{STYLE}</style></head><body>\n",
        escape(&title)
    );
    let _ = writeln!(s, "<h1>{}</h1>", escape(&title));
    if !page.scenario.description.is_empty() {
        let _ = writeln!(s, "<p>{}</p>", escape(&page.scenario.description));
    }
    match page.problems {
        [] => s.push_str("<p class=\"healthy\"><b>Verdict: healthy</b></p>\n"),
        p => {
            let _ = writeln!(
                s,
                "<p class=\"failed\"><b>Verdict: failed</b>: {}</p>",
                escape(&p.join("; "))
            );
        }
    }
    s.push_str("<h2>Figures</h2>\n<table>\n");
    head(&mut s, &["figure", "value"]);
    let t = &r.time_to_enforce_ms;
    let figures = [
        ("revocations acknowledged", r.revocations.to_string()),
        ("checks answered", r.checks.to_string()),
        ("request errors", r.request_errors.to_string()),
        (
            "time to enforce p50 / p99 / max (ms)",
            format!("{} / {} / {}", t.p50, t.p99, t.max),
        ),
        ("stale accepts", r.stale_accepts.to_string()),
        ("lost revocations", r.lost_revocations.to_string()),
        ("converged at the end", r.converged.to_string()),
        (
            "staleness: max reported / max true lag (ms), violations",
            format!(
                "{} / {}, {}",
                r.max_reported_staleness_ms, r.max_true_lag_ms, r.staleness_violations
            ),
        ),
        (
            "peer bytes/s per node: mean / busiest",
            format!(
                "{} / {}",
                r.peer_bytes_per_node_per_sec.mean, r.peer_bytes_per_node_per_sec.max
            ),
        ),
        (
            "peer messages (per revocation)",
            format!("{} ({})", r.messages, r.messages_per_revocation),
        ),
        ("duplicate deliveries", r.duplicate_deliveries.to_string()),
    ];
    for (name, value) in figures {
        row(&mut s, &[name.to_owned(), value]);
    }
    if let Some(e) = &r.edges {
        row(
            &mut s,
            &[
                "edge replicas: time to enforce p50 / p99 (ms), stale accepts".into(),
                format!(
                    "{} / {}, {}",
                    e.time_to_enforce_ms.p50, e.time_to_enforce_ms.p99, e.stale_accepts
                ),
            ],
        );
    }
    s.push_str("</table>\n<h2>Timeline</h2>\n");
    s.push_str(&crate::svg::render(r));
    s.push_str("<h2>Regions</h2>\n<table>\n");
    head(&mut s, &["region", "nodes", "stale accepts", "held at the end"]);
    let last = r.region_convergence.last().map(|(_, f)| f);
    for region in &page.scenario.regions {
        let held = last
            .and_then(|f| f.get(&region.name))
            .map_or("-".to_owned(), |f| format!("{:.1}%", f * 100.0));
        row(
            &mut s,
            &[
                region.name.clone(),
                region.nodes.to_string(),
                r.stale_accepts_by_region
                    .get(&region.name)
                    .copied()
                    .unwrap_or(0)
                    .to_string(),
                held,
            ],
        );
    }
    s.push_str("</table>\n<h2>Phases</h2>\n<table>\n");
    head(&mut s, &["phase", "from (s)", "to (s)", "stale accepts"]);
    for p in &r.phases {
        row(
            &mut s,
            &[
                p.label.clone(),
                format!("{:.1}", p.from_ms as f64 / 1000.0),
                format!("{:.1}", p.to_ms as f64 / 1000.0),
                r.stale_accepts_by_phase
                    .get(&p.label)
                    .copied()
                    .unwrap_or(0)
                    .to_string(),
            ],
        );
    }
    s.push_str("</table>\n");
    if !r.convergence_after_heal_ms.is_empty() {
        let list: Vec<String> = r
            .convergence_after_heal_ms
            .iter()
            .map(|c| c.map_or("never".into(), |ms| format!("{ms} ms")))
            .collect();
        let _ = writeln!(
            s,
            "<p>Convergence after each heal, restart or wipe: {}</p>",
            escape(&list.join(", "))
        );
    }
    let _ = writeln!(
        s,
        "<h2>Replay</h2>\n<pre>{}</pre>\n<h2>Scenario</h2>\n<pre>{}</pre>\n</body></html>",
        escape(page.replay),
        escape(page.scenario_text)
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_escapes_what_the_scenario_says_and_has_every_section() {
        let text = "name='x<script>'\ndescription='a & b'\nduration='10s'\n[[regions]]\nname='eu'\nnodes=2\n[workload]\nrevokes_per_sec=1.0\nchecks_per_sec=1.0\n";
        let scenario = Scenario::parse(text).unwrap();
        let report = Report {
            scenario: scenario.name.clone(),
            seed: 3,
            converged: true,
            lost_revocations: 0,
            stale_accepts: 0,
            stale_accepts_by_region: Default::default(),
            stale_accepts_by_phase: Default::default(),
            time_to_enforce_ms: Default::default(),
            convergence_after_heal_ms: vec![Some(40), None],
            messages: 0,
            bytes: 0,
            peer_bytes_per_node_per_sec: Default::default(),
            messages_per_revocation: 0.0,
            duplicate_deliveries: 0,
            max_reported_staleness_ms: 0,
            max_true_lag_ms: 0,
            staleness_violations: 0,
            revocations: 0,
            checks: 0,
            request_errors: 0,
            phases: Vec::new(),
            traces: Vec::new(),
            region_convergence: Vec::new(),
            edges: None,
        };
        let html = render(
            &Page {
                scenario: &scenario,
                scenario_text: text,
                replay: "rescind-sim run x.toml --seed 3",
                problems: &[],
            },
            &report,
        );
        assert!(!html.contains("<script>"), "unescaped scenario text");
        assert!(html.contains("x&lt;script&gt;") && html.contains("a &amp; b"));
        for section in [
            "<h2>Figures",
            "<svg",
            "<h2>Regions",
            "<h2>Phases",
            "<h2>Replay",
            "<h2>Scenario",
        ] {
            assert!(html.contains(section), "{section}");
        }
        assert!(html.contains("40 ms, never"));
        assert!(html.contains("rescind-sim run x.toml --seed 3"));
        assert!(
            !html.contains("src=") && !html.contains("href="),
            "an external resource"
        );
    }
}
