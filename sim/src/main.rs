//! `rescind-sim`: run deterministic partition simulations of Rescind.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{Context, anyhow};
use clap::{Parser, Subcommand};
use rescind_sim::settings::{self, Overrides, Setting};
use rescind_sim::{Report, Scenario, verdict};

/// Deterministic simulations of a Rescind cluster: the real node code on a
/// simulated network and clock. Same scenario and seed, same report.
#[derive(Parser, Debug)]
#[command(
    name = "rescind-sim",
    version,
    about,
    long_about,
    after_help = "Environment: RUST_LOG (e.g. rescind_node=debug,h2=trace) prints the simulated nodes' logs on stderr; off when unset."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run one scenario with one seed and print its report.
    Run {
        /// Scenario file (see sim/README.md for the schema).
        scenario: PathBuf,
        /// Seed: the same seed replays the same run.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Write the full report as JSON here.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Draw the picture (SVG) here.
        #[arg(long)]
        svg: Option<PathBuf>,
        /// Write one self-contained HTML page here: verdict, figures, the
        /// picture, per-region and per-phase tables, the scenario text and
        /// the replay command.
        #[arg(long)]
        html: Option<PathBuf>,
        /// Change a node config key for every node: KEY=VALUE, e.g.
        /// gossip.interval=1s (any key of deploy/rescind.toml but those the
        /// simulator sets; repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
    },
    /// Run one scenario over many seeds; list the seeds that failed.
    Sweep {
        /// Scenario file.
        scenario: PathBuf,
        /// Seeds to run, inclusive: `1..1000` or `1..=1000`.
        #[arg(long, default_value = "1..100")]
        seeds: String,
        /// Parallel runs. [default: the number of CPUs]
        #[arg(long)]
        jobs: Option<usize>,
        /// Try each value of a node config key: KEY=V1,V2,... (repeatable;
        /// the sweep runs every combination, at most 64, each over every
        /// seed, and prints one line per combination).
        #[arg(long = "set", value_name = "KEY=V1,V2")]
        set: Vec<String>,
        /// Draw p99 time to enforce against peer bandwidth, one point per
        /// configuration (SVG), here.
        #[arg(long)]
        svg: Option<PathBuf>,
    },
    /// Check scenario files without running them: every mistake, each as
    /// FILE:LINE:COLUMN. Exit status 2 when a file has mistakes, 1 when one
    /// cannot be read.
    Check {
        /// Scenario files.
        #[arg(required = true)]
        scenarios: Vec<PathBuf>,
    },
}

/// Print each file's mistakes (with the line they are on); true when none has any.
fn check_files(paths: &[PathBuf]) -> anyhow::Result<bool> {
    let (mut clean, mut unreadable) = (true, 0);
    for path in paths {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("{}: cannot read {}: {e}", path.display(), path.display());
                unreadable += 1;
                continue;
            }
        };
        let found = rescind_sim::check::check(&text);
        if found.is_empty() {
            let s = Scenario::parse(&text)?;
            println!(
                "{}: ok ({} regions, {} nodes, {} events, {} edges)",
                path.display(),
                s.regions.len(),
                s.nodes().len(),
                s.events.len(),
                s.edges.len()
            );
            continue;
        }
        clean = false;
        for f in found {
            eprintln!("{}:{}:{}: {}", path.display(), f.line, f.column, f.message);
            if let Some(source) = text.lines().nth(f.line - 1) {
                eprintln!("    {source}");
                eprintln!("    {}^", " ".repeat(f.column - 1));
            }
        }
    }
    if unreadable > 0 {
        return Err(anyhow!("{unreadable} of {} files could not be read", paths.len()));
    }
    Ok(clean)
}

fn seeds(spec: &str) -> anyhow::Result<std::ops::RangeInclusive<u64>> {
    let (a, b) = spec
        .split_once("..=")
        .or_else(|| spec.split_once(".."))
        .ok_or_else(|| anyhow!("--seeds {spec}: expected FROM..TO, e.g. 1..1000"))?;
    let num = |s: &str| {
        s.trim().parse::<u64>().map_err(|_| {
            anyhow!("--seeds {spec}: `{s}` is not a whole number (expected FROM..TO, e.g. 1..1000)")
        })
    };
    let (a, b) = (num(a)?, num(b)?);
    if a > b || b - a >= 1_000_000 {
        return Err(anyhow!(
            "--seeds {spec}: FROM must not exceed TO, at most 1,000,000 seeds"
        ));
    }
    Ok(a..=b)
}

