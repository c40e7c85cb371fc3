//! Workload 7, secure: the price of Noise secure channels, openp2p-tokio against itself in
//! plaintext and secure mode (AES-256-GCM), runs interleaved. Bulk (one connection), echo (100
//! connections x 64 B round trips) and churn (connect, handshake, one 64 B echo, close). Both
//! ends are openp2p nodes in this process (a secure peer needs a Noise client), so CPU figures
//! cover both ends; the same in both modes.
//!
//! With the `libp2p-anchor` feature, each run also moves the same bulk transfer over rust-libp2p
//! (TCP + Noise + Yamux, [`crate::subjects::rust_libp2p`]): an anchor from an established stack
//! that secure openp2p-tokio's bulk throughput is held against (target: at least twice it).

use crate::cpu;
use crate::cpu::Span;
use crate::model::{median, Opts, Outcome, Row};
use crate::subject::{BenchResult, BulkSize};
use crate::subjects::openp2p_tokio::bulk_with;
use openp2p_tokio::{Bytes, Config, Event, Identity, Node, PeerId, SecureConfig};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const ECHO_PEERS: usize = 100;
const CHURN_CLIENTS: usize = 32;
const MESSAGE: usize = 64;
/// Width of the subject column of the progress lines.
const SUBJECT_WIDTH: usize = 27;

fn config(secure: bool, n: u8) -> Config {
    Config {
        sent_events: false,
        max_peers_per_ip: 100_000,
        secure: secure.then(|| SecureConfig::new(Identity::from_entropy([n; 32]))),
        ..Config::default()
    }
}

fn mode(secure: bool) -> &'static str {
    if secure {
        "openp2p-tokio secure"
    } else {
        "openp2p-tokio"
    }
}

/// GB/s and CPU seconds per GiB of a bulk run's timed part.
fn bulk_figures(size: BulkSize, span: Span) -> (f64, f64) {
    let gbps = size.timed as f64 / span.secs / 1e9;
    let per_gib = span.cpu_ns as f64 / 1e9 / (size.timed as f64 / (1u64 << 30) as f64);
    (gbps, per_gib)
}

/// Samples of every metric, per mode (the anchor fills only the bulk ones).
#[derive(Default)]
struct Samples {
    bulk_gbps: Vec<f64>,
    bulk_cpu_per_gib: Vec<f64>,
    echo_rts: Vec<f64>,
    churn_cps: Vec<f64>,
    churn_cpu_us: Vec<f64>,
}

/// A table metric: its name, unit, samples, and the least secure/plaintext ratio (if targeted).
type Metric = (
    &'static str,
    &'static str,
    fn(&Samples) -> &Vec<f64>,
    Option<f64>,
);

