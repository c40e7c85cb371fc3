//! Bulk transfers over loopback: many peers at once, a full send queue, a graceful disconnect
//! that must deliver everything queued, and a reset in the middle of a transfer.

mod common;

use common::{continues, expect, inbound, pattern, within};
use futures_lite::future;
use openp2p_async_std::{Bytes, Config, DisconnectReason, Event, Node, PeerId, SendError};
use std::collections::HashMap;
use std::io::Read;
use std::net::SocketAddr;
use std::time::Duration;

const MIB: usize = 1024 * 1024;

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().expect("loopback address")
}

/// Sends `total` pattern bytes (from `seed`) to `peer` in 64 KiB messages.
async fn send_pattern(node: &Node, peer: PeerId, seed: usize, total: usize) {
    let data = pattern(seed, total);
    for start in (0..total).step_by(64 * 1024) {
        let end = (start + 64 * 1024).min(total);
        node.send(peer, data.slice(start..end))
            .await
            .expect("send within the queue limit");
    }
}

/// Per-peer receive progress: bytes so far and the last byte, for the continuity check.
#[derive(Default)]
struct Inbound {
    bytes: usize,
    last: Option<u8>,
}

/// Drains `node`'s events until every one of `expected` peers has received `total` verified
/// bytes; when `reply` is set, each inbound peer is sent `total` bytes on connecting.
async fn receive_all(node: &Node, expected: usize, total: usize, reply: bool) {
    let mut peers: HashMap<PeerId, Inbound> = HashMap::new();
    let mut done = 0;
    while done < expected {
        match common::next(node, "transfer events").await {
            Event::Connected { peer, .. } if reply => {
                send_pattern(node, peer, peer.serial() as usize, total).await
            }
            Event::Received { peer, data } => {
                let p = peers.entry(peer).or_default();
                assert!(
                    continues(&mut p.last, &data),
                    "{peer}: bytes lost, repeated or reordered"
                );
                p.bytes += data.len();
                assert!(p.bytes <= total, "{peer}: more bytes than sent");
                if p.bytes == total {
                    done += 1;
                }
            }
            Event::Disconnected { peer, reason, .. } => panic!("{peer} went away: {reason}"),
            _ => {}
        }
    }
}

async fn a_hundred_peers_each_exchange_a_mebibyte_both_ways(start: fn(Config) -> Node) {
    const PEERS: usize = 100;
    let server = start(Config::default());
    let addr = within("listen", server.listen(loopback()))
        .await
        .expect("listen");
    let client = start(Config::default());
    let mut peers = Vec::new();
    for _ in 0..PEERS {
        peers.push(
            within("connect", client.connect(addr))
                .await
                .expect("connect"),
        );
    }
    for (i, &peer) in peers.iter().enumerate() {
        send_pattern(&client, peer, i, MIB).await;
    }
    future::zip(
        receive_all(&server, PEERS, MIB, true),
        receive_all(&client, PEERS, MIB, false),
    )
    .await;
    let stats = within("stats", server.global_stats())
        .await
        .expect("running");
    assert_eq!(stats.received.bytes, (PEERS * MIB) as u64);
    assert_eq!(stats.inbound_connections, PEERS as u64);
    within("client shutdown", client.shutdown()).await;
    within("server shutdown", server.shutdown()).await;
}

async fn a_graceful_disconnect_delivers_every_queued_byte(start: fn(Config) -> Node) {
    const TOTAL: usize = 8 * MIB;
    let config = Config {
        send_queue_high_water: 16 * MIB,
        ..Config::default()
    };
    let server = start(config.clone());
    let addr = within("listen", server.listen(loopback()))
        .await
        .expect("listen");
    let client = start(config);
    let peer = within("connect", client.connect(addr))
        .await
        .expect("connect");
    send_pattern(&client, peer, 3, TOTAL).await;
    assert!(
        client.queued(peer).unwrap_or(0) > 0,
        "data is still queued when disconnecting"
    );
    within("disconnect", client.disconnect(peer))
        .await
        .expect("disconnect");

    let remote = inbound(&server).await;
    let mut last = None;
    let mut received = 0;
    let end = loop {
        match common::next(&server, "data or Disconnected").await {
            Event::Received { peer, data } if peer == remote => {
                assert!(
                    continues(&mut last, &data),
                    "bytes lost, repeated or reordered"
                );
                received += data.len();
            }
            event @ Event::Disconnected { .. } => break event,
            _ => {}
        }
    };
    assert_eq!(received, TOTAL);
    assert_eq!(
        end,
        Event::Disconnected {
            peer: remote,
            reason: DisconnectReason::Remote,
            unsent: 0
        }
    );
    let gone = expect(&client, "client Disconnected", |e| {
        matches!(e, Event::Disconnected { .. })
    })
    .await;
    assert_eq!(
        gone,
        Event::Disconnected {
            peer,
            reason: DisconnectReason::Local,
            unsent: 0
        }
    );
    within("client shutdown", client.shutdown()).await;
    within("server shutdown", server.shutdown()).await;
}

