//! LAN discovery between two nodes on one host. Loopback has no broadcast, so each node sends
//! its beacons to the other's UDP port on 127.0.0.1 (`target_port`); the broadcast path is the
//! same code with another target address.

mod common;

use common::{expect, PATIENCE};
use openp2p_mio::discovery::{DiscoveryConfig, DiscoveryOptions, NodeKey};
use openp2p_mio::{Config, Direction, Event, Events, Node};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

fn free_udp_port() -> u16 {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket.local_addr().expect("addr").port()
}

fn options(key: u8, name: &str, tcp: SocketAddr, port: u16, peer_port: u16) -> DiscoveryOptions {
    DiscoveryOptions {
        port,
        broadcast: IpAddr::V4(Ipv4Addr::LOCALHOST),
        target_port: Some(peer_port),
        config: DiscoveryConfig {
            interval: Duration::from_millis(100),
            jitter: Duration::from_millis(20),
            expiry: Duration::from_millis(800),
            auto_connect: true,
            ..DiscoveryConfig::default()
        },
        ..DiscoveryOptions::new(NodeKey([key; 16]), name, tcp.port())
    }
}

fn start() -> (Node, Events, SocketAddr) {
    let (node, events) = Node::start(Config::default()).expect("start");
    let tcp = node
        .listen("127.0.0.1:0".parse().expect("addr"))
        .expect("listen");
    (node, events, tcp)
}

/// Alice (key 1, the dialler) and Bob (key 2), listening and announcing to each other.
/// Each with its events, TCP listener address and UDP port.
fn discovering_pair() -> [(Node, Events, SocketAddr, u16); 2] {
    let (alice, alice_events, alice_tcp) = start();
    let (bob, bob_events, bob_tcp) = start();
    let (alice_udp, bob_udp) = (free_udp_port(), free_udp_port());
    alice
        .enable_discovery(options(1, "alice", alice_tcp, alice_udp, bob_udp))
        .expect("udp");
    bob.enable_discovery(options(2, "bob", bob_tcp, bob_udp, alice_udp))
        .expect("udp");
    [
        (alice, alice_events, alice_tcp, alice_udp),
        (bob, bob_events, bob_tcp, bob_udp),
    ]
}

#[test]
fn two_nodes_discover_each_other_auto_connect_once_and_notice_a_departure() {
    let [(alice, mut alice_events, alice_tcp, alice_udp), (bob, mut bob_events, bob_tcp, _)] =
        discovering_pair();

    // Each side sees the other discovered and one connection between them; only the smaller
    // key dials, so alice's is outbound and bob's inbound. (A side may see the connection
    // before the beacon.)
    let alice_saw = until_discovered_and_connected(&mut alice_events);
    assert!(alice_saw.contains(&Event::Discovered {
        node: NodeKey([2; 16]),
        addr: bob_tcp,
        name: "bob".into()
    }));
    assert!(alice_saw.iter().any(|e| matches!(
        e,
        Event::Connected { addr, direction: Direction::Outbound, .. } if *addr == bob_tcp
    )));
    let bob_saw = until_discovered_and_connected(&mut bob_events);
    assert!(bob_saw.contains(&Event::Discovered {
        node: NodeKey([1; 16]),
        addr: alice_tcp,
        name: "alice".into()
    }));
    assert!(bob_saw.iter().any(|e| matches!(
        e,
        Event::Connected {
            direction: Direction::Inbound,
            ..
        }
    )));

    // A malformed datagram is counted and ignored.
    let stranger = UdpSocket::bind("127.0.0.1:0").expect("bind");
    stranger
        .send_to(b"not a beacon", ("127.0.0.1", alice_udp))
        .expect("send");
    let deadline = Instant::now() + PATIENCE;
    while alice.driver_stats().expect("running").discovery_malformed == 0 {
        assert!(
            Instant::now() < deadline,
            "the malformed datagram was not seen"
        );
        std::thread::yield_now();
    }

    // Bob stops announcing: alice loses him after the expiry (the connection stays).
    bob.disable_discovery().expect("running");
    let lost = expect(&mut alice_events, "Lost", |e| {
        matches!(e, Event::Lost { .. })
    });
    assert_eq!(
        lost,
        Event::Lost {
            node: NodeKey([2; 16]),
            addr: bob_tcp
        }
    );
    assert_eq!(
        alice.global_stats().expect("running").peers,
        1,
        "one connection, not two"
    );
    assert_eq!(bob.global_stats().expect("running").peers, 1);
    alice.shutdown();
    bob.shutdown();
}

/// Events until both a `Discovered` and a `Connected` arrived.
fn until_discovered_and_connected(events: &mut Events) -> Vec<Event> {
    let mut seen = Vec::new();
    let deadline = Instant::now() + PATIENCE;
    while !(seen.iter().any(|e| matches!(e, Event::Discovered { .. }))
        && seen.iter().any(|e| matches!(e, Event::Connected { .. })))
    {
        let left = deadline.saturating_duration_since(Instant::now());
        seen.push(
            events
                .recv_timeout(left)
                .expect("discovery and connection in time"),
        );
    }
    seen
}

/// Whether `e` is the outcome of one of alice's dials: established, or failed. (Bob's abort can
/// reach alice's socket before her driver has seen its connect complete: that dial then ends in
/// `ConnectFailed` instead of `Connected` + `Disconnected`.)
fn dial_outcome(e: &Event) -> bool {
    matches!(
        e,
        Event::Connected {
            direction: Direction::Outbound,
            ..
        } | Event::ConnectFailed { .. }
    )
}

#[test]
fn a_dropped_connection_is_dialled_again_and_only_once() {
    let [(alice, mut alice_events, _, _), (bob, mut bob_events, _, _)] = discovering_pair();
    let connected = |e: &Event| matches!(e, Event::Connected { .. });
    let Event::Connected { peer: first, .. } = expect(&mut bob_events, "Connected", connected)
    else {
        unreachable!()
    };
    // Bob drops the connection while both keep announcing: alice, the dialler, dials again.
    bob.abort(first).expect("running");
    let Event::Connected { peer: second, .. } =
        expect(&mut bob_events, "Connected again", connected)
    else {
        unreachable!()
    };
    assert_ne!(first, second);
    // Alice's two dials end: the first one way or the other, the second established.
    expect(&mut alice_events, "the first dial's outcome", dial_outcome);
    let last = expect(&mut alice_events, "the second dial's outcome", dial_outcome);
    assert!(matches!(last, Event::Connected { .. }), "{last:?}");
    // Several announce intervals later there is still exactly one connection.
    std::thread::sleep(Duration::from_millis(500)); // the window observed, not a wait
    assert_eq!(bob.global_stats().expect("running").peers, 1);
    let more = alice_events.try_iter().filter(dial_outcome).count();
    assert_eq!(more, 0, "dialled twice in all");
    alice.shutdown();
    bob.shutdown();
}