/// Runs both modes `opts.runs` times, interleaved.
pub fn run(opts: &Opts) -> Outcome {
    let size = if opts.quick {
        BulkSize {
            warmup: 4 << 20,
            timed: 16 << 20,
        }
    } else {
        BulkSize {
            warmup: 64 << 20,
            timed: 1 << 30,
        }
    };
    let window = Duration::from_millis(if opts.quick { 200 } else { 1_500 });
    let mut samples = [Samples::default(), Samples::default()];
    let mut notes = Vec::new();
    #[cfg(feature = "libp2p-anchor")]
    let mut anchor = Samples::default();
    for run in 1..=opts.runs.max(1) {
        for secure in [false, true] {
            let s = &mut samples[usize::from(secure)];
            match bulk_with(size, config(secure, 1)) {
                Ok(span) => {
                    let (gbps, per_gib) = bulk_figures(size, span);
                    eprintln!(
                        "  secure run {run}: {:<SUBJECT_WIDTH$} bulk {gbps:6.2} GB/s  {per_gib:5.2} CPU s/GiB",
                        mode(secure)
                    );
                    s.bulk_gbps.push(gbps);
                    s.bulk_cpu_per_gib.push(per_gib);
                }
                Err(e) => notes.push(format!("bulk run {run} {} failed: {e}", mode(secure))),
            }
            match echo(secure, window) {
                Ok(rts) => {
                    eprintln!(
                        "  secure run {run}: {:<SUBJECT_WIDTH$} echo {rts:9.0} round trips/s",
                        mode(secure)
                    );
                    s.echo_rts.push(rts);
                }
                Err(e) => notes.push(format!("echo run {run} {} failed: {e}", mode(secure))),
            }
            match churn(secure, window) {
                Ok((cps, cpu_us)) => {
                    eprintln!("  secure run {run}: {:<SUBJECT_WIDTH$} churn {cps:7.0} connections/s  {cpu_us:6.1} µs CPU each", mode(secure));
                    s.churn_cps.push(cps);
                    s.churn_cpu_us.push(cpu_us);
                }
                Err(e) => notes.push(format!("churn run {run} {} failed: {e}", mode(secure))),
            }
        }
        #[cfg(feature = "libp2p-anchor")]
        match crate::subjects::rust_libp2p::bulk(size) {
            Ok(span) => {
                let (gbps, per_gib) = bulk_figures(size, span);
                eprintln!(
                    "  secure run {run}: {:<SUBJECT_WIDTH$} bulk {gbps:6.2} GB/s  {per_gib:5.2} CPU s/GiB",
                    crate::subjects::rust_libp2p::SUBJECT
                );
                anchor.bulk_gbps.push(gbps);
                anchor.bulk_cpu_per_gib.push(per_gib);
            }
            Err(e) => notes.push(format!(
                "bulk run {run} {} failed: {e}",
                crate::subjects::rust_libp2p::SUBJECT
            )),
        }
    }
    let mut rows = Vec::new();
    let [plain, secure] = &samples;
    let metrics: [Metric; 5] = [
        ("bulk throughput", "GB/s", |s| &s.bulk_gbps, Some(0.75)),
        (
            "bulk CPU per GiB (both ends)",
            "s",
            |s| &s.bulk_cpu_per_gib,
            None,
        ),
        (
            "echo round trips (100 x 64 B)",
            "/s",
            |s| &s.echo_rts,
            Some(0.9),
        ),
        (
            "churn connections (connect, handshake, echo, close)",
            "/s",
            |s| &s.churn_cps,
            None,
        ),
        (
            "churn CPU per connection (both ends)",
            "µs",
            |s| &s.churn_cpu_us,
            None,
        ),
    ];
    for (metric, unit, pick, target) in metrics {
        let base = median(pick(plain));
        for (secure, s) in [(false, plain), (true, secure)] {
            let values = pick(s).clone();
            if values.is_empty() {
                continue;
            }
            let m = median(&values);
            let ratio = (secure && base > 0.0).then(|| m / base);
            let target_text = target
                .filter(|_| secure)
                .map(|t| format!(">= {t}x plaintext"));
            let met = match (ratio, target.filter(|_| secure)) {
                (Some(r), Some(t)) => Some(r >= t),
                _ => None,
            };
            rows.push(Row {
                workload: "secure".into(),
                subject: mode(secure).into(),
                metric: metric.into(),
                unit: unit.into(),
                median: m,
                samples: values,
                ratio,
                target: target_text,
                met,
            });
        }
    }
    let churn_secure = median(&secure.churn_cps);
    rows.push(Row {
        workload: "secure".into(),
        subject: mode(true).into(),
        metric: "secure handshakes per second".into(),
        unit: "/s".into(),
        median: churn_secure,
        samples: secure.churn_cps.clone(),
        ratio: None,
        target: Some(">= 3,000/s".into()),
        met: Some(churn_secure >= 3_000.0),
    });
    #[cfg(feature = "libp2p-anchor")]
    {
        rows.extend(anchor_rows(&anchor, secure));
        notes.push(format!(
            "Anchor: {} {}, one libp2p-stream substream on a connection between two swarms in \
             this process, libp2p's defaults (Noise_XX_25519_ChaChaPoly_SHA256, libp2p-noise's \
             only suite; Yamux's default windows), the same sizes, runtime and CPU accounting. \
             Its ratio: openp2p-tokio secure over rust-libp2p bulk medians.",
            crate::subjects::rust_libp2p::SUBJECT,
            crate::subjects::rust_libp2p::VERSION
        ));
    }
    #[cfg(not(feature = "libp2p-anchor"))]
    notes.push(
        "No rust-libp2p anchor in this run: it is built only with the `libp2p-anchor` feature \
         (`cargo run --release -p openp2p-bench --features libp2p-anchor -- --only secure`)."
            .into(),
    );
    notes.insert(
        0,
        format!(
            "openp2p-tokio against itself, plaintext and Noise_XX_25519_AESGCM_SHA256, runs \
             interleaved, 2-worker runtime. Bulk: {} MiB timed after {} MiB. Echo: {ECHO_PEERS} \
             connections each keeping one {MESSAGE} B message in flight, {} ms. Churn: \
             {CHURN_CLIENTS} concurrent dials, each connect + handshake + one {MESSAGE} B echo + \
             abort, {} ms. CPU: every thread of the process (both ends). Ratios: secure over \
             plaintext medians.",
            size.timed >> 20,
            size.warmup >> 20,
            window.as_millis(),
            window.as_millis()
        ),
    );
    Outcome {
        rows,
        series: Vec::new(),
        notes,
    }
}

