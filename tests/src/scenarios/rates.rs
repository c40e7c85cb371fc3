//! Scenario 10: rate limits. Per-peer upload, per-peer download, a global limit shared by four
//! peers, and a limit changed mid-transfer. Rates are measured over 4 s of wall time on the
//! drivers (within 5 %), over 10 s of virtual time on the simulated network (within 1 %).

use super::{inbound_connected, outbound_connected, pair, pump_until, relative_error, KIB, MIB};
use crate::harness::{v4, Harness, TestNode};
use openp2p_core::{Bytes, Config, Event, Limits, PeerId, Rate};
use std::time::{Duration, Instant};

/// How long to measure, and the tolerance.
fn window<H: Harness>(h: &H) -> (Duration, f64) {
    if h.is_virtual() {
        (Duration::from_secs(10), 0.01)
    } else {
        (Duration::from_secs(4), 0.05)
    }
}

/// Warm-up before measuring: the first burst and socket buffers are not the steady rate.
const WARM_UP: Duration = Duration::from_millis(500);

/// Keeps `peer`'s send queue topped up with 64 KiB messages (bounded by the high-water mark).
fn top_up<N: TestNode>(node: &N, peer: PeerId, chunk: &Bytes) {
    while node.send(peer, chunk.clone()).is_ok() {}
}

fn sender_config() -> Config {
    Config {
        send_queue_high_water: 512 * KIB,
        send_queue_low_water: 256 * KIB,
        sent_events: false,
        ..Config::default()
    }
}

/// Pumps both nodes for `d`: the sender's queues are topped up whenever it reports `Writable`,
/// the receiver's data is taken (and dropped, returning its pool memory).
fn run_for<N: TestNode>(sender: &N, receiver: &N, d: Duration) {
    let chunk = Bytes::from(vec![0xab; 64 * KIB]);
    let end = receiver.now() + d;
    while receiver.now() < end {
        while let Some(e) = sender.next_event(Duration::ZERO) {
            if let Event::Writable { peer } = e {
                top_up(sender, peer, &chunk);
            }
        }
        let step = (receiver.now() + Duration::from_millis(10)).min(end);
        pump_until(receiver, step, |_, e| {
            if let Event::Disconnected { peer, reason, .. } = e {
                panic!("{peer} disconnected during the measurement: {reason:?}");
            }
        });
    }
}

/// Bytes the receiving engine has read from each of `peers`, and when.
fn sample<N: TestNode>(receiver: &N, peers: &[PeerId]) -> (Instant, Vec<u64>) {
    let bytes = peers
        .iter()
        .map(|&p| receiver.peer_stats(p).map_or(0, |s| s.received.bytes))
        .collect();
    (receiver.now(), bytes)
}

/// After a warm-up, the rate at which `receiver` read from each of `peers` over `d`: the slope
/// of a least-squares line through the engine's own byte counters, sampled every 50 ms. The
/// counters move in steps (a shared budget is granted a burst at a time), so two samples
/// alone would be off by up to one burst; the fit over ~80 samples is not.
fn measure<N: TestNode>(sender: &N, receiver: &N, peers: &[PeerId], d: Duration) -> Vec<f64> {
    run_for(sender, receiver, WARM_UP);
    let mut samples = vec![sample(receiver, peers)];
    let end = receiver.now() + d;
    while receiver.now() < end {
        let step = Duration::from_millis(50).min(end.saturating_duration_since(receiver.now()));
        run_for(sender, receiver, step);
        samples.push(sample(receiver, peers));
    }
    let t0 = samples[0].0;
    let xs: Vec<f64> = samples
        .iter()
        .map(|(t, _)| (*t - t0).as_secs_f64())
        .collect();
    (0..peers.len())
        .map(|i| {
            let ys: Vec<f64> = samples.iter().map(|(_, b)| b[i] as f64).collect();
            slope(&xs, &ys)
        })
        .collect()
}

/// The least-squares slope of `ys` over `xs`.
fn slope(xs: &[f64], ys: &[f64]) -> f64 {
    let n = xs.len() as f64;
    let (mx, my) = (xs.iter().sum::<f64>() / n, ys.iter().sum::<f64>() / n);
    let cov: f64 = xs.iter().zip(ys).map(|(x, y)| (x - mx) * (y - my)).sum();
    let var: f64 = xs.iter().map(|x| (x - mx) * (x - mx)).sum();
    cov / var
}

