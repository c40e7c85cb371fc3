//! Workload 1, bulk: 1 GiB over one connection on loopback, after a 64 MiB untimed warm-up, for
//! every subject; throughput (GB/s) and CPU time per byte (every thread of the process, both
//! ends of the connection, from the process CPU-time clock; see [`crate::cpu`]).

use crate::collect::{Collector, Metric};
use crate::model::{Opts, Outcome};
use crate::subject::{guarded, BulkSize, Subject};
use std::time::Duration;

/// The sizes of a full or a quick run.
pub fn size(opts: &Opts) -> BulkSize {
    if opts.quick {
        BulkSize {
            warmup: 1 << 20,
            timed: 8 << 20,
        }
    } else {
        BulkSize {
            warmup: 64 << 20,
            timed: 1 << 30,
        }
    }
}

/// Interleaved runs of bulk per requested run: loopback bulk throughput is bimodal on these
/// machines (a run lands at ~3 or ~7 GB/s for the same code), so its medians need more samples
/// than the other workloads; a run takes about a second per subject.
pub const RUNS_PER_RUN: usize = 3;

/// How many interleaved runs of every subject bulk makes: `RUNS_PER_RUN * opts.runs` (once
/// per requested run in a quick run).
pub fn runs(opts: &Opts) -> usize {
    opts.runs.max(1) * if opts.quick { 1 } else { RUNS_PER_RUN }
}

/// Runs every subject [`runs`] times, interleaved.
pub fn run(opts: &Opts) -> Outcome {
    let size = size(opts);
    let mut c = Collector::new(
        "bulk",
        vec![
            Metric::targeted("throughput", "GB/s", 0.95),
            Metric::plain("CPU per byte", "ns/B"),
        ],
    );
    let runs = runs(opts);
    for run in 1..=runs {
        for subject in Subject::selected() {
            match guarded(Duration::from_secs(120), move || {
                crate::subjects::bulk(subject, size)
            }) {
                Ok(span) => {
                    let gbps = size.timed as f64 / span.secs / 1e9;
                    let ns_per_byte = span.cpu_ns as f64 / size.timed as f64;
                    eprintln!(
                        "  bulk run {run}: {:<18} {gbps:6.2} GB/s {ns_per_byte:6.3} ns CPU/B",
                        subject.name()
                    );
                    c.push(subject, &[gbps, ns_per_byte]);
                }
                Err(e) => c.fail(subject, run, &e),
            }
        }
    }
    let mut outcome = c.finish();
    outcome.notes.insert(
        0,
        format!(
            "{runs} interleaved runs per subject (loopback bulk throughput is bimodal here, so \
             medians need many); {} MiB over one loopback connection after {} MiB untimed; the sender writes (or \
             queues) 1 MiB at a time, the receiver reads 128 KiB at a time (openp2p: the engine's \
             128 KiB segments). CPU per byte counts every thread of the process (sender and \
             receiver) over the timed part.",
            size.timed >> 20,
            size.warmup >> 20
        ),
    );
    outcome
}