/// The anchor's bulk rows, and secure openp2p-tokio's bulk throughput against it (>= 2x).
#[cfg(feature = "libp2p-anchor")]
fn anchor_rows(anchor: &Samples, secure: &Samples) -> Vec<Row> {
    let subject = crate::subjects::rust_libp2p::SUBJECT;
    let mut rows = Vec::new();
    for (metric, unit, values) in [
        ("bulk throughput", "GB/s", &anchor.bulk_gbps),
        (
            "bulk CPU per GiB (both ends)",
            "s",
            &anchor.bulk_cpu_per_gib,
        ),
    ] {
        if values.is_empty() {
            continue;
        }
        rows.push(Row {
            workload: "secure".into(),
            subject: subject.into(),
            metric: metric.into(),
            unit: unit.into(),
            median: median(values),
            samples: values.clone(),
            ratio: None,
            target: None,
            met: None,
        });
    }
    let (ours, theirs) = (median(&secure.bulk_gbps), median(&anchor.bulk_gbps));
    if !secure.bulk_gbps.is_empty() && theirs > 0.0 {
        let ratio = ours / theirs;
        rows.push(Row {
            workload: "secure".into(),
            subject: mode(true).into(),
            metric: "bulk throughput over rust-libp2p".into(),
            unit: "GB/s".into(),
            median: ours,
            samples: secure.bulk_gbps.clone(),
            ratio: Some(ratio),
            target: Some(">= 2x rust-libp2p".into()),
            met: Some(ratio >= 2.0),
        });
    }
    rows
}

/// An echo node (a spawned task sends every `Received` back) listening on loopback.
async fn echo_server(secure: bool) -> BenchResult<(Node, SocketAddr)> {
    let server = Node::start(config(secure, 1))?;
    let addr = server.listen(crate::subjects::loopback()).await?;
    let echo = server.clone();
    tokio::spawn(async move {
        while let Some(event) = echo.next_event().await {
            if let Event::Received { peer, data } = event {
                let _ = echo.send_now(peer, data);
            }
        }
    });
    Ok((server, addr))
}