fn summary(s: &Scenario, r: &Report) -> String {
    let p = &r.time_to_enforce_ms;
    let problems = verdict(s, r);
    let edges = match &r.edges {
        None => String::new(),
        Some(e) => format!(
            "edges            {} replicas: enforce p50 {} ms, p99 {} ms, max {} ms; {} stale accepts of {} checks\n\
             edge staleness   max reported {} ms, max true lag {} ms, {} violations; {} Watch streams, {} missing\n",
            e.replicas,
            e.time_to_enforce_ms.p50,
            e.time_to_enforce_ms.p99,
            e.time_to_enforce_ms.max,
            e.stale_accepts,
            e.checks,
            e.max_reported_staleness_ms,
            e.max_true_lag_ms,
            e.staleness_violations,
            e.streams,
            e.lost_revocations,
        ),
    };
    format!(
        "scenario         {} (seed {})\n\
         revocations      {} acknowledged, {} checks, {} request errors\n\
         time to enforce  p50 {} ms, p99 {} ms, max {} ms\n\
         stale accepts    {} {:?}\n\
         after heals      {:?} ms to converge\n\
         staleness        max reported {} ms, max true lag {} ms, {} violations\n\
         gossip           {} messages ({} per revocation), {} bytes of ops, {} duplicate deliveries\n\
         peer traffic     {} B/s per node sent (mean), {} B/s (busiest node)\n\
         {}lost             {}\n\
         verdict          {}",
        r.scenario,
        r.seed,
        r.revocations,
        r.checks,
        r.request_errors,
        p.p50,
        p.p99,
        p.max,
        r.stale_accepts,
        r.stale_accepts_by_phase,
        r.convergence_after_heal_ms,
        r.max_reported_staleness_ms,
        r.max_true_lag_ms,
        r.staleness_violations,
        r.messages,
        r.messages_per_revocation,
        r.bytes,
        r.duplicate_deliveries,
        r.peer_bytes_per_node_per_sec.mean,
        r.peer_bytes_per_node_per_sec.max,
        edges,
        r.lost_revocations,
        if problems.is_empty() {
            "healthy".to_string()
        } else {
            problems.join("; ")
        }
    )
}

/// The `--set` flags as a grid of configurations, each checked against
/// the scenario before anything runs.
fn settings_grid(s: &Scenario, specs: &[String]) -> anyhow::Result<Vec<Overrides>> {
    let settings = specs
        .iter()
        .map(|spec| Setting::parse(spec))
        .collect::<Result<Vec<_>, _>>()?;
    let grid = settings::grid(&settings)?;
    for overrides in &grid {
        rescind_sim::run::check_overrides(s, overrides)?;
    }
    Ok(grid)
}

fn run_one(
    path: &Path,
    seed: u64,
    json: Option<PathBuf>,
    svg: Option<PathBuf>,
    html: Option<PathBuf>,
    set: &[String],
) -> anyhow::Result<bool> {
    let s = Scenario::load(path)?;
    if let Some(spec) = set.iter().find(|spec| spec.contains(',')) {
        return Err(anyhow!(
            "--set {spec}: run takes one value per key (sweep tries several)"
        ));
    }
    let overrides = settings_grid(&s, set)?.into_iter().next().unwrap_or_default();
    let r = rescind_sim::run::run_with(&s, seed, &overrides)?;
    println!("{}", summary(&s, &r));
    if let Some(out) = json {
        let text = serde_json::to_string_pretty(&r)? + "\n";
        std::fs::write(&out, text).with_context(|| format!("writing {}", out.display()))?;
    }
    if let Some(out) = svg {
        std::fs::write(&out, rescind_sim::svg::render(&r))
            .with_context(|| format!("writing {}", out.display()))?;
    }
    let problems = verdict(&s, &r);
    if let Some(out) = html {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let replay = format!(
            "rescind-sim run {} --seed {seed}{}",
            path.display(),
            overrides.flags()
        );
        let page = rescind_sim::html::Page {
            scenario: &s,
            scenario_text: &text,
            replay: &replay,
            problems: &problems,
        };
        std::fs::write(&out, rescind_sim::html::render(&page, &r))
            .with_context(|| format!("writing {}", out.display()))?;
    }
    Ok(problems.is_empty())
}

