//! One peer of the multi-host test, run inside a network namespace by `tests/multi_host.rs`.
//!
//! `netns_peer <listen addr> <idle timeout ms> <upload bytes/s> [connect addr ...]`
//!
//! Listens on the address, connects to the others, and sends to every connected peer at the
//! upload rate for as long as it runs. Reports on stdout, one line each:
//! `LISTENING <addr>`, `CONNECTED <ip>`, `BYTES <ip> <total received>` (every 100 ms per
//! active peer), `DISCONNECTED <ip> <reason>`. Exits when stdin closes.

use openp2p_mio::{Bytes, Config, Event, Limits, Node, PeerId, Rate, SendWaitError};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

fn arg<T: std::str::FromStr>(args: &[String], i: usize, what: &str) -> T {
    args.get(i)
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("argument {i}: expected {what}"))
}

struct Peer {
    ip: IpAddr,
    received: u64,
    reported: u64,
    blocked: bool,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let listen: SocketAddr = arg(&args, 0, "a listen address");
    let idle: u64 = arg(&args, 1, "an idle timeout in ms");
    let rate: u64 = arg(&args, 2, "an upload rate");
    let targets: Vec<SocketAddr> = (3..args.len())
        .map(|i| arg(&args, i, "an address"))
        .collect();

    // Exit when the test closes our stdin (or dies).
    std::thread::spawn(|| {
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        std::process::exit(0);
    });

    let config = Config {
        idle_timeout: Some(Duration::from_millis(idle)),
        peer_limits: Limits::upload(Rate::per_second(rate)),
        send_queue_high_water: 256 * 1024,
        send_queue_low_water: 64 * 1024,
        sent_events: false,
        ..Config::default()
    };
    let (node, mut events) = Node::start(config).expect("start a node");
    let bound = node.listen(listen).expect("listen");
    println!("LISTENING {bound}");
    for t in targets {
        node.connect(t).expect("connect");
    }
    let chunk = Bytes::from(vec![0x6e; 32 * 1024]);
    let mut peers: HashMap<PeerId, Peer> = HashMap::new();
    let top_up = |node: &Node, id: PeerId, peer: &mut Peer| loop {
        match node.send_wait(id, chunk.clone()) {
            Ok(()) => {}
            Err(SendWaitError::Rejected(_)) => {
                peer.blocked = true;
                return;
            }
            Err(_) => std::process::exit(1),
        }
    };
    let mut last_report = Instant::now();
    loop {
        if let Ok(event) = events.recv_timeout(Duration::from_millis(20)) {
            match event {
                Event::Connected { peer, addr, .. } => {
                    println!("CONNECTED {}", addr.ip());
                    let mut p = Peer {
                        ip: addr.ip(),
                        received: 0,
                        reported: 0,
                        blocked: false,
                    };
                    top_up(&node, peer, &mut p);
                    peers.insert(peer, p);
                }
                Event::Received { peer, data } => {
                    if let Some(p) = peers.get_mut(&peer) {
                        p.received += data.len() as u64;
                    }
                }
                Event::Writable { peer } => {
                    if let Some(p) = peers.get_mut(&peer) {
                        p.blocked = false;
                        top_up(&node, peer, p);
                    }
                }
                Event::Disconnected { peer, reason, .. } => {
                    if let Some(p) = peers.remove(&peer) {
                        println!("DISCONNECTED {} {reason:?}", p.ip);
                    }
                }
                Event::ConnectFailed { addr, reason, .. } => {
                    println!("CONNECTFAILED {} {reason:?}", addr.ip());
                }
                _ => {}
            }
        }
        if last_report.elapsed() >= Duration::from_millis(100) {
            last_report = Instant::now();
            for p in peers.values_mut() {
                if p.received != p.reported {
                    p.reported = p.received;
                    println!("BYTES {} {}", p.ip, p.received);
                }
            }
        }
    }
}
