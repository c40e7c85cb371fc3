//! Workload 6: rate-limit accuracy, measured where it matters, at the receiver.
//!
//! Per driver, one sender node opens four connections to one receiver node and gives each its
//! own per-peer upload limit (16 KiB/s, 1 MiB/s, 64 MiB/s, 256 MiB/s); all four run at once for
//! 10 s (1 s with `--quick`). The limits are per peer and independent, and the node is far from
//! saturated (337 MiB/s in total against several GB/s of loopback bulk throughput), so running
//! them side by side measures each as if alone while keeping the run within its time budget.
//! The sender keeps every peer's queue well filled (it tops it up from the `Sent` events), so the
//! limit alone sets the pace. The receiver's application thread stamps each `Received` event with
//! `Instant::now()` into 100 ms bins ([`rate_stats`](super::rate_stats) defines the figures).
//!
//! Then global fairness: four peers share one global upload limit of 4 MiB/s (no per-peer
//! limits) for the same duration: each peer's rate, Jain's index and the total against the limit.
//! Drivers run one after another, never in parallel.

use super::rate_stats::{jain_index, Arrivals};
use super::stall_probe::StallProbe;
use super::sync_node::{tokio_runtime, Driver, SyncNode};
use crate::model::{Opts, Outcome, Row, Series};
use bytes::Bytes;
use openp2p_core::{Config, Event, Framing, Limits, PeerId, Rate};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The per-peer targets, bytes per second.
pub const TARGETS: [u64; 4] = [16 << 10, 1 << 20, 64 << 20, 256 << 20];

/// The global limit shared by the fairness run's four peers.
pub const GLOBAL_LIMIT: u64 = 4 << 20;

/// Peers in the fairness run.
pub const FAIR_PEERS: usize = 4;

const CHUNK: usize = 64 * 1024;
const EVENT_WAIT: Duration = Duration::from_millis(2);
const SETUP_TIMEOUT: Duration = Duration::from_secs(10);

/// Human name of a rate: `16 KiB/s`, `1 MiB/s`.
pub fn rate_name(bps: u64) -> String {
    if bps >= 1 << 20 && bps % (1 << 20) == 0 {
        format!("{} MiB/s", bps >> 20)
    } else if bps % 1024 == 0 {
        format!("{} KiB/s", bps >> 10)
    } else {
        format!("{bps} B/s")
    }
}

/// Runs the rate workload for every driver, one after another.
pub fn run(opts: &Opts) -> Outcome {
    run_for(opts, &Driver::ALL)
}

/// Runs the rate workload for `drivers`, one after another.
pub fn run_for(opts: &Opts, drivers: &[Driver]) -> Outcome {
    let duration = if opts.quick {
        Duration::from_secs(1)
    } else {
        Duration::from_secs(10)
    };
    let mut outcome = Outcome::default();
    outcome.notes.push(format!(
        "rate: per driver, the four per-peer targets run at once on four connections of one \
         sender node to one receiver node for {} s (independent per-peer buckets; the node is \
         not saturated), measured at the receiver (Instant of each Received event, 100 ms bins). \
         Error = average over the whole run vs target; worst 1 s window = the sliding 1 s window \
         (100 ms steps) furthest from the target; largest burst = most bytes received ahead of \
         target x elapsed at any 100 ms bin end since the start (the bucket starts full: the \
         default burst is 50 ms of the rate). Limits are `Rate::per_second(target)` (default \
         burst). Fairness: {FAIR_PEERS} peers share a global upload limit of {} with no per-peer \
         limits. One run each.",
        duration.as_secs(),
        rate_name(GLOBAL_LIMIT)
    ));
    // Room for the setup around the measured seconds.
    let horizon = duration + Duration::from_secs(5);
    for &driver in drivers {
        let label = format!("{driver} per-peer targets");
        match measured(&mut outcome, &label, horizon, || {
            per_peer_targets(driver, duration)
        }) {
            Ok(runs) => {
                for (target, arrivals) in TARGETS.iter().zip(&runs) {
                    report_target(&mut outcome, driver, *target, arrivals, duration);
                }
            }
            Err(e) => outcome.notes.push(format!("rate: {label} failed: {e}")),
        }
        let label = format!("{driver} fairness");
        match measured(&mut outcome, &label, horizon, || fairness(driver, duration)) {
            Ok(runs) => report_fairness(&mut outcome, driver, &runs),
            Err(e) => outcome.notes.push(format!("rate: {label} failed: {e}")),
        }
    }
    outcome
}

