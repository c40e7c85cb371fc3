//! The driver's own work: an idle node sleeps, and a busy peer costs the same work whatever the
//! number of idle peers (no scan over peers). Every scenario runs on both Tokio runtime flavours.

#[macro_use]
mod common;

use bytes::Bytes;
use common::*;
use openp2p_tokio::{Config, Event, Node, PeerId};
use std::time::Duration;

/// Connects `count` client peers to `addr` and waits until all are connected on both sides.
async fn connect_many(
    client: &Node,
    server: &Node,
    addr: std::net::SocketAddr,
    count: usize,
) -> Vec<PeerId> {
    let mut peers = Vec::new();
    for _ in 0..count {
        peers.push(client.connect(addr).await.expect("accepted"));
    }
    let mut up = 0;
    wait_for(client, |e| {
        up += usize::from(matches!(e, Event::Connected { .. }));
        (up == count).then_some(())
    })
    .await;
    let mut inbound = 0;
    wait_for(server, |e| {
        inbound += usize::from(matches!(e, Event::Connected { .. }));
        (inbound == count).then_some(())
    })
    .await;
    peers
}

/// 50 connected, silent peers: over a 300 ms window the server's driver is polled only for the
/// stats queries themselves.
async fn an_idle_node_does_not_wake() {
    let (server, addr) = listening(Config::default()).await;
    let client = Node::start(Config::default()).expect("valid config");
    connect_many(&client, &server, addr, 50).await;
    // On a loaded machine the sockets' first readiness reports may trail the Connected events:
    // start the window once a 50 ms look shows no socket work (bounded: at most 2 s).
    let mut before = server.driver_stats().await.expect("running");
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(50)).await; // a look, not a wait for an event
        let now = server.driver_stats().await.expect("running");
        let settled = now.socket_turns == before.socket_turns;
        before = now;
        if settled {
            break;
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await; // the window measured, not a wait
    let after = server.driver_stats().await.expect("running");
    let polls = after.polls - before.polls;
    println!("idle: {polls} polls in 300 ms");
    assert!(
        polls <= 4,
        "an idle node was polled {polls} times in 300 ms"
    );
    assert_eq!(
        after.socket_turns, before.socket_turns,
        "no socket was touched"
    );
    client.shutdown().await;
    server.shutdown().await;
}

/// One peer doing 200 round trips next to 100 idle ones: the socket turns stay proportional to
/// the busy peer's traffic (a scan over peers would cost 100 turns per wake-up).
async fn idle_peers_cost_nothing_per_wake_up() {
    const TRIPS: usize = 200;
    let (server, addr) = listening(Config::default()).await;
    let client = Node::start(Config::default()).expect("valid config");
    let peers = connect_many(&client, &server, addr, 101).await;
    let busy = peers[0];
    let before = server.driver_stats().await.expect("running");
    for trip in 0..TRIPS {
        client
            .send_now(busy, Bytes::from(vec![trip as u8; 64]))
            .expect("queued");
        let data = wait_for(&server, |e| match e {
            Event::Received { peer, data } => Some((peer, data)),
            _ => None,
        })
        .await;
        server.send_now(data.0, data.1).expect("echo queued");
        wait_for(&client, |e| {
            matches!(e, Event::Received { .. }).then_some(())
        })
        .await;
    }
    let after = server.driver_stats().await.expect("running");
    let turns = after.socket_turns - before.socket_turns;
    println!(
        "{turns} socket turns, {} polls for {TRIPS} round trips",
        after.polls - before.polls
    );
    assert!(
        turns <= 4 * TRIPS as u64,
        "{turns} socket turns for {TRIPS} round trips"
    );
    client.shutdown().await;
    server.shutdown().await;
}

on_both_flavours!(
    an_idle_node_does_not_wake,
    idle_peers_cost_nothing_per_wake_up
);
