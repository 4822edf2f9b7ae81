//! The picture: per region, the fraction of acknowledged revocations its
//! running nodes hold, over simulated time, with partition and crash windows
//! shaded. Something an SRE can paste into a postmortem.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::Report;

const W: f64 = 960.0;
const H: f64 = 420.0;
const LEFT: f64 = 60.0;
const RIGHT: f64 = 170.0;
const TOP: f64 = 60.0;
const BOTTOM: f64 = 50.0;
const COLORS: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2",
];

/// Windows to shade: (from ms, to ms, label, colour).
fn windows(r: &Report) -> Vec<(u64, u64, String, &'static str)> {
    let end = r.phases.last().map_or(0, |p| p.to_ms);
    let mut out = Vec::new();
    for (i, p) in r.phases.iter().enumerate() {
        let later = &r.phases[i + 1..];
        if p.label.starts_with("partition") {
            let to = later
                .iter()
                .find(|q| q.label == "healed")
                .map_or(end, |q| q.from_ms);
            out.push((p.from_ms, to, p.label.clone(), "#f4cccc"));
        } else if let Some(node) = p.label.strip_prefix("crash ") {
            let to = later
                .iter()
                .find(|q| q.label == format!("restart {node}"))
                .map_or(end, |q| q.from_ms);
            out.push((p.from_ms, to, p.label.clone(), "#dddddd"));
        } else if p.label.starts_with("wipe ") {
            out.push((p.from_ms, p.from_ms + 200, p.label.clone(), "#bbbbbb"));
        }
    }
    out
}

/// The start of a standalone SVG document `width` × `height` on white,
/// with `title` (escaped here) at `at`.
fn open(width: f64, height: f64, (x, y): (f64, f64), title: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="{width}" height="{height}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{x}" y="{y}" font-size="15" font-weight="bold">{}</text>"#,
        escape(title)
    );
    s
}

/// Render `r` as a standalone SVG document.
pub fn render(r: &Report) -> String {
    let end = r.phases.last().map_or(1, |p| p.to_ms).max(1) as f64;
    let x = |ms: u64| LEFT + (ms as f64 / end) * (W - LEFT - RIGHT);
    let y = |f: f64| TOP + (1.0 - f) * (H - TOP - BOTTOM);
    let mut s = open(
        W,
        H,
        (LEFT, 22.0),
        &format!(
            "{} (seed {}): revocations held by each region over time",
            r.scenario, r.seed
        ),
    );
    let _ = writeln!(
        s,
        r#"<text x="{LEFT}" y="42">time to enforce p50 {} ms, p99 {} ms, max {} ms · stale accepts {} · lost {} · converged {}</text>"#,
        r.time_to_enforce_ms.p50,
        r.time_to_enforce_ms.p99,
        r.time_to_enforce_ms.max,
        r.stale_accepts,
        r.lost_revocations,
        r.converged
    );
    for (from, to, label, colour) in windows(r) {
        let label = escape(&label);
        let _ = writeln!(
            s,
            r#"<rect x="{:.1}" y="{TOP}" width="{:.1}" height="{:.1}" fill="{colour}"><title>{label}</title></rect>"#,
            x(from),
            (x(to) - x(from)).max(1.0),
            H - TOP - BOTTOM
        );
        let _ = writeln!(
            s,
            r##"<text x="{:.1}" y="{:.1}" font-size="10" fill="#555">{label}</text>"##,
            x(from) + 2.0,
            TOP + 12.0
        );
    }
    // Axes and grid.
    for i in 0..=4 {
        let f = f64::from(i) / 4.0;
        let _ = writeln!(
            s,
            r##"<line x1="{LEFT}" x2="{:.1}" y1="{:.1}" y2="{:.1}" stroke="#ccc"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}%</text>"##,
            W - RIGHT,
            y(f),
            y(f),
            LEFT - 6.0,
            y(f) + 4.0,
            i * 25
        );
    }
    let step = ((end / 1000.0 / 8.0).ceil() as u64).max(1) * 1000;
    let mut t = 0;
    while (t as f64) <= end {
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}s</text>"#,
            x(t),
            H - BOTTOM + 18.0,
            t / 1000
        );
        t += step;
    }
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">simulated time</text>"#,
        LEFT + (W - LEFT - RIGHT) / 2.0,
        H - 10.0
    );
    // One line per region.
    let mut series: BTreeMap<&str, Vec<(u64, f64)>> = BTreeMap::new();
    for (t, regions) in &r.region_convergence {
        for (region, f) in regions {
            series.entry(region.as_str()).or_default().push((*t, *f));
        }
    }
    for (i, (region, points)) in series.iter().enumerate() {
        let colour = COLORS[i % COLORS.len()];
        let path: Vec<String> = points
            .iter()
            .map(|(t, f)| format!("{:.1},{:.1}", x(*t), y(*f)))
            .collect();
        let _ = writeln!(
            s,
            r#"<polyline fill="none" stroke="{colour}" stroke-width="1.8" points="{}"/>"#,
            path.join(" ")
        );
        let ly = TOP + 10.0 + i as f64 * 18.0;
        let _ = writeln!(
            s,
            r#"<line x1="{:.1}" x2="{:.1}" y1="{ly:.1}" y2="{ly:.1}" stroke="{colour}" stroke-width="3"/><text x="{:.1}" y="{:.1}">{}</text>"#,
            W - RIGHT + 12.0,
            W - RIGHT + 32.0,
            W - RIGHT + 38.0,
            ly + 4.0,
            escape(region)
        );
    }
    s.push_str("</svg>\n");
    s
}

