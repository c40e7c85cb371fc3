//! The engine's limits, enforced over real sockets: a per-peer upload rate and max peers.

mod common;

use common::{expect, PATIENCE};
use openp2p_mio::{Config, Event, Limits, Node, Rate, Refusal};
use std::time::{Duration, Instant};

#[test]
fn per_peer_upload_limit_of_256_kib_per_second_holds_within_five_percent_over_four_seconds() {
    const RATE: u64 = 256 * 1024;
    const WINDOW: Duration = Duration::from_secs(4);
    let (server, mut server_events) = Node::start(Config::default()).expect("start");
    let addr = server
        .listen("127.0.0.1:0".parse().expect("addr"))
        .expect("listen");
    let (client, _client_events) = Node::start(Config::default()).expect("start");
    let peer = client.connect_wait(addr).expect("connects");
    client
        .set_limits(peer, Limits::upload(Rate::per_second(RATE)))
        .expect("running");
    // Twice what the window needs, so the sender never runs dry.
    client
        .send(peer, vec![1u8; 2 * 4 * RATE as usize])
        .expect("running");

    // Measured where it matters: bytes arriving at the receiver, from the first byte on.
    let mut received = 0u64;
    let start = loop {
        if let Event::Received { data, .. } = expect(&mut server_events, "first data", |e| {
            matches!(e, Event::Received { .. })
        }) {
            received += data.len() as u64;
            break Instant::now();
        }
    };
    let end = start + WINDOW;
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        match server_events.recv_timeout(end - now) {
            Ok(Event::Received { data, .. }) => received += data.len() as u64,
            Ok(_) | Err(openp2p_mio::RecvTimeoutError::Timeout) => {}
            Err(e) => panic!("{e}"),
        }
    }
    let rate = received as f64 / WINDOW.as_secs_f64();
    eprintln!("upload limit {RATE} B/s: measured {rate:.0} B/s at the receiver");
    let error = (rate - RATE as f64) / RATE as f64;
    assert!(
        error.abs() <= 0.05,
        "measured {rate:.0} B/s, {:+.1}% off {RATE}",
        error * 100.0
    );
    let stats = client.stats(peer).expect("running").expect("live");
    assert!(stats.queued > 0, "the sender was never out of data");
    // Drop the rest rather than flush it at 256 KiB/s during shutdown.
    client.abort(peer).expect("running");
    client.shutdown();
    server.shutdown();
}

#[test]
fn a_connection_past_max_peers_is_refused_while_the_others_carry_on() {
    const MAX: usize = 3;
    let (server, mut server_events) = Node::start(Config {
        max_peers: MAX,
        ..Config::default()
    })
    .expect("start");
    let addr = server
        .listen("127.0.0.1:0".parse().expect("addr"))
        .expect("listen");
    let (client, mut client_events) = Node::start(Config::default()).expect("start");

    let mut peers = Vec::new();
    for _ in 0..MAX {
        peers.push(client.connect_wait(addr).expect("connects"));
    }
    let mut accepted = Vec::new();
    while accepted.len() < MAX {
        if let Event::Connected { peer, .. } = expect(&mut server_events, "Connected", |e| {
            matches!(e, Event::Connected { .. })
        }) {
            accepted.push(peer);
        }
    }

    // The kernel completes the handshake; the node then refuses and closes the connection.
    let extra = client.connect(addr).expect("connect starts");
    let refused = expect(&mut server_events, "Refused", |e| {
        matches!(e, Event::Refused { .. })
    });
    assert!(matches!(
        refused,
        Event::Refused {
            reason: Refusal::MaxPeers,
            ..
        }
    ));
    let extra_end = expect(
        &mut client_events,
        "extra peer's end",
        |e| matches!(e, Event::Disconnected { peer, .. } | Event::ConnectFailed { peer, .. } if *peer == extra),
    );
    assert!(matches!(
        extra_end,
        Event::Disconnected { .. } | Event::ConnectFailed { .. }
    ));

    // The others carry on: each round trip still works.
    for (i, &peer) in peers.iter().enumerate() {
        client
            .send(peer, format!("still here {i}"))
            .expect("running");
    }
    let mut echoed = 0;
    let deadline = Instant::now() + PATIENCE;
    while echoed < MAX {
        let left = deadline.saturating_duration_since(Instant::now());
        match server_events.recv_timeout(left).expect("server events") {
            Event::Received { peer, data } => {
                assert!(accepted.contains(&peer));
                assert!(data.starts_with(b"still here"));
                server.send(peer, data).expect("running");
                echoed += 1;
            }
            Event::Disconnected { .. } => panic!("an admitted peer was dropped"),
            _ => {}
        }
    }
    let mut back = 0;
    while back < MAX {
        if let Event::Received { peer, .. } = expect(&mut client_events, "echo", |e| {
            matches!(e, Event::Received { .. })
        }) {
            assert!(peers.contains(&peer));
            back += 1;
        }
    }
    let stats = server.global_stats().expect("running");
    assert_eq!(stats.peers, MAX);
    assert_eq!(stats.refused_connections, 1);
    client.shutdown();
    server.shutdown();
}