/// Runs `measure` with a [`StallProbe`]; a run the machine disturbed is noted and run once
/// more, and the second run is reported whatever its disturbance (also noted).
fn measured(
    outcome: &mut Outcome,
    label: &str,
    horizon: Duration,
    mut measure: impl FnMut() -> Result<Vec<Arrivals>, String>,
) -> Result<Vec<Arrivals>, String> {
    let mut first = None;
    loop {
        let probe = StallProbe::start(horizon);
        let runs = measure();
        let seen = probe.finish();
        let text = format!(
            "longest stall {} ms, {} ms lost in the worst second",
            seen.longest.as_millis(),
            seen.worst_second.as_millis()
        );
        match (first.take(), seen.disturbed()) {
            (None, false) => return runs,
            (None, true) => {
                outcome.notes.push(format!(
                    "rate: {label}: the first run was disturbed by the shared machine (a 5 ms \
                     sleeper thread: {text}); it ran again"
                ));
                first = Some(());
            }
            (Some(()), disturbed) => {
                outcome.notes.push(format!(
                    "rate: {label}: the second run (reported): {text}{}",
                    if disturbed {
                        "; disturbed too: its windows reflect the machine as much as the limiter"
                    } else {
                        ""
                    }
                ));
                return runs;
            }
        }
    }
}

fn row(subject: &str, metric: String, unit: &str, value: f64, target: Option<(&str, bool)>) -> Row {
    Row {
        workload: "rate".into(),
        subject: subject.into(),
        metric,
        unit: unit.into(),
        median: value,
        samples: vec![value],
        ratio: None,
        target: target.map(|(t, _)| t.to_string()),
        met: target.map(|(_, m)| m),
    }
}

fn report_target(
    outcome: &mut Outcome,
    driver: Driver,
    target: u64,
    arrivals: &Arrivals,
    duration: Duration,
) {
    let name = rate_name(target);
    let t = target as f64;
    let error = arrivals.average_error(t) * 100.0;
    let window = arrivals.worst_window_error(t) * 100.0;
    let burst = arrivals.largest_burst(t);
    let subject = driver.subject();
    outcome.rows.push(row(
        subject,
        format!("{name}: error over {} s", duration.as_secs()),
        "%",
        error,
        Some(("+-1 %", error.abs() <= 1.0)),
    ));
    outcome.rows.push(row(
        subject,
        format!("{name}: worst 1 s window"),
        "%",
        window,
        Some(("+-5 %", window.abs() <= 5.0)),
    ));
    outcome.rows.push(row(
        subject,
        format!("{name}: largest burst"),
        "ms of target",
        burst / t * 1000.0,
        None,
    ));
    outcome.series.push(Series {
        title: format!("{subject}, {name}"),
        target_bps: t,
        points: arrivals.trailing_rates(),
    });
}

fn report_fairness(outcome: &mut Outcome, driver: Driver, runs: &[Arrivals]) {
    let rates: Vec<f64> = runs.iter().map(Arrivals::average_rate).collect();
    let jain = jain_index(&rates);
    let total: f64 = rates.iter().sum();
    let total_error = (total / GLOBAL_LIMIT as f64 - 1.0) * 100.0;
    let subject = driver.subject();
    let limit = rate_name(GLOBAL_LIMIT);
    outcome.rows.push(row(
        subject,
        format!("fairness: Jain's index, {FAIR_PEERS} peers sharing {limit}"),
        "",
        jain,
        Some((">= 0.99", jain >= 0.99)),
    ));
    outcome.rows.push(row(
        subject,
        format!("fairness: total vs the global {limit}"),
        "%",
        total_error,
        Some(("+-1 %", total_error.abs() <= 1.0)),
    ));
    let shares: Vec<String> = rates
        .iter()
        .map(|r| format!("{:.1} KiB/s", r / 1024.0))
        .collect();
    outcome.notes.push(format!(
        "rate: {subject} fairness: per-peer rates {}; Jain's index {jain:.4}; total {:.1} KiB/s \
         against {limit} ({total_error:+.2} %)",
        shares.join(", "),
        total / 1024.0
    ));
    if let Some(first) = runs.first() {
        let mut sum = Arrivals::new(first.duration());
        for run in runs {
            for (i, bytes) in run.bins().iter().enumerate() {
                sum.record(super::rate_stats::BIN * i as u32, *bytes);
            }
        }
        outcome.series.push(Series {
            title: format!("{subject}, {FAIR_PEERS} peers sharing global {limit} (total)"),
            target_bps: GLOBAL_LIMIT as f64,
            points: sum.trailing_rates(),
        });
    }
}

/// Four peers, one per-peer target each, at once.
fn per_peer_targets(driver: Driver, duration: Duration) -> Result<Vec<Arrivals>, String> {
    let limits: Vec<Option<u64>> = TARGETS.iter().map(|t| Some(*t)).collect();
    transfer(driver, Limits::UNLIMITED, &limits, duration)
}

/// Four unlimited peers under one global limit.
fn fairness(driver: Driver, duration: Duration) -> Result<Vec<Arrivals>, String> {
    let global = Limits::upload(Rate::per_second(GLOBAL_LIMIT));
    transfer(driver, global, &[None; FAIR_PEERS], duration)
}

fn sender_config(global: Limits) -> Config {
    Config {
        framing: Framing::Raw,
        global_limits: global,
        sent_events: true,
        ..Config::default()
    }
}

