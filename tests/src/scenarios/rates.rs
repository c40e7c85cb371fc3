//! Scenario 10: rate limits. Per-peer upload, per-peer download, a global limit shared by four
//! peers, and a limit changed mid-transfer. Rates are measured over 4 s of wall time on the
//! drivers (within 5 %), over 10 s of virtual time on the simulated network (within 1 %).

use super::{
    inbound_connected, outbound_connected, pair, pump_until, relative_error, Arrivals, KIB, MIB,
};
use crate::harness::{v4, Harness, TestNode};
use openp2p_core::{Bytes, Config, Event, Limits, PeerId, Rate};
use std::collections::HashMap;
use std::time::Duration;

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

/// Measures what `receiver` gets from its peers for `WARM_UP + d`, keeping `sender`'s queues
/// full (topped up whenever it reports `Writable`). Arrivals are recorded per receiving peer.
fn measure<N: TestNode>(sender: &N, receiver: &N, d: Duration) -> HashMap<PeerId, Arrivals> {
    let chunk = Bytes::from(vec![0xab; 64 * KIB]);
    let mut arrivals: HashMap<PeerId, Arrivals> = HashMap::new();
    let end = receiver.now() + WARM_UP + d;
    while receiver.now() < end {
        while let Some(e) = sender.next_event(Duration::ZERO) {
            if let Event::Writable { peer } = e {
                top_up(sender, peer, &chunk);
            }
        }
        let step = (receiver.now() + Duration::from_millis(10)).min(end);
        pump_until(receiver, step, |at, e| {
            if let Event::Received { peer, data } = e {
                arrivals.entry(peer).or_default().record(at, data.len());
            }
        });
    }
    arrivals
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
    let rate = Rate::per_second(256 * KIB as u64);
    let sender = Config {
        peer_limits: Limits::upload(rate),
        ..sender_config()
    };
    one_peer(h, sender, Config::default(), rate, "upload");
}

/// A 256 KiB/s per-peer download limit on the receiver (it reads no faster).
pub fn rate_download<H: Harness>(h: &mut H) {
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
    let start = p.server.now();
    let arrivals = measure(&p.client, &p.server, d);
    let got = arrivals
        .get(&p.at_server)
        .map_or(0.0, |a| a.rate(start + WARM_UP, d));
    check(name, what, got, rate.bytes_per_sec() as f64, tolerance);
    p.client.abort(p.at_client);
    drop(p.client.shutdown());
    drop(p.server.shutdown());
}

/// A 512 KiB/s global upload limit on a server sending to four peers: each gets its fair share
/// (128 KiB/s) within the tolerance.
pub fn rate_global_shared<H: Harness>(h: &mut H) {
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
    let start = receiver.now();
    let arrivals = measure(&sender, &receiver, d);
    let fair = global.bytes_per_sec() as f64 / 4.0;
    for (i, (r, _)) in peers.iter().enumerate() {
        let got = arrivals.get(r).map_or(0.0, |a| a.rate(start + WARM_UP, d));
        check(name, &format!("peer {i} of 4"), got, fair, tolerance);
    }
    drop(receiver.shutdown());
    drop(sender.shutdown());
}

/// An upload limit raised from 128 KiB/s to 512 KiB/s mid-transfer: each phase runs at its
/// own rate (measured after a warm-up in each phase).
pub fn rate_limit_changed<H: Harness>(h: &mut H) {
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
    let start = p.server.now();
    let before = measure(&p.client, &p.server, phase);
    p.client.set_limits(p.at_client, Limits::upload(fast));
    let changed = p.server.now();
    let after = measure(&p.client, &p.server, phase);
    let rate = |a: &HashMap<PeerId, Arrivals>, from| {
        a.get(&p.at_server).map_or(0.0, |a| a.rate(from, phase))
    };
    check(
        name,
        "before the change",
        rate(&before, start + WARM_UP),
        131_072.0,
        tolerance,
    );
    check(
        name,
        "after the change",
        rate(&after, changed + WARM_UP),
        524_288.0,
        tolerance,
    );
    p.client.abort(p.at_client);
    drop(p.client.shutdown());
    drop(p.server.shutdown());
}