/// What `sweep` was asked.
struct SweepArgs {
    seeds: String,
    jobs: Option<usize>,
    set: Vec<String>,
    svg: Option<PathBuf>,
}

fn sweep(path: &Path, args: SweepArgs) -> anyhow::Result<bool> {
    let s = Scenario::load(path)?;
    let range = seeds(&args.seeds)?;
    let grid = settings_grid(&s, &args.set)?;
    let per_config = (range.end() - range.start() + 1) as usize;
    let total = per_config * grid.len();
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
        .clamp(1, 64);
    let started = Instant::now();
    let progress = Mutex::new(rescind_sim::progress::Progress::new(
        total,
        std::io::stderr().is_terminal(),
    ));
    let configurations = rescind_sim::sweep::run_grid(&s, range, &grid, jobs, &|done, failed| {
        let mut progress = progress.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(text) = progress.update(done, failed, started.elapsed()) {
            eprint!("{text}");
        }
    });
    eprint!(
        "{}",
        progress.into_inner().unwrap_or_else(|e| e.into_inner()).finish()
    );
    let runs = configurations
        .iter()
        .flat_map(|c| c.runs.iter().map(move |r| (c, r)));
    let failed: Vec<_> = runs.filter(|(_, r)| !r.problems.is_empty()).collect();
    println!(
        "scenario {}: {} seeds x {} configuration(s), {} runs healthy, {} failed",
        s.name,
        per_config,
        grid.len(),
        total - failed.len(),
        failed.len()
    );
    match configurations.as_slice() {
        [one] if args.set.is_empty() => print!("{}", one.metrics_table()),
        all => print!("{}", rescind_sim::sweep::grid_table(all)),
    }
    if let Some(out) = &args.svg {
        let rows: Vec<_> = configurations.iter().map(|c| c.row()).collect();
        std::fs::write(out, rescind_sim::svg::sweep_chart(&s.name, &rows))
            .with_context(|| format!("writing {}", out.display()))?;
        eprintln!("wrote {}", out.display());
    }
    for (config, run) in &failed {
        let sets = config.overrides.flags();
        println!(
            "seed {}{} failed: {}",
            run.seed,
            if sets.is_empty() {
                String::new()
            } else {
                format!(" ({})", config.overrides)
            },
            run.problems.join("; ")
        );
        println!(
            "  replay: rescind-sim run {} --seed {}{sets} --json seed-{}.json --svg seed-{}.svg",
            path.display(),
            run.seed,
            run.seed,
            run.seed
        );
    }
    Ok(failed.is_empty())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The nodes' own logs (and their libraries'), only when asked for:
    // `RUST_LOG=rescind_node=debug rescind-sim run ...`.
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let result = match cli.command {
        Command::Run {
            scenario,
            seed,
            json,
            svg,
            html,
            set,
        } => run_one(&scenario, seed, json, svg, html, &set),
        Command::Sweep {
            scenario,
            seeds,
            jobs,
            set,
            svg,
        } => sweep(
            &scenario,
            SweepArgs {
                seeds,
                jobs,
                set,
                svg,
            },
        ),
        Command::Check { scenarios } => check_files(&scenarios),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(2),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn seed_ranges_are_inclusive_and_errors_name_the_flag() {
        assert_eq!(super::seeds("1..1000").unwrap(), 1..=1000);
        assert_eq!(super::seeds("5..=5").unwrap(), 5..=5);
        for bad in ["1..x", "9..2", "1-5", "0..2000000"] {
            let e = super::seeds(bad).unwrap_err().to_string();
            assert!(e.contains("--seeds"), "{bad}: {e}");
        }
    }
}
