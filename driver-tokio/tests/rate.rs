//! Rate limits, measured over seconds. In a test binary of their own, so that the heavy transfer
//! scenarios do not starve them of CPU (test binaries run one after another). Every scenario
//! runs on both Tokio runtime flavours.

#[macro_use]
mod common;

use bytes::Bytes;
use common::*;
use openp2p_tokio::{Config, Event, Limits, Node, Rate};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

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

on_both_flavours!(upload_limit_holds, stream_writes_obey_the_upload_limit);
