//! Peer life cycles: connect, refuse, limit, shut down. Every scenario runs on both Tokio runtime flavours.

#[macro_use]
mod common;

use bytes::Bytes;
use common::*;
use openp2p_tokio::{
    Config, ConnectError, ConnectFailure, DisconnectReason, Event, Node, Refusal, SendError,
};
use tokio::io::AsyncReadExt;

/// Listen, connect, exchange a message each way, disconnect, shut down: every event once, in
/// order, and the event streams end.
async fn lifecycle() {
    let (server, addr) = listening(Config::default()).await;
    let client = Node::start(Config::default()).expect("valid config");
    let peer = client.connect(addr).await.expect("connect accepted");
    connected(&client, peer).await;
    let remote = inbound(&server).await;

    client
        .send_now(peer, Bytes::from_static(b"hello"))
        .expect("queued");
    let got = wait_for(&server, |e| match e {
        Event::Received { peer, data } if peer == remote => Some(data),
        _ => None,
    })
    .await;
    assert_eq!(&got[..], b"hello");
    server
        .send_now(remote, Bytes::from_static(b"world"))
        .expect("queued");
    let got = wait_for(&client, |e| match e {
        Event::Received { data, .. } => Some(data),
        _ => None,
    })
    .await;
    assert_eq!(&got[..], b"world");
    let stats = client.stats(peer).await.expect("live peer");
    assert_eq!((stats.sent.bytes, stats.received.bytes), (5, 5));

    client.disconnect(peer).await.expect("live peer");
    let local = wait_for(&client, |e| match e {
        Event::Disconnected {
            peer: p,
            reason,
            unsent,
        } if p == peer => Some((reason, unsent)),
        _ => None,
    })
    .await;
    assert_eq!(local, (DisconnectReason::Local, 0));
    let far = wait_for(&server, |e| match e {
        Event::Disconnected { peer, reason, .. } if peer == remote => Some(reason),
        _ => None,
    })
    .await;
    assert_eq!(far, DisconnectReason::Remote);
    assert_eq!(
        client.send_now(peer, Bytes::from_static(b"late")),
        Err(SendError::UnknownPeer)
    );

    for node in [&client, &server] {
        node.shutdown().await;
        wait_for(node, |e| matches!(e, Event::ShutdownComplete).then_some(())).await;
        let end = tokio::time::timeout(WAIT, node.next_event())
            .await
            .expect("stream ends");
        assert_eq!(end, None, "no event after ShutdownComplete");
        assert_eq!(node.connect(addr).await, Err(ConnectError::ShuttingDown));
    }
}

/// Connecting where nobody listens yields `ConnectFailed { Refused }`, and the peer's stream
/// reports it.
async fn refused_connect() {
    let vacant = std::net::TcpListener::bind(localhost()).expect("bind");
    let addr = vacant.local_addr().expect("bound");
    drop(vacant);
    let node = Node::start(Config::default()).expect("valid config");
    let peer = node.connect(addr).await.expect("connect accepted");
    let mut stream = node.stream(peer).expect("stream of a connecting peer");
    let reason = wait_for(&node, |e| match e {
        Event::ConnectFailed {
            peer: p, reason, ..
        } if p == peer => Some(reason),
        _ => None,
    })
    .await;
    assert_eq!(reason, ConnectFailure::Refused);
    let mut buf = [0u8; 4];
    let err = stream.read(&mut buf).await.expect_err("no connection");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    node.shutdown().await;
}

/// `max_peers` refuses the connection over the limit, inbound (an event, the socket closed) and
/// outbound (`connect` fails).
async fn max_peers_is_enforced() {
    let (server, addr) = listening(Config {
        max_peers: 2,
        ..Config::default()
    })
    .await;
    let (roomy, roomy_addr) = listening(Config::default()).await;
    let client = Node::start(Config {
        max_peers: 3,
        ..Config::default()
    })
    .expect("valid");
    let mut peers = Vec::new();
    for _ in 0..3 {
        peers.push(
            client
                .connect(addr)
                .await
                .expect("under the client's limit"),
        );
    }
    let refusal = wait_for(&server, |e| match e {
        Event::Refused { reason, .. } => Some(reason),
        _ => None,
    })
    .await;
    assert_eq!(refusal, Refusal::MaxPeers);
    // The refused connection is closed by the server: exactly one client peer goes away.
    let gone = wait_for(&client, |e| match e {
        Event::Disconnected { peer, .. } => Some(peer),
        _ => None,
    })
    .await;
    assert!(peers.contains(&gone));
    let stats = server.global_stats().await.expect("running");
    assert_eq!((stats.peers, stats.refused_connections), (2, 1));
    // Two live client peers plus one more reach the client's own limit.
    let third = client
        .connect(roomy_addr)
        .await
        .expect("under the client's limit");
    connected(&client, third).await;
    assert_eq!(
        client.connect(roomy_addr).await,
        Err(ConnectError::MaxPeers)
    );
    for node in [client, server, roomy] {
        node.shutdown().await;
    }
}

/// Dropping every handle shuts the node down gracefully: its peers see a clean close.
async fn dropping_every_handle_closes_the_peers() {
    let (server, addr) = listening(Config::default()).await;
    let client = Node::start(Config::default()).expect("valid config");
    let peer = client.connect(addr).await.expect("accepted");
    connected(&client, peer).await;
    let remote = inbound(&server).await;
    client
        .send_now(peer, Bytes::from_static(b"bye"))
        .expect("queued");
    drop(client);
    let mut got = Vec::new();
    let reason = wait_for(&server, |e| match e {
        Event::Received { data, .. } => {
            got.extend_from_slice(&data);
            None
        }
        Event::Disconnected { peer, reason, .. } if peer == remote => Some(reason),
        _ => None,
    })
    .await;
    assert_eq!(
        (got.as_slice(), reason),
        (&b"bye"[..], DisconnectReason::Remote)
    );
    server.shutdown().await;
}

fn next(
    events: &mut openp2p_tokio::Events,
) -> impl std::future::Future<Output = Option<Event>> + '_ {
    use futures_core::Stream;
    std::future::poll_fn(move |cx| std::pin::Pin::new(&mut *events).poll_next(cx))
}

/// The `futures_core::Stream` of events yields the same events as `next_event`, and ends.
async fn the_event_stream_ends_after_shutdown() {
    let node = Node::start(Config::default()).expect("valid config");
    let mut events = node.events();
    let addr = node.listen(localhost()).await.expect("bind");
    let first = tokio::time::timeout(WAIT, next(&mut events))
        .await
        .expect("in time");
    assert!(matches!(first, Some(Event::Listening { addr: a, .. }) if a == addr));
    node.shutdown().await;
    let mut rest = Vec::new();
    while let Some(event) = tokio::time::timeout(WAIT, next(&mut events))
        .await
        .expect("ends")
    {
        rest.push(event);
    }
    assert_eq!(rest, vec![Event::ShutdownComplete]);
}

#[test]
fn starting_outside_a_runtime_is_an_error() {
    let error = Node::start(Config::default()).expect_err("no runtime here");
    assert_eq!(error, openp2p_tokio::StartError::NoRuntime);
}

on_both_flavours!(
    lifecycle,
    refused_connect,
    max_peers_is_enforced,
    dropping_every_handle_closes_the_peers,
    the_event_stream_ends_after_shutdown,
);
