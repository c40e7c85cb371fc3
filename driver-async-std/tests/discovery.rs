//! LAN discovery between nodes of one process. The beacons go to the loopback broadcast address
//! `127.255.255.255` (every host has it, unlike a broadcast-capable LAN interface), on a UDP port
//! the OS reported free. Every scenario runs under async-std and under smol.

mod common;

use async_std::sync::{Mutex, MutexGuard};
use common::{expect, next, within};
use openp2p_async_std::discovery::{DiscoveryConfig, DiscoveryOptions, NodeKey};
use openp2p_async_std::{Config, Event, Node};
use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// The scenarios count the process's discovery threads, so they run one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// An executor-neutral lock (it is held across awaits).
async fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().await
}

/// Threads of this process running a discovery task (Linux names threads by their first 15
/// bytes); `None` where `/proc` cannot tell.
fn discovery_threads() -> Option<usize> {
    let tasks = std::fs::read_dir("/proc/self/task").ok()?;
    Some(
        tasks
            .filter_map(Result::ok)
            .filter_map(|task| std::fs::read_to_string(task.path().join("comm")).ok())
            .filter(|name| name.trim_end() == "openp2p-discove")
            .count(),
    )
}

/// Waits until `n` discovery threads run (a new thread names itself once it has started; a
/// task ends with its node).
async fn discovery_threads_become(n: usize) {
    let deadline = Instant::now() + common::PATIENCE;
    while let Some(now) = discovery_threads() {
        if now == n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{now} discovery threads running, not {n}"
        );
        async_io::Timer::after(Duration::from_millis(10)).await;
    }
}

fn free_udp_port() -> u16 {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
    socket.local_addr().expect("bound").port()
}

fn options(
    key: u8,
    name: &str,
    tcp_port: u16,
    udp_port: u16,
    auto_connect: bool,
) -> DiscoveryOptions {
    DiscoveryOptions {
        port: udp_port,
        broadcast: IpAddr::V4(Ipv4Addr::new(127, 255, 255, 255)),
        config: DiscoveryConfig {
            interval: Duration::from_millis(100),
            jitter: Duration::from_millis(20),
            expiry: Duration::from_millis(600),
            auto_connect,
            ..DiscoveryConfig::default()
        },
        ..DiscoveryOptions::new(NodeKey([key; 16]), name, tcp_port)
    }
}

async fn listening(start: fn(Config) -> Node) -> (Node, SocketAddr) {
    let node = start(Config::default());
    let addr = within("listen", node.listen("127.0.0.1:0".parse().expect("addr")))
        .await
        .expect("listen on loopback");
    (node, addr)
}

/// Three nodes find each other by name and address; with `auto_connect` each pair ends up with
/// exactly one connection; a node that stops is reported lost.
async fn nodes_discover_each_other_and_connect_once(start: fn(Config) -> Node) {
    let _serial = serial().await;
    let udp = free_udp_port();
    let mut nodes = Vec::new();
    for (key, name) in [(1u8, "alice"), (2, "bob"), (3, "carol")] {
        let (node, addr) = listening(start).await;
        node.enable_discovery(options(key, name, addr.port(), udp, true))
            .expect("bind beacons");
        nodes.push((node, addr, name));
    }
    for (node, _, me) in &nodes {
        let mut seen = HashSet::new();
        let mut connections = 0;
        while seen.len() < 2 || connections < 2 {
            match next(node, "discovery and connections").await {
                Event::Discovered { name, addr, .. } => {
                    let expected = nodes
                        .iter()
                        .find(|(_, _, n)| *n == name)
                        .map(|(_, a, _)| *a);
                    assert_eq!(Some(addr), expected, "{name} announced its listener");
                    seen.insert(name);
                }
                Event::Connected { .. } => connections += 1,
                _ => {}
            }
        }
        assert!(!seen.contains(*me), "{me} does not discover itself");
    }
    // The smaller key dials: alice dials bob and carol, bob dials carol, nobody dials twice.
    let expected = [(2, 0), (1, 1), (0, 2)];
    for ((node, _, name), (outbound, inbound)) in nodes.iter().zip(expected) {
        let stats = node.global_stats().await.expect("running");
        assert_eq!(
            (stats.outbound_connections, stats.inbound_connections),
            (outbound, inbound),
            "{name}'s connections"
        );
    }
    let (carol, _, _) = nodes.pop().expect("three nodes");
    carol.shutdown().await;
    let (alice, _, _) = &nodes[0];
    let lost = expect(alice, "carol Lost", |e| matches!(e, Event::Lost { .. })).await;
    assert!(
        matches!(lost, Event::Lost { node, .. } if node == NodeKey([3; 16])),
        "{lost:?}"
    );
    for (node, _, _) in nodes {
        node.shutdown().await;
    }
    discovery_threads_become(0).await;
}