/// Round trips per second: a client node with 100 connections to an echo node, each keeping
/// one 64-byte message in flight.
fn echo(secure: bool, window: Duration) -> BenchResult<f64> {
    let rt = crate::subjects::raw_tokio::runtime()?;
    rt.block_on(async {
        let (server, addr) = echo_server(secure).await?;
        let client = Node::start(config(secure, 2))?;
        for _ in 0..ECHO_PEERS {
            client.connect(addr).await?;
        }
        let message = Bytes::from(vec![7u8; MESSAGE]);
        let mut connected = 0;
        while connected < ECHO_PEERS {
            match client.next_event().await {
                Some(Event::Connected { peer, .. }) => {
                    connected += 1;
                    client.send_now(peer, message.clone())?;
                }
                Some(Event::ConnectFailed { reason, .. }) => {
                    return Err(format!("{reason:?}").into())
                }
                Some(_) => {}
                None => return Err("echo client stopped".into()),
            }
        }
        let warmup = Instant::now() + window / 4;
        let mut start: Option<Instant> = None;
        let mut count = 0u64;
        loop {
            match client.next_event().await {
                Some(Event::Received { peer, data }) => {
                    let now = Instant::now();
                    match start {
                        None if now >= warmup => start = Some(now),
                        Some(t) if now - t >= window => break,
                        Some(_) => count += 1,
                        None => {}
                    }
                    client.send_now(peer, data)?;
                }
                Some(Event::Disconnected { reason, .. }) => return Err(reason.to_string().into()),
                Some(_) => {}
                None => return Err("echo client stopped".into()),
            }
        }
        let elapsed = start.map_or(window, |t| t.elapsed());
        client.shutdown().await;
        server.shutdown().await;
        Ok(count as f64 / elapsed.as_secs_f64())
    })
}

/// Completed connections per second and process CPU per connection: 32 dials in flight; each
/// connects (and handshakes), sends 64 bytes, waits for the echo and aborts.
fn churn(secure: bool, window: Duration) -> BenchResult<(f64, f64)> {
    let rt = crate::subjects::raw_tokio::runtime()?;
    rt.block_on(async {
        let (server, addr) = echo_server(secure).await?;
        let client = Node::start(config(secure, 2))?;
        let message = Bytes::from(vec![9u8; MESSAGE]);
        let mut live: HashSet<PeerId> = HashSet::new();
        for _ in 0..CHURN_CLIENTS {
            live.insert(client.connect(addr).await?);
        }
        let warmup_end = Instant::now() + window / 4;
        // (instant, process CPU, connections done) when the timed part began.
        let mut started: Option<(Instant, u64, u64)> = None;
        let mut done = 0u64;
        let mut failures = 0u64;
        loop {
            let Some(event) = client.next_event().await else {
                return Err("churn client stopped".into());
            };
            match event {
                Event::Connected { peer, .. } => client.send_now(peer, message.clone())?,
                Event::Received { peer, .. } => {
                    done += 1;
                    let _ = client.abort(peer).await;
                }
                // A peer of this client (not already replaced): dial a new one in its place.
                Event::Disconnected { peer, .. } | Event::ConnectFailed { peer, .. }
                    if live.remove(&peer) =>
                {
                    if matches!(event, Event::ConnectFailed { .. }) {
                        failures += 1;
                        if failures > 1_000 {
                            return Err("churn: over 1,000 failed connects".into());
                        }
                    }
                    live.insert(client.connect(addr).await?);
                }
                _ => {}
            }
            let now = Instant::now();
            match started {
                None if now >= warmup_end => started = Some((now, cpu::process_cpu_ns(), done)),
                Some((t, _, _)) if now - t >= window => break,
                _ => {}
            }
        }
        let (t, cpu_start, done_start) = started.ok_or("churn: never started")?;
        let secs = t.elapsed().as_secs_f64();
        let cpu_ns = cpu::process_cpu_ns().saturating_sub(cpu_start);
        let done = done - done_start;
        client.shutdown().await;
        server.shutdown().await;
        Ok((done as f64 / secs, cpu_ns as f64 / 1e3 / done.max(1) as f64))
    })
}