fn check(name: &str, what: &str, got: f64, want: f64, tolerance: f64) {
    let error = relative_error(got, want);
    println!(
        "{name}: {what}: {got:.0} B/s, want {want:.0} (error {:.2} %)",
        error * 100.0
    );
    assert!(
        error <= tolerance,
        "{name}: {what}: {got:.0} B/s vs {want:.0} (error {:.2} %)",
        error * 100.0
    );
}

/// A 256 KiB/s per-peer upload limit on the sender.
pub fn rate_upload<H: Harness>(h: &mut H) {
    let _cpu = super::exclusive();
    let rate = Rate::per_second(256 * KIB as u64);
    let sender = Config {
        peer_limits: Limits::upload(rate),
        ..sender_config()
    };
    one_peer(h, sender, Config::default(), rate, "upload");
}

/// A 256 KiB/s per-peer download limit on the receiver (it reads no faster).
pub fn rate_download<H: Harness>(h: &mut H) {
    let _cpu = super::exclusive();
    let rate = Rate::per_second(256 * KIB as u64);
    let receiver = Config {
        peer_limits: Limits::download(rate),
        ..Config::default()
    };
    one_peer(h, sender_config(), receiver, rate, "download");
}

fn one_peer<H: Harness>(h: &mut H, sender: Config, receiver: Config, rate: Rate, what: &str) {
    let name = h.name();
    let (d, tolerance) = window(h);
    let p = pair(h, receiver, sender);
    top_up(&p.client, p.at_client, &Bytes::from(vec![0xab; 64 * KIB]));
    let got = measure(&p.client, &p.server, &[p.at_server], d)[0];
    check(name, what, got, rate.bytes_per_sec() as f64, tolerance);
    // Unthrottled, the receiver reads on and sees the reset at once (a throttled reader would
    // only notice it when its graceful shutdown lingers out: see the notes).
    p.server.set_limits(p.at_server, Limits::UNLIMITED);
    p.client.abort(p.at_client);
    drop(p.client.shutdown());
    drop(p.server.shutdown());
}

/// A 512 KiB/s global upload limit on a server sending to four peers: each gets its fair share
/// (128 KiB/s) within the tolerance.
pub fn rate_global_shared<H: Harness>(h: &mut H) {
    let _cpu = super::exclusive();
    let name = h.name();
    let (d, tolerance) = window(h);
    let global = Rate::per_second(512 * KIB as u64);
    let sender = h.start(Config {
        global_limits: Limits::upload(global),
        ..sender_config()
    });
    let addr = sender.listen(v4());
    let receiver = h.start(Config::default());
    let mut peers = Vec::new();
    for _ in 0..4 {
        let r = receiver.connect(addr).expect("connect accepted");
        outbound_connected(&receiver, r);
        peers.push((r, inbound_connected(&sender)));
    }
    let chunk = Bytes::from(vec![0xab; 64 * KIB]);
    for &(_, s) in &peers {
        top_up(&sender, s, &chunk);
    }
    let ids: Vec<PeerId> = peers.iter().map(|(r, _)| *r).collect();
    let rates = measure(&sender, &receiver, &ids, d);
    let fair = global.bytes_per_sec() as f64 / 4.0;
    for (i, got) in rates.into_iter().enumerate() {
        check(name, &format!("peer {i} of 4"), got, fair, tolerance);
    }
    drop(receiver.shutdown());
    drop(sender.shutdown());
}

/// An upload limit raised from 128 KiB/s to 512 KiB/s mid-transfer: each phase runs at its
/// own rate (measured after a warm-up in each phase).
pub fn rate_limit_changed<H: Harness>(h: &mut H) {
    let _cpu = super::exclusive();
    let name = h.name();
    let (d, tolerance) = window(h);
    let phase = d / 2;
    let slow = Rate::per_second(128 * KIB as u64);
    let fast = Rate::per_second(512 * KIB as u64);
    let sender = Config {
        peer_limits: Limits::upload(slow),
        send_queue_high_water: MIB,
        ..sender_config()
    };
    let p = pair(h, Config::default(), sender);
    top_up(&p.client, p.at_client, &Bytes::from(vec![0xab; 64 * KIB]));
    let before = measure(&p.client, &p.server, &[p.at_server], phase)[0];
    p.client.set_limits(p.at_client, Limits::upload(fast));
    let after = measure(&p.client, &p.server, &[p.at_server], phase)[0];
    let (slow, fast) = (slow.bytes_per_sec() as f64, fast.bytes_per_sec() as f64);
    check(name, "before the change", before, slow, tolerance);
    check(name, "after the change", after, fast, tolerance);
    p.client.abort(p.at_client);
    drop(p.client.shutdown());
    drop(p.server.shutdown());
}
