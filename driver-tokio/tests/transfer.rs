//! Moving data: many peers, rate limits, graceful and abortive closes, sends. Every scenario runs on both Tokio runtime flavours.

#[macro_use]
mod common;

use bytes::Bytes;
use common::*;
use openp2p_tokio::{
    Config, DisconnectReason, Event, Framing, Limits, Node, PeerId, PeerState, Rate, SendError,
};
use std::collections::HashMap;
use std::time::Duration;

/// 100 peers each send 1 MiB of a pattern of their own; the server verifies every byte.
async fn hundred_peers_one_mib_each() {
    const PEERS: usize = 100;
    const SIZE: usize = 1 << 20;
    let (server, addr) = listening(Config::default()).await;
    let client = Node::start(Config::default()).expect("valid config");
    for seed in 0..PEERS as u8 {
        let data: Vec<u8> = (0..SIZE).map(|i| pattern(seed, i)).collect();
        let peer = client.connect(addr).await.expect("connect accepted");
        client
            .send_now(peer, Bytes::from(data))
            .expect("queued before connecting");
    }
    // Per inbound peer: (seed, bytes verified).
    let mut progress: HashMap<PeerId, (u8, usize)> = HashMap::new();
    let mut complete = 0;
    wait_for(&server, |e| {
        if let Event::Received { peer, data } = e {
            let (seed, offset) = progress.entry(peer).or_insert((seed_of(data[0]), 0));
            for (k, byte) in data.iter().enumerate() {
                assert_eq!(
                    *byte,
                    pattern(*seed, *offset + k),
                    "{peer} byte {}",
                    *offset + k
                );
            }
            *offset += data.len();
            assert!(*offset <= SIZE, "{peer} received more than it was sent");
            if *offset == SIZE {
                complete += 1;
            }
        }
        (complete == PEERS).then_some(())
    })
    .await;
    let mut seeds: Vec<u8> = progress.values().map(|(seed, _)| *seed).collect();
    seeds.sort_unstable();
    assert_eq!(
        seeds,
        (0..PEERS as u8).collect::<Vec<_>>(),
        "each peer's own data"
    );
    let stats = server.global_stats().await.expect("running");
    assert_eq!(stats.received.bytes, (PEERS * SIZE) as u64);
    client.shutdown().await;
    server.shutdown().await;
}

/// `disconnect` right after queueing 3 MiB still delivers every byte before closing.
async fn graceful_disconnect_flushes() {
    const SIZE: usize = 3 << 20;
    let (server, addr) = listening(Config::default()).await;
    let client = Node::start(Config::default()).expect("valid config");
    let peer = client.connect(addr).await.expect("connect accepted");
    client
        .send_now(peer, Bytes::from(vec![1u8; SIZE]))
        .expect("queued");
    client.disconnect(peer).await.expect("live peer");
    let mut received = 0;
    let reason = wait_for(&server, |e| match e {
        Event::Received { data, .. } => {
            received += data.len();
            None
        }
        Event::Disconnected { reason, .. } => Some(reason),
        _ => None,
    })
    .await;
    assert_eq!((received, reason), (SIZE, DisconnectReason::Remote));
    let (reason, unsent) = wait_for(&client, |e| match e {
        Event::Disconnected { reason, unsent, .. } => Some((reason, unsent)),
        _ => None,
    })
    .await;
    assert_eq!((reason, unsent), (DisconnectReason::Local, 0));
    client.shutdown().await;
    server.shutdown().await;
}

/// `abort` with data still queued reports exactly the bytes never written as unsent.
async fn abort_reports_unsent() {
    const SIZE: u64 = 1 << 20;
    let (server, addr) = listening(Config::default()).await;
    let client = Node::start(Config::default()).expect("valid config");
    let peer = client.connect(addr).await.expect("connect accepted");
    client
        .set_limits(peer, Limits::upload(Rate::per_second(64 * 1024)))
        .await
        .expect("live");
    client
        .send_now(peer, Bytes::from(vec![3u8; SIZE as usize]))
        .expect("queued");
    wait_for(&server, |e| {
        matches!(e, Event::Received { .. }).then_some(())
    })
    .await;
    client.abort(peer).await.expect("live peer");
    let mut sent = 0u64;
    let (reason, unsent) = wait_for(&client, |e| match e {
        Event::Sent { bytes, .. } => {
            sent += bytes as u64;
            None
        }
        Event::Disconnected { reason, unsent, .. } => Some((reason, unsent)),
        _ => None,
    })
    .await;
    assert_eq!(reason, DisconnectReason::Aborted);
    assert!(unsent > 0, "the limit kept most of the data queued");
    assert_eq!(
        sent + unsent,
        SIZE,
        "every accepted byte is either written or unsent"
    );
    wait_for(&server, |e| {
        matches!(e, Event::Disconnected { .. }).then_some(())
    })
    .await;
    client.shutdown().await;
    server.shutdown().await;
}

