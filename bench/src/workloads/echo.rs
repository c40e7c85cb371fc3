//! Workload 2, echo: 100 connections each keeping one 64-byte request in flight against an echo
//! server of every subject, for a few seconds; round trips per second and the p50 and p99 of
//! the round-trip latency. The clients are the same raw mio load generator for every subject
//! ([`crate::loadgen`]), so only the server differs.

use crate::collect::{Collector, Metric};
use crate::loadgen::{self, EchoLoad};
use crate::model::{Opts, Outcome};
use crate::subject::{guarded, Subject};
use std::time::Duration;

/// The load of a full or a quick run.
pub fn load(opts: &Opts) -> EchoLoad {
    EchoLoad {
        peers: 100,
        size: 64,
        warmup: Duration::from_millis(if opts.quick { 50 } else { 300 }),
        measure: Duration::from_millis(if opts.quick { 200 } else { 3_000 }),
    }
}

/// Runs every subject `opts.runs` times, interleaved.
pub fn run(opts: &Opts) -> Outcome {
    let load = load(opts);
    let mut c = Collector::new(
        "echo",
        vec![
            Metric::targeted("round trips", "/s", 0.9),
            Metric::plain("p50 latency", "µs"),
            Metric::plain("p99 latency", "µs"),
            Metric::plain("server CPU per round trip", "µs"),
        ],
    );
    for run in 1..=opts.runs.max(1) {
        for subject in Subject::selected() {
            let result = guarded(Duration::from_secs(60), move || {
                let server = crate::subjects::echo_server(subject)?;
                let result = loadgen::echo(server.addr(), load);
                server.stop();
                result
            });
            match result {
                Ok(r) => {
                    eprintln!(
                        "  echo run {run}: {:<18} {:9.0} round trips/s  p50 {:5.0} µs  p99 {:5.0} µs  {:5.1} µs server CPU",
                        subject.name(),
                        r.trips_per_sec,
                        r.p50_us,
                        r.p99_us,
                        r.server_cpu_us_per_trip
                    );
                    c.push(
                        subject,
                        &[
                            r.trips_per_sec,
                            r.p50_us,
                            r.p99_us,
                            r.server_cpu_us_per_trip,
                        ],
                    );
                }
                Err(e) => c.fail(subject, run, &e),
            }
        }
    }
    let mut outcome = c.finish();
    outcome.notes.insert(
        0,
        format!(
            "{} connections x {} B request/response, one request in flight per connection, {} ms \
             timed after {} ms untimed. Clients: one raw mio thread (the same for every \
             subject, TCP_NODELAY); latency in 1 µs buckets. Server CPU per round trip: every \
             thread of the process but the load generator's, over the timed part (steadier than \
             the rate when other work shares the machine).",
            load.peers,
            load.size,
            load.measure.as_millis(),
            load.warmup.as_millis()
        ),
    );
    outcome
}