async fn a_reset_mid_transfer_reports_the_unsent_bytes(start: fn(Config) -> Node) {
    const TOTAL: usize = 8 * MIB;
    // A raw server that, once everything is queued, reads a little, then resets the
    // connection (linger 0).
    let listener = std::net::TcpListener::bind(loopback()).expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (queued, all_queued) = std::sync::mpsc::channel::<()>();
    let resetter = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("accept");
        let _ = all_queued.recv();
        let mut buf = vec![0; 64 * 1024];
        let mut read = 0;
        while read < 256 * 1024 {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => read += n,
            }
        }
        socket2::SockRef::from(&stream)
            .set_linger(Some(Duration::ZERO))
            .expect("linger");
    });

    let config = Config {
        send_queue_high_water: 16 * MIB,
        ..Config::default()
    };
    let client = start(config);
    let peer = within("connect", client.connect(addr))
        .await
        .expect("connect");
    send_pattern(&client, peer, 0, TOTAL).await;
    queued.send(()).expect("resetter waits");
    let mut written = 0u64;
    let (reason, unsent) = loop {
        match common::next(&client, "Sent or Disconnected").await {
            Event::Sent { bytes, .. } => written += bytes as u64,
            Event::Disconnected { reason, unsent, .. } => break (reason, unsent),
            _ => {}
        }
    };
    resetter.join().expect("resetter thread");
    assert!(
        matches!(reason, DisconnectReason::Io(_)),
        "a reset is an IO error: {reason:?}"
    );
    assert!(unsent > 0, "the reset came before the end of the transfer");
    assert_eq!(
        written + unsent,
        TOTAL as u64,
        "every byte is either written or reported unsent"
    );
    let late = client.send(peer, Bytes::from_static(b"late")).await;
    assert_eq!(late, Err(SendError::UnknownPeer));
    within("client shutdown", client.shutdown()).await;
}

async fn a_full_queue_refuses_at_once_and_writable_follows(start: fn(Config) -> Node) {
    let config = Config {
        send_queue_high_water: MIB,
        send_queue_low_water: MIB / 4,
        ..Config::default()
    };
    let server = start(Config::default());
    let addr = within("listen", server.listen(loopback()))
        .await
        .expect("listen");
    let client = start(config);
    let peer = within("connect", client.connect(addr))
        .await
        .expect("connect");
    let chunk = pattern(0, MIB / 4);
    let mut accepted = 0;
    let refusal = loop {
        match client.send(peer, chunk.clone()).await {
            Ok(()) => accepted += 1,
            Err(e) => break e,
        }
    };
    assert!(
        accepted >= 4,
        "a mebibyte fits before the queue is full ({accepted} accepted)"
    );
    assert!(matches!(refusal, SendError::QueueFull { limit, .. } if limit == MIB as u64));
    let remote = inbound(&server).await;
    let drain = async {
        let mut received = 0;
        while received < accepted * MIB / 4 {
            if let Event::Received { peer, data } = common::next(&server, "data").await {
                assert_eq!(peer, remote);
                received += data.len();
            }
        }
    };
    let writable = expect(&client, "Writable", |e| matches!(e, Event::Writable { .. }));
    let (_, writable) = future::zip(drain, writable).await;
    assert_eq!(writable, Event::Writable { peer });
    client
        .send(peer, chunk)
        .await
        .expect("room again after Writable");
    within("client shutdown", client.shutdown()).await;
    within("server shutdown", server.shutdown()).await;
}

on_both_runtimes!(
    a_full_queue_refuses_at_once_and_writable_follows,
    a_hundred_peers_each_exchange_a_mebibyte_both_ways,
    a_graceful_disconnect_delivers_every_queued_byte,
    a_reset_mid_transfer_reports_the_unsent_bytes,
);