/// `send` answers at once from the node's mirror of the send queue: `QueueFull` past the
/// high-water mark, then `Writable` once it drains; `FrameTooLarge`, `Closing` and `UnknownPeer`.
async fn send_answers_without_a_round_trip() {
    let config = Config {
        send_queue_high_water: 64 * 1024,
        send_queue_low_water: 16 * 1024,
        max_frame_size: 100_000,
        ..Config::default()
    };
    let (server, addr) = listening(Config::default()).await;
    let client = Node::start(config).expect("valid config");
    let peer = client
        .connect_with(addr, Framing::LengthPrefixed)
        .await
        .expect("accepted");
    client
        .set_limits(peer, Limits::upload(Rate::per_second(256 * 1024)))
        .await
        .expect("live");
    let big = Bytes::from(vec![1u8; 60 * 1024]);
    client
        .send_now(peer, big.clone())
        .expect("an empty queue takes a message");
    assert!(matches!(
        client.send_now(peer, big.clone()),
        Err(SendError::QueueFull { .. })
    ));
    assert!(matches!(
        client.send_now(peer, Bytes::from(vec![0u8; 100_001])),
        Err(SendError::FrameTooLarge { .. })
    ));
    wait_for(&client, |e| {
        matches!(e, Event::Writable { peer: p } if p == peer).then_some(())
    })
    .await;
    // Writable means the queue is at the low-water mark (16 KiB): there is room for 8 KiB.
    client
        .send_now(peer, Bytes::from(vec![2u8; 8 * 1024]))
        .expect("room again after Writable");
    let mut messages = 0;
    wait_for(&server, |e| {
        messages += usize::from(matches!(e, Event::Received { .. }));
        (messages == 2).then_some(())
    })
    .await;
    client.disconnect(peer).await.expect("live peer");
    assert_eq!(
        client.send_now(peer, Bytes::from_static(b"x")),
        Err(SendError::Closing)
    );
    wait_for(&client, |e| {
        matches!(e, Event::Disconnected { .. }).then_some(())
    })
    .await;
    assert_eq!(
        client.send_now(peer, Bytes::from_static(b"x")),
        Err(SendError::UnknownPeer)
    );
    client.shutdown().await;
    server.shutdown().await;
}

/// A message `send` accepted but the engine then refused (the remote closed meanwhile) comes
/// back as `SendRefused` with its data; nothing is dropped silently.
async fn a_send_refused_after_acceptance_is_reported() {
    let (server, addr) = listening(Config::default()).await;
    let client = Node::start(Config::default()).expect("valid config");
    let peer = client.connect(addr).await.expect("accepted");
    client
        .set_limits(peer, Limits::upload(Rate::per_second(16 * 1024)))
        .await
        .expect("live");
    client
        .send_now(peer, Bytes::from(vec![0u8; 256 * 1024]))
        .expect("queued");
    let remote = inbound(&server).await;
    server.disconnect(remote).await.expect("live");
    // The client sees the remote's EOF and drains its slow queue: it is closing, which only
    // its engine knows.
    tokio::time::timeout(WAIT, async {
        while client.peer_info(peer).await.map(|i| i.state) != Some(PeerState::Closing) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the client starts closing");
    client
        .send_now(peer, Bytes::from_static(b"late"))
        .expect("the handle cannot know yet");
    let (error, data) = wait_for(&client, |e| match e {
        Event::SendRefused {
            peer: p,
            error,
            data,
        } if p == peer => Some((error, data)),
        _ => None,
    })
    .await;
    assert_eq!((error, &data[..]), (SendError::Closing, &b"late"[..]));
    assert_eq!(
        client.send_now(peer, Bytes::from_static(b"x")),
        Err(SendError::Closing)
    );
    client.abort(peer).await.expect("live");
    client.shutdown().await;
    server.shutdown().await;
}

on_both_flavours!(
    hundred_peers_one_mib_each,
    graceful_disconnect_flushes,
    abort_reports_unsent,
    send_answers_without_a_round_trip,
    a_send_refused_after_acceptance_is_reported,
);
