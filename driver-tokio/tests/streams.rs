//! Per-peer `AsyncRead + AsyncWrite` streams. Every scenario runs on both Tokio runtime flavours.

#[macro_use]
mod common;

use bytes::Bytes;
use common::*;
use openp2p_tokio::{Config, Direction, DisconnectReason, Event, Node};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

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

on_both_flavours!(
    stream_echo,
    half_close_echo_answers_after_the_clients_eof,
    an_unread_stream_pauses_reading,
    dropping_an_unread_stream_closes_gracefully,
);
