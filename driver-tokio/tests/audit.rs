//! Interleavings found by the driver audit: bytes a handle or a stream accepted must be written
//! or reported, whatever the timing of shutdown and refusals.

#[macro_use]
mod common;

use bytes::Bytes;
use common::*;
use openp2p_tokio::{
    BindError, Config, ConnectError, Event, Limits, Node, PeerState, Rate, SendError, StreamError,
    UnknownId,
};
use std::future::Future;
use std::pin::Pin;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Polls `future` once, so that a command it sends is queued before whatever the test does next.
/// True if it completed at once (it must not be polled again then).
async fn start<F: Future>(future: &mut Pin<Box<F>>) -> bool {
    tokio::select! {
        biased;
        _ = future.as_mut() => true,
        () = std::future::ready(()) => false,
    }
}

/// A loopback peer for `node` that never closes on its own: a plain socket the test holds.
async fn raw_peer(node: &Node) -> (openp2p_tokio::PeerId, tokio::net::TcpStream) {
    let listener = tokio::net::TcpListener::bind(localhost())
        .await
        .expect("bind loopback");
    let peer = node
        .connect(listener.local_addr().expect("bound"))
        .await
        .expect("connect accepted");
    let (socket, _) = listener.accept().await.expect("accept");
    connected(node, peer).await;
    (peer, socket)
}

/// A stream write queued behind `shutdown` is refused by the engine (the peer is closing): the
/// stream's `flush` must say so instead of reporting the bytes delivered.
async fn a_stream_write_queued_behind_shutdown_fails_its_flush() {
    let node = Node::start(Config::default()).expect("valid config");
    let (peer, remote) = raw_peer(&node).await;
    let mut stream = node.stream(peer).expect("fresh stream");
    let mut shutdown = Box::pin(node.shutdown());
    let done = start(&mut shutdown).await;
    let wrote = stream.write_all(b"late").await;
    let flushed = tokio::time::timeout(WAIT, stream.flush())
        .await
        .expect("flush ends");
    assert!(
        wrote.is_err() || flushed.is_err(),
        "bytes the engine refused were reported flushed"
    );
    drop(remote);
    if !done {
        tokio::time::timeout(WAIT, shutdown)
            .await
            .expect("shutdown completes once the remote closed");
    }
}

/// Once `shutdown` was applied, the peer takes no sends: handles and streams are told at once.
async fn writes_after_shutdown_fail_at_once() {
    let node = Node::start(Config::default()).expect("valid config");
    let (peer, remote) = raw_peer(&node).await;
    let mut stream = node.stream(peer).expect("fresh stream");
    let mut shutdown = Box::pin(node.shutdown());
    let done = start(&mut shutdown).await;
    // A round trip through the driver: the shutdown before it was applied.
    node.global_stats().await.expect("driver running");
    assert_eq!(
        node.send_now(peer, Bytes::from_static(b"late")),
        Err(SendError::Closing)
    );
    let error = stream.write_all(b"late").await.expect_err("writes refused");
    assert_eq!(error.kind(), std::io::ErrorKind::BrokenPipe);
    drop(remote);
    if !done {
        tokio::time::timeout(WAIT, shutdown)
            .await
            .expect("shutdown completes once the remote closed");
    }
}

