//! LAN discovery between nodes of one process. The beacons go to the loopback broadcast address
//! `127.255.255.255` (every host has it, unlike a broadcast-capable LAN interface), on a UDP port
//! the OS reported free. Every scenario runs on both Tokio runtime flavours.

#[macro_use]
mod common;

use common::*;
use openp2p_tokio::discovery::{DiscoveryConfig, DiscoveryOptions, NodeKey};
use openp2p_tokio::{Config, Event};
use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

fn free_udp_port() -> u16 {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind udp");
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

/// Three nodes find each other by name and address; with `auto_connect` each pair ends up with
/// exactly one connection; a node that stops is reported lost.
async fn nodes_discover_each_other_and_connect_once() {
    let udp = free_udp_port();
    let mut nodes = Vec::new();
    for (key, name) in [(1u8, "alice"), (2, "bob"), (3, "carol")] {
        let (node, addr) = listening(Config::default()).await;
        node.enable_discovery(options(key, name, addr.port(), udp, true))
            .expect("bind beacons");
        nodes.push((node, addr, name));
    }
    for (node, _, me) in &nodes {
        let mut seen = HashSet::new();
        let mut connections = 0;
        wait_for(node, |e| {
            match e {
                Event::Discovered { name, addr, .. } => {
                    let expected = nodes
                        .iter()
                        .find(|(_, _, n)| *n == name)
                        .map(|(_, a, _)| a.port());
                    assert_eq!(Some(addr.port()), expected, "{name} announced its listener");
                    seen.insert(name);
                }
                Event::Connected { .. } => connections += 1,
                _ => {}
            }
            (seen.len() == 2 && connections == 2).then_some(())
        })
        .await;
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
    let lost = wait_for(alice, |e| match e {
        Event::Lost { node, .. } => Some(node),
        _ => None,
    })
    .await;
    assert_eq!(lost, NodeKey([3; 16]));
    for (node, _, _) in nodes {
        node.shutdown().await;
    }
}

/// With `auto_connect`, a connection that ends while both nodes keep announcing is dialled
/// again, and only once.
async fn a_dropped_connection_is_dialled_again() {
    let udp = free_udp_port();
    let (low, low_addr) = listening(Config::default()).await;
    let (high, high_addr) = listening(Config::default()).await;
    low.enable_discovery(options(1, "low", low_addr.port(), udp, true))
        .expect("bind beacons");
    high.enable_discovery(options(2, "high", high_addr.port(), udp, true))
        .expect("bind beacons");
    let first = wait_for(&high, |e| match e {
        Event::Connected { peer, .. } => Some(peer),
        _ => None,
    })
    .await;
    // The dialled side drops the connection: the dialler hears its beacons and dials again.
    high.abort(first).await.expect("running");
    let second = wait_for(&high, |e| match e {
        Event::Connected { peer, .. } => Some(peer),
        _ => None,
    })
    .await;
    assert_ne!(first, second);
    // Several announce intervals later there is still exactly one connection.
    tokio::time::sleep(Duration::from_millis(500)).await; // the window observed, not a wait
    let stats = high.global_stats().await.expect("running");
    assert_eq!(stats.peers, 1, "one connection after the re-dial");
    let stats = low.global_stats().await.expect("running");
    assert_eq!(stats.outbound_connections, 2, "dialled twice in all");
    low.shutdown().await;
    high.shutdown().await;
}

on_both_flavours!(
    nodes_discover_each_other_and_connect_once,
    a_dropped_connection_is_dialled_again
);
