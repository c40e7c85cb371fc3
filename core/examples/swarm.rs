//! A five-node swarm on the simulated network: every node sends a generated "file" to every
//! other node under per-peer and global upload limits, and the receivers verify checksums.
//! Runs 20 seconds of virtual time in well under a second of real time and prints, per
//! connection, the bytes moved and the achieved rate against the configured one.
//!
//! `cargo run --release -p openp2p-core --features sim --example swarm`

use openp2p_core::sim::{Link, NodeId, SimNet};
use openp2p_core::{Bytes, Config, Event, Framing, Limits, PeerId, Rate};
use std::collections::HashMap;
use std::time::{Duration, Instant};

const NODES: usize = 5;
const FILE: usize = 600 * 1024;
const PER_PEER_UP: u64 = 64 * 1024;
const GLOBAL_UP: u64 = 160 * 1024;

const FNV_START: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a, continued from `h`: enough to show that every byte arrived, in order.
fn checksum(h: u64, data: &[u8]) -> u64 {
    data.iter()
        .fold(h, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3))
}

fn file_for(from: NodeId, to: NodeId) -> Bytes {
    let seed = (from * 31 + to) as u8;
    Bytes::from(
        (0..FILE)
            .map(|i| (i as u8).wrapping_mul(seed) ^ seed)
            .collect::<Vec<u8>>(),
    )
}

#[derive(Default)]
struct Transfer {
    bytes: u64,
    first: Option<Duration>,
    last: Option<Duration>,
    checksum: u64,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut net = SimNet::new(2026, Instant::now(), Link::default());
    let config = Config {
        framing: Framing::Raw,
        peer_limits: Limits::upload(Rate::per_second(PER_PEER_UP)),
        global_limits: Limits::upload(Rate::per_second(GLOBAL_UP)),
        ..Config::default()
    };
    let nodes: Vec<NodeId> = (0..NODES)
        .map(|_| net.add_node(config.clone()))
        .collect::<Result<_, _>>()?;
    let mut addrs = Vec::new();
    for &n in &nodes {
        addrs.push(net.listen(n).ok_or("listen failed")?);
    }
    // Each node connects to every node after it; files flow both ways on each connection.
    let t0 = net.now();
    let mut remote_of: HashMap<(NodeId, PeerId), NodeId> = HashMap::new();
    for &a in &nodes {
        for &b in &nodes[a + 1..] {
            let peer = net.engine(a).connect(addrs[b], t0)?;
            remote_of.insert((a, peer), b);
        }
    }
    let mut by_addr: HashMap<std::net::IpAddr, NodeId> = HashMap::new();
    for &n in &nodes {
        by_addr.insert(net.ip(n), n);
    }
    let mut transfers: HashMap<(NodeId, NodeId), Transfer> = HashMap::new();
    net.run_for(
        Duration::from_secs(20),
        |node, engine, event, at| match event {
            Event::Connected { peer, addr, .. } => {
                let remote = *remote_of
                    .entry((node, peer))
                    .or_insert_with(|| by_addr[&addr.ip()]);
                let _ = engine.send(peer, file_for(node, remote), at);
            }
            Event::Received { peer, data } => {
                let from = remote_of[&(node, peer)];
                let t = transfers.entry((from, node)).or_default();
                t.first.get_or_insert(at - t0);
                t.last = Some(at - t0);
                t.bytes += data.len() as u64;
                t.checksum = checksum(
                    if t.bytes == data.len() as u64 {
                        FNV_START
                    } else {
                        t.checksum
                    },
                    &data,
                );
            }
            _ => {}
        },
    );
    println!(
        "openp2p swarm: {NODES} nodes, each sends a {} KiB file to every other node",
        FILE / 1024
    );
    println!(
        "limits: {} KiB/s per peer upload, {} KiB/s global upload per node\n",
        PER_PEER_UP / 1024,
        GLOBAL_UP / 1024
    );
    println!(
        "{:>4} {:>4} {:>10} {:>12} {:>12} {:>9} {:>9}",
        "from", "to", "bytes", "achieved/s", "fair share", "time", "checksum"
    );
    // Each node uploads to 4 peers at once: the global limit gives each a fair quarter.
    let fair = (GLOBAL_UP / (NODES as u64 - 1)).min(PER_PEER_UP);
    let mut ok = true;
    let mut keys: Vec<_> = transfers.keys().copied().collect();
    keys.sort();
    for (from, to) in keys {
        let t = &transfers[&(from, to)];
        let span = t
            .last
            .zip(t.first)
            .map_or(0.0, |(l, f)| (l - f).as_secs_f64());
        let rate = if span > 0.0 {
            t.bytes as f64 / span
        } else {
            0.0
        };
        let good = t.checksum == checksum(FNV_START, &file_for(from, to)) && t.bytes == FILE as u64;
        ok &= good;
        println!(
            "{from:>4} {to:>4} {:>10} {:>10.1}Ki {:>10.1}Ki {:>8.2}s {:>9}",
            t.bytes,
            rate / 1024.0,
            fair as f64 / 1024.0,
            span,
            if good { "ok" } else { "MISMATCH" }
        );
    }
    if !ok || transfers.len() != NODES * (NODES - 1) {
        return Err("some transfers did not complete intact".into());
    }
    println!("\nall {} transfers verified", transfers.len());
    Ok(())
}