/// Sends accepted while the node shuts down are applied or refused, never dropped with the
/// command channel: more of them than the driver applies in one round, behind a shutdown that
/// completes at once (the only peer is still connecting: its connect is abandoned).
async fn sends_accepted_as_shutdown_completes_are_all_reported() {
    // A listener whose accept queue is full: a connect to it stays pending (SYNs are dropped).
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    socket.bind(&localhost().into()).expect("bind loopback");
    socket.listen(0).expect("listen");
    let addr = socket
        .local_addr()
        .expect("bound")
        .as_socket()
        .expect("an IP address");
    let _filler = std::net::TcpStream::connect(addr).expect("the one queued connection");

    let node = Node::start(Config::default()).expect("valid config");
    let peer = node.connect(addr).await.expect("connect accepted");
    let mut shutdown = Box::pin(node.shutdown());
    let done = start(&mut shutdown).await;
    const SENDS: usize = 10_000;
    let mut accepted = 0u64;
    for _ in 0..SENDS {
        if node.send_now(peer, Bytes::from_static(b"x")).is_ok() {
            accepted += 1;
        }
    }
    if !done {
        tokio::time::timeout(WAIT, shutdown)
            .await
            .expect("shutdown completes");
    }
    let mut reported = 0u64;
    let mut after_complete = Vec::new();
    let mut complete = false;
    tokio::time::timeout(WAIT, async {
        while let Some(event) = node.next_event().await {
            if complete {
                after_complete.push(format!("{event:?}"));
            }
            match event {
                Event::ShutdownComplete => complete = true,
                Event::SendRefused { data, .. } => reported += data.len() as u64,
                Event::ConnectFailed { unsent, .. } | Event::Disconnected { unsent, .. } => {
                    reported += unsent
                }
                _ => {}
            }
        }
    })
    .await
    .expect("the event stream ends");
    assert_eq!(reported, accepted, "every accepted byte is reported unsent");
    assert!(complete, "ShutdownComplete was delivered");
    after_complete.truncate(3);
    assert!(
        after_complete.is_empty(),
        "ShutdownComplete is the last event, but these followed: {after_complete:?}"
    );
}

/// `disconnect` is graceful: what the stream wrote before it is still delivered, and `flush`
/// waits for it (then succeeds) instead of failing at once.
async fn flush_after_disconnect_waits_for_the_queued_bytes() {
    let node = Node::start(Config::default()).expect("valid config");
    let (peer, mut remote) = raw_peer(&node).await;
    // Slow enough that the bytes are still queued when `disconnect` returns.
    node.set_limits(peer, Limits::upload(Rate::per_second(256 * 1024)))
        .await
        .expect("live peer");
    let mut stream = node.stream(peer).expect("fresh stream");
    let message: Vec<u8> = (0..96 * 1024).map(|i| pattern(3, i)).collect();
    stream.write_all(&message).await.expect("write");
    node.disconnect(peer).await.expect("live peer");
    let reader = tokio::spawn(async move {
        let mut got = Vec::new();
        remote.read_to_end(&mut got).await.map(|_| got)
    });
    tokio::time::timeout(WAIT, stream.flush())
        .await
        .expect("flush ends")
        .expect("the queued bytes are written");
    let got = tokio::time::timeout(WAIT, reader)
        .await
        .expect("the remote sees our FIN")
        .expect("reader task")
        .expect("read");
    assert!(
        got == message,
        "the remote got every byte written before disconnect"
    );
}