/// Connects one sender peer per entry of `limits` (its per-peer upload limit, if any) under the
/// sender's `global` limits, keeps them all busy for `duration` and returns what the receiver
/// saw per peer.
pub fn transfer(
    driver: Driver,
    global: Limits,
    limits: &[Option<u64>],
    duration: Duration,
) -> Result<Vec<Arrivals>, String> {
    let runtime = tokio_runtime(2)?;
    let mut receiver = SyncNode::start(driver, Config::default(), &runtime)?;
    let addr = receiver.listen("127.0.0.1:0".parse().map_err(|_| "addr")?)?;
    let mut sender = SyncNode::start(driver, sender_config(global), &runtime)?;

    // Connect one at a time, so the receiver's n-th inbound peer is the sender's n-th.
    let mut peers = Vec::new();
    let mut inbound: HashMap<PeerId, usize> = HashMap::new();
    for (i, limit) in limits.iter().enumerate() {
        let peer = sender.connect(addr)?;
        wait_for(
            &mut sender,
            "sender Connected",
            |e| matches!(e, Event::Connected { peer: p, .. } if *p == peer),
        )?;
        let mut remote = None;
        wait_for(&mut receiver, "receiver Connected", |e| match e {
            Event::Connected { peer, .. } => {
                remote = Some(*peer);
                true
            }
            _ => false,
        })?;
        if let Some(remote) = remote {
            inbound.insert(remote, i);
        }
        if let Some(rate) = limit {
            sender.set_limits(peer, Limits::upload(Rate::per_second(*rate)))?;
        }
        peers.push(peer);
    }

    let start = Instant::now();
    let n = limits.len();
    let receiving = std::thread::spawn(move || receive(receiver, inbound, n, start, duration));
    let payload = Bytes::from(vec![0x5a; CHUNK]);
    let result = keep_busy(&mut sender, &peers, limits, &payload, start + duration);
    // The receiver stays up until the sender has dropped its peers (what is still queued is
    // discarded), so neither side sees the other close during the run.
    for peer in &peers {
        sender.abort(*peer);
    }
    let (receiver, arrivals) = receiving.join().map_err(|_| "receiver thread panicked")?;
    sender.shutdown();
    receiver.shutdown();
    result.map(|()| arrivals)
}

/// Tops every peer's queue up to its bound until `end`, counting `Sent` bytes.
fn keep_busy(
    sender: &mut SyncNode,
    peers: &[PeerId],
    limits: &[Option<u64>],
    payload: &Bytes,
    end: Instant,
) -> Result<(), String> {
    // A quarter second of data at the peer's rate (at least two chunks, at most 3 MiB: under the
    // 4 MiB send queue high-water mark, so a send is never refused).
    let bounds: Vec<u64> = limits
        .iter()
        .map(|l| {
            let quarter = l.unwrap_or(GLOBAL_LIMIT) / 4;
            quarter.clamp(2 * CHUNK as u64, 3 << 20)
        })
        .collect();
    let index: HashMap<PeerId, usize> = peers.iter().enumerate().map(|(i, p)| (*p, i)).collect();
    let mut outstanding = vec![0u64; peers.len()];
    while Instant::now() < end {
        for (i, peer) in peers.iter().enumerate() {
            while outstanding[i] + CHUNK as u64 <= bounds[i] {
                sender.send(*peer, payload.clone())?;
                outstanding[i] += CHUNK as u64;
            }
        }
        let mut next = sender.next_event(EVENT_WAIT);
        while let Some(event) = next {
            match event {
                Event::Sent { peer, bytes } => {
                    if let Some(i) = index.get(&peer) {
                        outstanding[*i] = outstanding[*i].saturating_sub(bytes as u64);
                    }
                }
                Event::Disconnected { reason, .. } => {
                    return Err(format!("a sender peer disconnected: {reason:?}"))
                }
                Event::SendRefused { error, .. } => return Err(format!("send refused: {error}")),
                _ => {}
            }
            next = sender.next_event(Duration::ZERO);
        }
    }
    Ok(())
}

/// The receiver's application loop: stamps each arrival until the run is over.
fn receive(
    mut receiver: SyncNode,
    inbound: HashMap<PeerId, usize>,
    n: usize,
    start: Instant,
    duration: Duration,
) -> (SyncNode, Vec<Arrivals>) {
    let mut arrivals = vec![Arrivals::new(duration); n];
    let end = start + duration;
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        if let Some(Event::Received { peer, data }) = receiver.next_event(end - now) {
            let at = Instant::now().saturating_duration_since(start);
            if let Some(i) = inbound.get(&peer) {
                arrivals[*i].record(at, data.len() as u64);
            }
        }
    }
    (receiver, arrivals)
}

fn wait_for(
    node: &mut SyncNode,
    what: &str,
    mut done: impl FnMut(&Event) -> bool,
) -> Result<(), String> {
    let deadline = Instant::now() + SETUP_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("timed out waiting for {what}"));
        }
        match node.next_event(left) {
            Some(event) if done(&event) => return Ok(()),
            Some(Event::ConnectFailed { reason, .. }) => {
                return Err(format!("connect failed: {reason:?}"))
            }
            _ => {}
        }
    }
}
