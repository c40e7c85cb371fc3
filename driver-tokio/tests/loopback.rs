//! The loopback scenarios of every driver, on both Tokio runtime flavours.

mod common;

use bytes::Bytes;
use common::*;
use openp2p_tokio::{
    Config, ConnectError, ConnectFailure, Direction, DisconnectReason, Event, Framing, Limits,
    Node, PeerId, Rate, Refusal, SendError,
};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

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

/// An upload limit of 256 KiB/s holds within 5 % over 4 s.
async fn upload_limit_holds() {
    const RATE: u64 = 256 * 1024;
    let (server, addr) = listening(Config::default()).await;
    let client = Node::start(Config::default()).expect("valid config");
    let peer = client.connect(addr).await.expect("connect accepted");
    client
        .set_limits(peer, Limits::upload(Rate::per_second(RATE)))
        .await
        .expect("live peer");
    client
        .send_now(peer, Bytes::from(vec![7u8; 3 << 20]))
        .expect("queued");
    // Measure from the first byte on (the initial burst is excluded by the window's start).
    let first = wait_for(&server, |e| {
        matches!(e, Event::Received { .. }).then(Instant::now)
    })
    .await;
    let window = Duration::from_secs(4);
    let mut bytes = 0u64;
    let deadline = first + window;
    while let Ok(Some(event)) = tokio::time::timeout_at(deadline.into(), server.next_event()).await
    {
        if let Event::Received { data, .. } = event {
            bytes += data.len() as u64;
        }
    }
    let rate = bytes as f64 / window.as_secs_f64();
    let error = (rate - RATE as f64).abs() / RATE as f64;
    assert!(
        error <= 0.05,
        "measured {rate:.0} B/s against {RATE} B/s ({:.1} % off)",
        error * 100.0
    );
    client.abort(peer).await.expect("live peer");
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

/// The README echo: the server reads each peer's stream and writes it back; data that arrived
/// before the stream was taken is not lost.
async fn stream_echo() {
    let (server, addr) = listening(Config::default()).await;
    let echo = server.clone();
    tokio::spawn(async move {
        while let Some(event) = echo.next_event().await {
            if let Event::Connected {
                peer,
                direction: Direction::Inbound,
                ..
            } = event
            {
                let stream = echo.stream(peer).expect("fresh peer");
                let (mut reader, mut writer) = tokio::io::split(stream);
                tokio::spawn(async move { tokio::io::copy(&mut reader, &mut writer).await });
            }
        }
    });
    let client = Node::start(Config::default()).expect("valid config");
    let peer = client.connect(addr).await.expect("connect accepted");
    let mut stream = client.stream(peer).expect("stream of a connecting peer");
    let message: Vec<u8> = (0..200_000).map(|i| pattern(9, i)).collect();
    let (mut reader, mut writer) = tokio::io::split(&mut stream);
    let write = async {
        writer.write_all(&message).await.expect("write");
        writer.flush().await.expect("flush");
    };
    let mut echoed = vec![0u8; message.len()];
    let read = reader.read_exact(&mut echoed);
    let (_, read) = tokio::time::timeout(WAIT, async { tokio::join!(write, read) })
        .await
        .expect("echo within the time limit");
    read.expect("read");
    assert!(echoed == message, "echo returns the same bytes");
    stream.shutdown().await.expect("shutdown");
    let reason = wait_for(&client, |e| match e {
        Event::Disconnected { reason, .. } => Some(reason),
        _ => None,
    })
    .await;
    assert_eq!(reason, DisconnectReason::Local);
    let mut rest = Vec::new();
    assert_eq!(stream.read_to_end(&mut rest).await.expect("clean end"), 0);
    client.shutdown().await;
    server.shutdown().await;
}

/// A stream writer on a limited peer is paced by the limit (256 KiB/s, 1 MiB written).
async fn stream_writes_obey_the_upload_limit() {
    const RATE: u64 = 256 * 1024;
    let config = Config {
        send_queue_high_water: 64 * 1024,
        send_queue_low_water: 16 * 1024,
        ..Config::default()
    };
    let (server, addr) = listening(Config::default()).await;
    let client = Node::start(config).expect("valid config");
    let peer = client.connect(addr).await.expect("connect accepted");
    client
        .set_limits(peer, Limits::upload(Rate::per_second(RATE)))
        .await
        .expect("live");
    let mut stream = client.stream(peer).expect("fresh peer");
    let start = Instant::now();
    stream.write_all(&vec![5u8; 1 << 20]).await.expect("write");
    stream.flush().await.expect("flush");
    let elapsed = start.elapsed().as_secs_f64();
    // 1 MiB at 256 KiB/s is 4 s, less the initial burst (12.8 KiB) and the window.
    assert!(
        (3.6..4.6).contains(&elapsed),
        "1 MiB took {elapsed:.2} s at 256 KiB/s"
    );
    drop(stream);
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

/// With `half_close`, the stream echo answers a client that shuts down its sending side and
/// then reads the replies to the end.
async fn half_close_echo_answers_after_the_clients_eof() {
    let (server, addr) = listening(Config {
        half_close: true,
        ..Config::default()
    })
    .await;
    let echo = server.clone();
    tokio::spawn(async move {
        while let Some(event) = echo.next_event().await {
            if let Event::Connected { peer, .. } = event {
                let Ok(stream) = echo.stream(peer) else {
                    continue;
                };
                let (mut reader, mut writer) = tokio::io::split(stream);
                tokio::spawn(async move {
                    tokio::io::copy(&mut reader, &mut writer).await?;
                    writer.shutdown().await
                });
            }
        }
    });
    let mut client = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let message: Vec<u8> = (0..300_000).map(|i| pattern(3, i)).collect();
    client.write_all(&message).await.expect("write");
    client.shutdown().await.expect("FIN");
    let mut echoed = Vec::new();
    tokio::time::timeout(WAIT, client.read_to_end(&mut echoed))
        .await
        .expect("echo within the time limit")
        .expect("read");
    assert!(
        echoed == message,
        "all {} bytes echoed after the client's EOF",
        message.len()
    );
    server.shutdown().await;
}

/// A stream nobody reads stops the node from reading its socket (TCP then stops the sender)
/// instead of buffering without bound; reading it later delivers everything in order.
async fn an_unread_stream_pauses_reading() {
    const SIZE: usize = 32 << 20;
    let (server, addr) = listening(Config::default()).await;
    let client = Node::start(Config {
        send_queue_high_water: 2 * SIZE,
        ..Config::default()
    })
    .expect("valid config");
    let peer = client.connect(addr).await.expect("accepted");
    let remote = inbound(&server).await;
    let mut stream = server.stream(remote).expect("fresh peer");
    client
        .send_now(
            peer,
            Bytes::from((0..SIZE).map(|i| pattern(5, i)).collect::<Vec<u8>>()),
        )
        .expect("queued");
    // Wait until the transfer stalls: the client's queue stops shrinking.
    let stalled = tokio::time::timeout(WAIT, async {
        let (mut last, mut still) = (u64::MAX, 0);
        loop {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let queued = client.stats(peer).await.expect("live").queued;
            still = if queued == last { still + 1 } else { 0 };
            last = queued;
            if still == 10 {
                return queued;
            }
        }
    })
    .await
    .expect("the transfer stalls");
    let received = server.global_stats().await.expect("running").received.bytes;
    assert!(stalled > 0, "the sender still holds data");
    assert!(
        received < 8 << 20,
        "the node read {received} bytes for a stream nobody reads"
    );
    let mut all = vec![0u8; SIZE];
    tokio::time::timeout(WAIT, stream.read_exact(&mut all))
        .await
        .expect("in time")
        .expect("read");
    assert!(
        all.iter().enumerate().all(|(i, b)| *b == pattern(5, i)),
        "in order, intact"
    );
    client.shutdown().await;
    server.shutdown().await;
}

/// Dropping a stream that was never read closes its peer gracefully: the data still arriving is
/// read and discarded (reading is not left paused), so the close completes without the linger
/// timeout.
async fn dropping_an_unread_stream_closes_gracefully() {
    const SIZE: usize = 8 << 20;
    let server_config = Config {
        linger_timeout: Duration::from_secs(120),
        ..Config::default()
    };
    let (server, addr) = listening(server_config).await;
    let client = Node::start(Config {
        send_queue_high_water: 2 * SIZE,
        ..Config::default()
    })
    .expect("valid config");
    let peer = client.connect(addr).await.expect("accepted");
    let remote = inbound(&server).await;
    let stream = server.stream(remote).expect("fresh peer");
    client
        .send_now(peer, Bytes::from(vec![9u8; SIZE]))
        .expect("queued");
    // Some data arrived (and is buffered for the stream) before it is dropped.
    tokio::time::timeout(WAIT, async {
        while server.global_stats().await.expect("running").received.bytes == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("data arrives");
    drop(stream);
    let reason = wait_for(&server, |e| match e {
        Event::Disconnected { peer, reason, .. } if peer == remote => Some(reason),
        _ => None,
    })
    .await;
    assert_eq!(reason, DisconnectReason::Local);
    let (reason, unsent) = wait_for(&client, |e| match e {
        Event::Disconnected { reason, unsent, .. } => Some((reason, unsent)),
        _ => None,
    })
    .await;
    assert_eq!(
        (reason, unsent),
        (DisconnectReason::Remote, 0),
        "the client flushed everything"
    );
    client.shutdown().await;
    server.shutdown().await;
}

macro_rules! on_both_flavours {
    ($($scenario:ident),* $(,)?) => {
        mod current_thread {
            $(
                #[tokio::test(flavor = "current_thread")]
                async fn $scenario() {
                    super::$scenario().await
                }
            )*
        }
        mod multi_thread {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario().await
                }
            )*
        }
    };
}

on_both_flavours!(
    lifecycle,
    hundred_peers_one_mib_each,
    upload_limit_holds,
    graceful_disconnect_flushes,
    abort_reports_unsent,
    refused_connect,
    max_peers_is_enforced,
    stream_echo,
    stream_writes_obey_the_upload_limit,
    send_answers_without_a_round_trip,
    half_close_echo_answers_after_the_clients_eof,
    an_unread_stream_pauses_reading,
    dropping_an_unread_stream_closes_gracefully,
);
