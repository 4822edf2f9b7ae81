//! `rescind-sim`: run deterministic partition simulations of Rescind.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context, anyhow};
use clap::{Parser, Subcommand};
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
         gossip           {} messages, {} bytes, {} duplicate deliveries\n\
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
        r.bytes,
        r.duplicate_deliveries,
        edges,
        r.lost_revocations,
        if problems.is_empty() {
            "healthy".to_string()
        } else {
            problems.join("; ")
        }
    )
}

fn run_one(path: &Path, seed: u64, json: Option<PathBuf>, svg: Option<PathBuf>) -> anyhow::Result<bool> {
    let s = Scenario::load(path)?;
    let r = rescind_sim::run(&s, seed)?;
    println!("{}", summary(&s, &r));
    if let Some(out) = json {
        let text = serde_json::to_string_pretty(&r)? + "\n";
        std::fs::write(&out, text).with_context(|| format!("writing {}", out.display()))?;
    }
    if let Some(out) = svg {
        std::fs::write(&out, rescind_sim::svg::render(&r))
            .with_context(|| format!("writing {}", out.display()))?;
    }
    Ok(verdict(&s, &r).is_empty())
}

fn sweep(path: &Path, spec: &str, jobs: Option<usize>) -> anyhow::Result<bool> {
    let s = Scenario::load(path)?;
    let range = seeds(spec)?;
    let total = (range.end() - range.start() + 1) as usize;
    let jobs = jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
        .clamp(1, 64);
    let next = AtomicU64::new(*range.start());
    let done = AtomicUsize::new(0);
    let errored = AtomicUsize::new(0);
    let results: Mutex<Vec<(u64, Report, Vec<String>)>> = Mutex::new(Vec::new());
    let started = Instant::now();
    let progress = Mutex::new(rescind_sim::progress::Progress::new(
        total,
        std::io::stderr().is_terminal(),
    ));
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| {
                loop {
                    let seed = next.fetch_add(1, Ordering::Relaxed);
                    if seed > *range.end() {
                        break;
                    }
                    let outcome = rescind_sim::run(&s, seed).map(|r| {
                        let p = verdict(&s, &r);
                        (r, p)
                    });
                    let mut all = results.lock().unwrap_or_else(|e| e.into_inner());
                    match outcome {
                        Ok((report, problems)) => all.push((seed, report, problems)),
                        // A seed that could not run counts as done and failed.
                        Err(e) => {
                            errored.fetch_add(1, Ordering::Relaxed);
                            eprintln!("\nseed {seed}: {e}");
                        }
                    }
                    let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                    let failed = all.iter().filter(|(_, _, p)| !p.is_empty()).count()
                        + errored.load(Ordering::Relaxed);
                    let mut progress = progress.lock().unwrap_or_else(|e| e.into_inner());
                    if let Some(text) = progress.update(n, failed, started.elapsed()) {
                        eprint!("{text}");
                    }
                }
            });
        }
    });
    eprint!(
        "{}",
        progress.into_inner().unwrap_or_else(|e| e.into_inner()).finish()
    );
    let mut all = results.into_inner().unwrap_or_else(|e| e.into_inner());
    all.sort_by_key(|(seed, _, _)| *seed);
    let median = |mut v: Vec<u64>| {
        v.sort_unstable();
        v.get(v.len() / 2).copied().unwrap_or(0)
    };
    let failed: Vec<&(u64, Report, Vec<String>)> = all.iter().filter(|(_, _, p)| !p.is_empty()).collect();
    println!(
        "scenario {}: {} seeds, {} healthy, {} failed",
        s.name,
        all.len(),
        all.len() - failed.len(),
        failed.len()
    );
    println!("{:<34} {:>10} {:>10}", "metric", "median", "worst");
    let edge = |f: fn(&rescind_sim::edges::EdgeReport) -> u64| -> Vec<u64> {
        all.iter().filter_map(|r| r.1.edges.as_ref().map(f)).collect()
    };
    let edge_rows: [(&str, Vec<u64>); 4] = [
        (
            "edge time to enforce p50 (ms)",
            edge(|e| e.time_to_enforce_ms.p50),
        ),
        (
            "edge time to enforce p99 (ms)",
            edge(|e| e.time_to_enforce_ms.p99),
        ),
        ("edge stale accepts", edge(|e| e.stale_accepts)),
        ("edge staleness violations", edge(|e| e.staleness_violations)),
    ];
    let rows: [(&str, Vec<u64>); 6] = [
        (
            "time to enforce p50 (ms)",
            all.iter().map(|r| r.1.time_to_enforce_ms.p50).collect(),
        ),
        (
            "time to enforce p99 (ms)",
            all.iter().map(|r| r.1.time_to_enforce_ms.p99).collect(),
        ),
        ("stale accepts", all.iter().map(|r| r.1.stale_accepts).collect()),
        (
            "convergence after heal (ms)",
            all.iter()
                .map(|r| {
                    r.1.convergence_after_heal_ms
                        .iter()
                        .map(|c| c.unwrap_or(u64::MAX))
                        .max()
                        .unwrap_or(0)
                })
                .collect(),
        ),
        (
            "lost revocations",
            all.iter().map(|r| r.1.lost_revocations).collect(),
        ),
        (
            "staleness violations",
            all.iter().map(|r| r.1.staleness_violations).collect(),
        ),
    ];
    let edge_rows = edge_rows.into_iter().filter(|(_, v)| !v.is_empty());
    for (name, values) in rows.into_iter().chain(edge_rows) {
        let worst = values.iter().copied().max().unwrap_or(0);
        println!("{name:<34} {:>10} {:>10}", median(values), worst);
    }
    for (seed, _, problems) in &failed {
        println!("seed {seed} failed: {}", problems.join("; "));
        println!(
            "  replay: rescind-sim run {} --seed {seed} --json seed-{seed}.json --svg seed-{seed}.svg",
            path.display()
        );
    }
    Ok(failed.is_empty() && all.len() == total)
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
        } => run_one(&scenario, seed, json, svg),
        Command::Sweep {
            scenario,
            seeds,
            jobs,
        } => sweep(&scenario, &seeds, jobs),
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