/// Without `auto_connect` nodes are only reported; garbage on the beacon port (another
/// protocol, truncated or oversized datagrams) is ignored and discovery carries on.
async fn without_auto_connect_nodes_are_reported_and_garbage_is_ignored(start: fn(Config) -> Node) {
    let udp = free_udp_port();
    let (alice, _) = listening(start).await;
    alice
        .enable_discovery(options(1, "alice", 1111, udp, false))
        .expect("bind beacons");
    let noise = UdpSocket::bind("127.0.0.1:0").expect("bind noise");
    let target = SocketAddr::from(([127, 0, 0, 1], udp));
    for garbage in [&b""[..], b"hello", &[0xff; 1500], &[0; 65_000]] {
        noise.send_to(garbage, target).expect("send garbage");
    }
    let (bob, _) = listening(start).await;
    bob.enable_discovery(options(2, "bob", 2222, udp, false))
        .expect("bind beacons");
    let found = expect(&alice, "bob Discovered", |e| {
        matches!(e, Event::Discovered { .. })
    })
    .await;
    match found {
        Event::Discovered { node, addr, name } => {
            assert_eq!(node, NodeKey([2; 16]));
            assert_eq!(addr, SocketAddr::from(([127, 0, 0, 1], 2222)));
            assert_eq!(name, "bob");
        }
        other => panic!("{other:?}"),
    }
    let stats = alice.global_stats().await.expect("running");
    assert_eq!(stats.outbound_connections + stats.inbound_connections, 0);
    alice.shutdown().await;
    bob.shutdown().await;
}

/// Once the node has stopped, discovery cannot be started on it.
async fn a_stopped_node_refuses_discovery(start: fn(Config) -> Node) {
    let _serial = serial().await;
    let (node, _) = listening(start).await;
    node.shutdown().await;
    while within("the event stream to end", node.next_event())
        .await
        .is_some()
    {}
    let refused = node.enable_discovery(options(1, "late", 1, free_udp_port(), false));
    assert_eq!(
        refused.map_err(|e| e.kind()),
        Err(std::io::ErrorKind::NotConnected)
    );
}

/// Dropping every handle stops the node, and its discovery with it.
async fn discovery_ends_when_the_last_handle_is_dropped(start: fn(Config) -> Node) {
    let _serial = serial().await;
    let (node, addr) = listening(start).await;
    node.enable_discovery(options(1, "brief", addr.port(), free_udp_port(), false))
        .expect("bind beacons");
    discovery_threads_become(1).await;
    drop(node);
    discovery_threads_become(0).await;
}

/// With `auto_connect`, a connection that ends while both nodes keep announcing is dialled
/// again, and only once.
async fn a_dropped_connection_is_dialled_again(start: fn(Config) -> Node) {
    let _serial = serial().await;
    let udp = free_udp_port();
    let (low, low_addr) = listening(start).await;
    let (high, high_addr) = listening(start).await;
    low.enable_discovery(options(1, "low", low_addr.port(), udp, true))
        .expect("bind beacons");
    high.enable_discovery(options(2, "high", high_addr.port(), udp, true))
        .expect("bind beacons");
    let connected = |e: &Event| matches!(e, Event::Connected { .. });
    let Event::Connected { peer: first, .. } = expect(&high, "first Connected", connected).await
    else {
        unreachable!()
    };
    // The dialled side drops the connection: the dialler hears its beacons and dials again.
    high.abort(first).await.expect("running");
    let Event::Connected { peer: second, .. } = expect(&high, "second Connected", connected).await
    else {
        unreachable!()
    };
    assert_ne!(first, second);
    // Several announce intervals later there is still exactly one connection.
    async_io::Timer::after(Duration::from_millis(500)).await; // the window observed, not a wait
    let stats = high.global_stats().await.expect("running");
    assert_eq!(stats.peers, 1, "one connection after the re-dial");
    let stats = low.global_stats().await.expect("running");
    assert_eq!(stats.outbound_connections, 2, "dialled twice in all");
    low.shutdown().await;
    high.shutdown().await;
    discovery_threads_become(0).await;
}

on_both_runtimes!(
    a_dropped_connection_is_dialled_again,
    discovery_ends_when_the_last_handle_is_dropped,
    nodes_discover_each_other_and_connect_once,
    without_auto_connect_nodes_are_reported_and_garbage_is_ignored,
    a_stopped_node_refuses_discovery,
);
