//! The benchmark runner: runs the workloads, then writes BENCHMARKS.md and its plots.
//!
//! ```text
//! cargo run --release -p openp2p-bench                       # full run (< 10 minutes)
//! cargo run --release -p openp2p-bench -- --quick            # seconds: tiny sizes, one run
//! cargo run --release -p openp2p-bench -- --only bulk,echo --runs 3 --out /tmp/b
//! cargo run --release -p openp2p-bench --features libp2p-anchor -- --only secure
//! ```

use clap::Parser;
use openp2p_bench::machine::{self, Machine};
use openp2p_bench::model::{Opts, Outcome};
use openp2p_bench::report::{self, Run, WorkloadResult};
use openp2p_bench::workloads;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

// Counting allocator of the allocs workload: counts only while one of its child processes
// switches it on (one relaxed atomic load per allocation otherwise).
#[global_allocator]
static ALLOC: workloads::allocs::CountingAlloc = workloads::allocs::CountingAlloc;

/// A workload's entry point.
type Workload = fn(&Opts) -> Outcome;

/// Every workload, in the order a run does them.
const WORKLOADS: [(&str, Workload); 7] = [
    ("bulk", workloads::bulk::run),
    ("echo", workloads::echo::run),
    ("churn", workloads::churn::run),
    ("idle", workloads::idle::run),
    ("allocs", workloads::allocs::run),
    ("rate", workloads::rate::run),
    ("secure", workloads::secure::run),
];

/// Side-by-side benchmarks of openp2p's drivers, raw mio / Tokio / smol baselines and
/// message-io; writes BENCHMARKS.md and SVG plots.
#[derive(Debug, Parser)]
#[command(name = "openp2p-bench")]
struct Cli {
    /// Seconds-long smoke run: tiny sizes, one run of each measurement.
    #[arg(long)]
    quick: bool,
    /// Interleaved runs of each measurement; medians are reported [default: 5, 1 with --quick;
    /// bulk does three times as many].
    #[arg(long)]
    runs: Option<usize>,
    /// Only these workloads (comma-separated): bulk, echo, churn, idle, allocs, rate, secure.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Directory for BENCHMARKS.md and bench/plots/ [default: the repository root].
    #[arg(long)]
    out: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--child") {
        let rest = args.get(3..).unwrap_or_default();
        return match args.get(2).map(String::as_str) {
            Some("idle") => workloads::idle::child_main(rest),
            Some("allocs") => workloads::allocs::child_main(rest),
            _ => ExitCode::FAILURE,
        };
    }
    let cli = Cli::parse();
    for name in &cli.only {
        if !WORKLOADS.iter().any(|(w, _)| w == name) {
            eprintln!(
                "unknown workload `{name}`; known: {}",
                WORKLOADS.map(|(w, _)| w).join(", ")
            );
            return ExitCode::from(2);
        }
    }
    let opts = Opts {
        quick: cli.quick,
        runs: cli.runs.unwrap_or(if cli.quick { 1 } else { 5 }).max(1),
    };
    let out = cli
        .out
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/..")));
    let machine = Machine::probe();
    if !machine.release {
        eprintln!("note: a debug build; use --release for meaningful figures");
    }
    let date = machine::utc_now();
    let load_before = machine::load_average();
    let started = Instant::now();
    let mut results = Vec::new();
    for (name, run) in WORKLOADS {
        if !cli.only.is_empty() && !cli.only.iter().any(|o| o == name) {
            continue;
        }
        eprintln!("{name}:");
        let t = Instant::now();
        let outcome = std::panic::catch_unwind(|| run(&opts)).unwrap_or_else(|_| Outcome {
            notes: vec![format!("the {name} workload panicked; no figures")],
            ..Outcome::default()
        });
        let secs = t.elapsed().as_secs_f64();
        eprintln!("{name}: {secs:.1} s");
        results.push(WorkloadResult {
            name: name.to_string(),
            secs,
            outcome,
        });
    }
    let findings = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/findings.md"))
        .ok()
        .filter(|_| !opts.quick);
    let run = Run {
        machine,
        command: format!(
            "cargo run --release -p openp2p-bench{}{}{}",
            if cfg!(feature = "libp2p-anchor") {
                " --features libp2p-anchor"
            } else {
                ""
            },
            if args.len() > 1 { " -- " } else { "" },
            args.get(1..).unwrap_or_default().join(" ")
        ),
        opts,
        date,
        revision: machine::source_revision(),
        load: (load_before, machine::load_average()),
        total_secs: started.elapsed().as_secs_f64(),
        workloads: results,
        findings,
    };
    for w in &run.workloads {
        for r in w.outcome.rows.iter().filter(|r| r.target.is_some()) {
            println!(
                "{:<7} {:<20} {:<18} {:>12} {:<6} {:>8} {}",
                r.workload,
                r.metric,
                r.subject,
                report::num(r.median),
                r.unit,
                r.ratio.map_or(String::new(), |x| format!("{x:.3}x")),
                match r.met {
                    Some(true) => "met",
                    Some(false) => "MISSED",
                    None => "",
                }
            );
        }
    }
    match report::write(&out, &run) {
        Ok(path) => {
            println!("wrote {} ({:.0} s in all)", path.display(), run.total_secs);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("could not write the report under {}: {e}", out.display());
            ExitCode::FAILURE
        }
    }
}
