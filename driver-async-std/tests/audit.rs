//! Correctness audit: interleavings a demanding user hits (sends racing the node's end, send
//! credit, wake-ups). Where an interleaving must be forced, the test polls the node's [`Driver`]
//! by hand, so the order of commands and driver rounds is exact.

mod common;

use bytes::Bytes;
use futures_lite::future::{self, poll_once};
use openp2p_async_std::{Config, Event, Node, SendError};
use std::net::TcpListener;
use std::pin::pin;

/// Every send the handle accepted (`Ok`) is written, counted as `unsent` in the peer's last event,
/// or handed back as `SendRefused`, even when the node finishes with sends still queued for it.
#[test]
fn sends_queued_when_the_node_finishes_are_handed_back() {
    const SENDS: usize = 2_000;
    future::block_on(async {
        let (node, mut driver) = Node::new(Config::default()).expect("valid config");
        let target = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = target.local_addr().expect("addr");

        // The driver learns of the peer; its connect is still in flight (only the driver's next
        // round could complete it, and that round applies the queued commands first).
        let mut connect = pin!(node.connect(addr));
        assert!(
            poll_once(&mut connect).await.is_none(),
            "waits for the driver"
        );
        assert!(poll_once(&mut driver).await.is_none());
        let peer = connect.await.expect("connect queued");

        // Shutdown, then a burst of sends the handle accepts before the driver runs again.
        let mut shutdown = pin!(node.shutdown());
        assert!(
            poll_once(&mut shutdown).await.is_none(),
            "waits for the driver"
        );
        for _ in 0..SENDS {
            assert_eq!(node.send_now(peer, Bytes::from_static(b"x")), Ok(()));
        }
        driver.await;
        shutdown.await;

        let (mut unsent, mut refused) = (0u64, 0usize);
        while let Some(event) = node.next_event().await {
            match event {
                Event::ConnectFailed { unsent: u, .. } | Event::Disconnected { unsent: u, .. } => {
                    unsent += u
                }
                Event::SendRefused {
                    peer: p,
                    error: SendError::UnknownPeer,
                    data,
                } if p == peer && data == "x" => refused += 1,
                _ => {}
            }
        }
        assert_eq!(
            unsent + refused as u64,
            SENDS as u64,
            "{unsent} unsent + {refused} handed back of {SENDS} accepted"
        );
    });
}