/// A peer's `Disconnected` is its last event (but for `SendRefused`): a `Writable` made due by
/// the same write turn that ended the peer must not follow it.
///
/// The peer's queue is held by a tiny upload limit until `send_now` reports `QueueFull`; the
/// remote then half-closes (without `half_close` the peer drains and closes) and the limit is
/// lifted: one write turn takes the queue in several 64-message writes, and the last one closes
/// the peer.
async fn no_writable_follows_disconnected() {
    let config = Config {
        send_queue_high_water: 32 * 1024,
        send_queue_low_water: 16 * 1024,
        ..Config::default()
    };
    let node = Node::start(config).expect("valid config");
    let (peer, mut remote) = raw_peer(&node).await;
    node.set_limits(peer, Limits::upload(Rate::per_second(1)))
        .await
        .expect("live peer");
    let message = Bytes::from(vec![7u8; 64]);
    let mut accepted = 0;
    while node.send_now(peer, message.clone()).is_ok() {
        accepted += 1;
        assert!(accepted < 10_000, "the queue fills up");
    }
    remote.shutdown().await.expect("half-close the remote");
    tokio::time::timeout(WAIT, async {
        // The node reads the remote's EOF and starts draining.
        while node
            .peer_info(peer)
            .await
            .is_some_and(|info| info.state == PeerState::Connected)
        {}
    })
    .await
    .expect("the node sees the remote's EOF");
    // `UnknownId` if the peer is already gone (the test then proves nothing, but cannot fail).
    let _ = node.set_limits(peer, Limits::UNLIMITED).await;
    let mut after_disconnect = Vec::new();
    let mut disconnected = false;
    tokio::time::timeout(WAIT, async {
        while !disconnected {
            let event = node.next_event().await.expect("node running");
            if event.peer() != Some(peer) {
                continue;
            }
            if matches!(event, Event::Disconnected { .. }) {
                disconnected = true;
            }
        }
        // Whatever the driver delivered with it is in the queue now.
        while let Some(event) = node.try_next_event() {
            if event.peer() == Some(peer) {
                after_disconnect.push(event);
            }
        }
    })
    .await
    .expect("the peer closes");
    assert!(
        after_disconnect.is_empty(),
        "events after Disconnected: {after_disconnect:?}"
    );
}

/// Misuse never panics and always answers: stale ids, a second `stream`, and every call after
/// the node has stopped.
async fn misuse_is_answered_not_panicked() {
    let (server, addr) = listening(Config::default()).await;
    let node = Node::start(Config::default()).expect("valid config");
    let peer = node.connect(addr).await.expect("connect accepted");
    let stream = node.stream(peer).expect("first take");
    assert_eq!(
        node.stream(peer).map(|_| ()),
        Err(StreamError::AlreadyTaken)
    );
    node.abort(peer).await.expect("live peer");
    wait_for(&node, |e| match e {
        Event::Disconnected { peer: p, .. } | Event::ConnectFailed { peer: p, .. } if p == peer => {
            Some(())
        }
        _ => None,
    })
    .await;
    // `peer` is stale now.
    let data = Bytes::from_static(b"x");
    assert_eq!(
        node.send_now(peer, data.clone()),
        Err(SendError::UnknownPeer)
    );
    assert_eq!(node.send_many_now(&[peer], data.clone()).len(), 1);
    assert_eq!(node.queued(peer), None);
    assert_eq!(node.stream(peer).map(|_| ()), Err(StreamError::UnknownPeer));
    assert_eq!(node.disconnect(peer).await, Err(UnknownId));
    assert_eq!(node.abort(peer).await, Err(UnknownId));
    assert_eq!(
        node.set_limits(peer, Limits::UNLIMITED).await,
        Err(UnknownId)
    );
    assert!(node.stats(peer).await.is_none());
    assert!(node.peer_info(peer).await.is_none());
    drop(stream);
    tokio::time::timeout(WAIT, node.shutdown())
        .await
        .expect("shutdown completes");
    tokio::time::timeout(WAIT, async { while node.next_event().await.is_some() {} })
        .await
        .expect("the event stream ends");
    // Stopped.
    assert!(node.next_event().await.is_none());
    assert_eq!(
        node.send_now(peer, data.clone()),
        Err(SendError::UnknownPeer)
    );
    assert_eq!(node.listen(localhost()).await, Err(BindError::ShuttingDown));
    assert_eq!(node.connect(addr).await, Err(ConnectError::ShuttingDown));
    assert!(node.global_stats().await.is_none());
    assert!(node.driver_stats().await.is_none());
    node.set_global_limits(Limits::UNLIMITED).await;
    node.shutdown().await;
    server.shutdown().await;
}

on_both_flavours!(
    misuse_is_answered_not_panicked,
    no_writable_follows_disconnected,
    flush_after_disconnect_waits_for_the_queued_bytes,
    a_stream_write_queued_behind_shutdown_fails_its_flush,
    writes_after_shutdown_fail_at_once,
    sends_accepted_as_shutdown_completes_are_all_reported,
);