/// A round step for about `ticks` ticks up to `max`: 1, 2 or 5 times a power of ten.
fn tick_step(max: f64, ticks: f64) -> f64 {
    let raw = (max / ticks).max(1e-9);
    let power = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * power)
}

/// A sweep's trade-off as a standalone SVG: one point per configuration,
/// at its peer bytes/s per node (x) and its median p99 time to enforce (y),
/// with a whisker up to the worst seed's p99.
pub fn sweep_chart(scenario: &str, rows: &[crate::sweep::Row]) -> String {
    const CW: f64 = 760.0;
    const CH: f64 = 460.0;
    const CL: f64 = 70.0;
    const CR: f64 = 30.0;
    const CT: f64 = 50.0;
    const CB: f64 = 60.0;
    let max_x = rows
        .iter()
        .map(|r| r.peer_bytes_per_sec)
        .max()
        .unwrap_or(0)
        .max(1) as f64
        * 1.15;
    let max_y = rows.iter().map(|r| r.p99_worst_ms).max().unwrap_or(0).max(1) as f64 * 1.15;
    let (step_x, step_y) = (tick_step(max_x, 6.0), tick_step(max_y, 6.0));
    let (max_x, max_y) = ((max_x / step_x).ceil() * step_x, (max_y / step_y).ceil() * step_y);
    let x = |v: f64| CL + v / max_x * (CW - CL - CR);
    let y = |v: f64| CH - CB - v / max_y * (CH - CT - CB);
    let mut s = open(
        CW,
        CH,
        (CL, 24.0),
        &format!("{scenario}: p99 time to enforce against peer bandwidth, per configuration"),
    );
    let mut v = 0.0;
    while v <= max_y + step_y / 2.0 {
        let _ = writeln!(
            s,
            r##"<line x1="{CL}" x2="{:.1}" y1="{:.1}" y2="{:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{v}</text>"##,
            CW - CR,
            y(v),
            y(v),
            CL - 6.0,
            y(v) + 4.0
        );
        v += step_y;
    }
    let mut v = 0.0;
    while v <= max_x + step_x / 2.0 {
        let _ = writeln!(
            s,
            r##"<line x1="{:.1}" x2="{:.1}" y1="{CT}" y2="{:.1}" stroke="#eee"/><text x="{:.1}" y="{:.1}" text-anchor="middle">{v}</text>"##,
            x(v),
            x(v),
            CH - CB,
            x(v),
            CH - CB + 16.0
        );
        v += step_x;
    }
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">peer bytes/s per node (mean over nodes, median over seeds)</text>"#,
        CL + (CW - CL - CR) / 2.0,
        CH - 18.0
    );
    let _ = writeln!(
        s,
        r#"<text transform="translate(18 {:.1}) rotate(-90)" text-anchor="middle">p99 time to enforce, ms (whisker: worst seed)</text>"#,
        CT + (CH - CT - CB) / 2.0
    );
    for (i, r) in rows.iter().enumerate() {
        let colour = COLORS[i % COLORS.len()];
        let (px, py, worst) = (
            x(r.peer_bytes_per_sec as f64),
            y(r.p99_ms as f64),
            y(r.p99_worst_ms as f64),
        );
        let _ = writeln!(
            s,
            r#"<line x1="{px:.1}" x2="{px:.1}" y1="{py:.1}" y2="{worst:.1}" stroke="{colour}"/><circle cx="{px:.1}" cy="{py:.1}" r="5" fill="{colour}"><title>{} : p99 {} ms (worst {}), {} B/s</title></circle><text x="{:.1}" y="{:.1}" font-size="11">{}</text>"#,
            escape(&r.label),
            r.p99_ms,
            r.p99_worst_ms,
            r.peer_bytes_per_sec,
            px + 8.0,
            py + 4.0,
            escape(&r.label)
        );
    }
    s.push_str("</svg>\n");
    s
}

/// Text made safe for SVG and HTML.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_steps_are_round() {
        assert_eq!(tick_step(12_000.0, 6.0), 2000.0);
        assert_eq!(tick_step(300.0, 6.0), 50.0);
        assert_eq!(tick_step(7.0, 6.0), 2.0);
        assert_eq!(escape("a<b & \"c\">"), "a&lt;b &amp; &quot;c&quot;&gt;");
    }
}
