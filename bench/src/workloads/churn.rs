//! Workload 3, churn: 50 concurrent clients each connecting, exchanging one 64-byte message
//! with an echo server of every subject, and closing, over and over; completed connections per
//! second. The clients are the same raw mio load generator for every subject
//! ([`crate::loadgen`]); they close with `SO_LINGER` 0, so no TIME_WAIT caps the rate.

use crate::collect::{Collector, Metric};
use crate::loadgen::{self, ChurnLoad};
use crate::model::{Opts, Outcome};
use crate::subject::{guarded, Subject};
use std::time::Duration;

/// The load of a full or a quick run.
pub fn load(opts: &Opts) -> ChurnLoad {
    ChurnLoad {
        clients: 50,
        size: 64,
        warmup: Duration::from_millis(if opts.quick { 50 } else { 200 }),
        measure: Duration::from_millis(if opts.quick { 200 } else { 1_500 }),
    }
}

/// Runs every subject `opts.runs` times, interleaved.
pub fn run(opts: &Opts) -> Outcome {
    let load = load(opts);
    let mut c = Collector::new(
        "churn",
        vec![
            Metric::targeted("connections", "/s", 0.9),
            Metric::plain("failed connections", "/s"),
            Metric::plain("server CPU per connection", "µs"),
        ],
    );
    for run in 1..=opts.runs.max(1) {
        for subject in Subject::selected() {
            let result = guarded(Duration::from_secs(60), move || {
                let server = crate::subjects::echo_server(subject)?;
                let result = loadgen::churn(server.addr(), load);
                server.stop();
                result
            });
            match result {
                Ok(r) => {
                    let failed = r.failures as f64 / load.measure.as_secs_f64();
                    eprintln!(
                        "  churn run {run}: {:<18} {:8.0} connections/s ({} failed)  {:5.1} µs server CPU",
                        subject.name(),
                        r.conns_per_sec,
                        r.failures,
                        r.server_cpu_us_per_conn
                    );
                    c.push(
                        subject,
                        &[r.conns_per_sec, failed, r.server_cpu_us_per_conn],
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
            "{} concurrent clients: connect, send {} B, read them back, close; {} ms timed after \
             {} ms untimed. Clients: one raw mio thread (the same for every subject) closing \
             with SO_LINGER 0 (a reset instead of FIN/TIME_WAIT, so loopback's port and \
             TIME_WAIT limits do not cap the rate); the server under test sees the reset as the \
             end of the connection. openp2p servers run with max_peers_per_ip raised (every \
             client is 127.0.0.1). Server CPU per connection: every thread of the process but the \
             load generator's, over the timed part.",
            load.clients,
            load.size,
            load.measure.as_millis(),
            load.warmup.as_millis()
        ),
    );
    outcome
}
