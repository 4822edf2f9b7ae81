//! A what-if sweep over two node config keys × two values: one table line
//! and one chart point per configuration, the same bytes whatever the
//! number of threads, and the settings really reach the nodes.
#![allow(clippy::unwrap_used)] // test code: a panic is a failed test

use rescind_sim::Scenario;
use rescind_sim::settings::{Setting, grid};
use rescind_sim::sweep::{grid_table, run_grid};

const SMALL: &str = r#"
name = "two-regions"
duration = "4s"
settle = "3s"
[[regions]]
name = "eu"
nodes = 2
[[regions]]
name = "us"
nodes = 2
[network]
intra_region = "1ms"
[[network.links]]
between = ["eu", "us"]
latency = "40ms"
[workload]
revokes_per_sec = 10
checks_per_sec = 5
"#;

#[test]
fn a_two_by_two_sweep_prints_a_line_and_draws_a_point_per_configuration_deterministically() {
    let s = Scenario::parse(SMALL).unwrap();
    let settings = [
        Setting::parse("gossip.interval=200ms,1s").unwrap(),
        Setting::parse("gossip.push_fanout=1,8").unwrap(),
    ];
    let g = grid(&settings).unwrap();
    assert_eq!(g.len(), 4);
    let sweep = |jobs| {
        let configurations = run_grid(&s, 1..=2, &g, jobs, &|_, _| {});
        let rows: Vec<_> = configurations.iter().map(|c| c.row()).collect();
        let table = grid_table(&configurations);
        (
            configurations,
            table,
            rescind_sim::svg::sweep_chart(&s.name, &rows),
        )
    };
    let (configurations, table, svg) = sweep(1);
    let (_, table2, svg2) = sweep(3);
    assert_eq!(table, table2, "the table depends on the thread count");
    assert_eq!(svg, svg2);
    eprintln!("{table}");
    for c in &configurations {
        assert_eq!(c.runs.len(), 2);
        for r in &c.runs {
            assert!(
                r.problems.is_empty(),
                "{} seed {}: {:?}",
                c.overrides,
                r.seed,
                r.problems
            );
        }
        let label = c.overrides.to_string();
        assert_eq!(
            table.matches(&format!("{label} ")).count(),
            1,
            "{label}:\n{table}"
        );
        assert_eq!(svg.matches(&format!(">{label}</text>")).count(), 1, "{label}");
    }
    let rows: Vec<_> = configurations.iter().map(|c| c.row()).collect();
    // Rounds five times as often cost more bandwidth at the same fanout.
    assert!(rows[1].peer_bytes_per_sec > rows[3].peer_bytes_per_sec, "{table}");
    assert!(rows[0].peer_bytes_per_sec > rows[2].peer_bytes_per_sec, "{table}");
    // A fanout of 1 pushes to fewer peers than one of 8, with rounds once a second.
    assert!(
        rows[2].messages_per_revocation < rows[3].messages_per_revocation,
        "{table}"
    );
}
