//! An application that takes events slower than the socket delivers them stops the reads: the
//! data received but not yet taken stays bounded, and all of it still arrives, in order.

#[macro_use]
mod common;

use bytes::Bytes;
use common::{inbound, listening, pattern, WAIT};
use openp2p_tokio::{Config, Event};

/// Data the driver may hold for the application past the pause mark: one pass of reads.
const SLACK: u64 = 8 << 20;

async fn a_slow_event_consumer_bounds_what_is_read_ahead() {
    let config = Config {
        sent_events: false,
        ..Config::default()
    };
    let (server, addr) = listening(config.clone()).await;
    let (client, _) = listening(config).await;
    let peer = client.connect(addr).await.expect("connect");
    let remote = inbound(&server).await;
    let total = 48usize << 20;
    let payload: Vec<u8> = (0..total).map(|i| pattern(3, i)).collect();
    let payload = Bytes::from(payload);
    let chunk = 1 << 20;
    let sender = {
        let client = client.clone();
        let payload = payload.clone();
        tokio::spawn(async move {
            let mut at = 0;
            while at < payload.len() {
                match client.send(peer, payload.slice(at..at + chunk)).await {
                    Ok(()) => at += chunk,
                    Err(_) => tokio::task::yield_now().await,
                }
            }
        })
    };
    let mut taken = 0u64;
    let mut worst = 0u64;
    tokio::time::timeout(WAIT, async {
        while taken < total as u64 {
            let event = server.next_event().await.expect("server running");
            if let Event::Received { peer: from, data } = event {
                assert_eq!(from, remote);
                let at = taken as usize;
                assert!(data
                    .iter()
                    .enumerate()
                    .all(|(i, b)| *b == pattern(3, at + i)));
                taken += data.len() as u64;
                let read = server.global_stats().await.expect("running").received.bytes;
                worst = worst.max(read - taken);
                // A slow application: give the driver every chance to read ahead.
                for _ in 0..8 {
                    tokio::task::yield_now().await;
                }
            }
        }
    })
    .await
    .expect("all data arrives");
    sender.await.expect("sender");
    let high = (4 * Config::default().segment_size as u64).max(1 << 20);
    assert!(
        worst <= high + SLACK,
        "read ahead of the application by {worst} bytes"
    );
    println!("read ahead at most {worst} bytes (pause mark {high})");
}

on_both_flavours!(a_slow_event_consumer_bounds_what_is_read_ahead);
