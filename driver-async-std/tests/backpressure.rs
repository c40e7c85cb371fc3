//! An application that takes events slower than the socket delivers them stops the reads: the
//! data received but not yet taken stays bounded, and all of it still arrives, in order.

mod common;

use common::{inbound, pattern, run, within, AsyncStd, Smol};
use openp2p_async_std::{Config, Event, Node};

/// Data the driver may hold for the application past the pause mark: one turn of reads.
const SLACK: u64 = 8 << 20;

async fn slow_event_consumer(start: fn(Config) -> Node) {
    let config = Config {
        sent_events: false,
        ..Config::default()
    };
    let server = start(config.clone());
    let addr = server
        .listen("127.0.0.1:0".parse().expect("address"))
        .await
        .expect("listen");
    let client = start(config);
    let peer = client.connect(addr).await.expect("connect");
    let remote = inbound(&server).await;
    let total = 48usize << 20;
    let data = pattern(3, total);
    let sender = {
        let client = client.clone();
        let data = data.clone();
        async move {
            let mut at = 0;
            while at < total {
                match client.send(peer, data.slice(at..at + (1 << 20))).await {
                    Ok(()) => at += 1 << 20,
                    Err(_) => futures_lite::future::yield_now().await,
                }
            }
        }
    };
    let receiver = async {
        let mut taken = 0usize;
        let mut worst = 0u64;
        while taken < total {
            if let Event::Received {
                peer: from,
                data: got,
            } = server.next_event().await.expect("running")
            {
                assert_eq!(from, remote);
                assert_eq!(got, data.slice(taken..taken + got.len()));
                taken += got.len();
                let read = server.global_stats().await.expect("running").received.bytes;
                worst = worst.max(read - taken as u64);
                for _ in 0..8 {
                    futures_lite::future::yield_now().await;
                }
            }
        }
        worst
    };
    let (_, worst) = within("the transfer", futures_lite::future::zip(sender, receiver)).await;
    assert!(
        worst <= (1 << 20) + SLACK,
        "read ahead of the application by {worst} bytes"
    );
}

#[test]
fn a_slow_event_consumer_bounds_what_is_read_ahead_on_async_std() {
    run::<AsyncStd, _>(slow_event_consumer);
}

#[test]
fn a_slow_event_consumer_bounds_what_is_read_ahead_on_smol() {
    run::<Smol, _>(slow_event_consumer);
}
