//! Helpers shared by the loopback tests.
#![allow(dead_code)]

use openp2p_tokio::{Config, Event, Node, PeerId};
use std::net::SocketAddr;
use std::time::Duration;

/// Generous bound for anything a test waits for.
pub const WAIT: Duration = Duration::from_secs(30);

pub fn localhost() -> SocketAddr {
    "127.0.0.1:0".parse().expect("a literal address")
}

/// A node listening on an OS-chosen loopback port.
pub async fn listening(config: Config) -> (Node, SocketAddr) {
    let node = Node::start(config).expect("valid config");
    let addr = node.listen(localhost()).await.expect("bind loopback");
    (node, addr)
}

/// Waits for the first event that `pick` accepts, skipping the others.
pub async fn wait_for<T>(node: &Node, mut pick: impl FnMut(Event) -> Option<T>) -> T {
    tokio::time::timeout(WAIT, async {
        loop {
            let event = node
                .next_event()
                .await
                .expect("node stopped while a test waited");
            if let Some(found) = pick(event) {
                return found;
            }
        }
    })
    .await
    .expect("timed out waiting for an event")
}

/// Waits for `Connected` of `peer`.
pub async fn connected(node: &Node, peer: PeerId) {
    wait_for(node, |e| {
        matches!(e, Event::Connected { peer: p, .. } if p == peer).then_some(())
    })
    .await
}

/// Waits for any inbound `Connected` and returns its peer.
pub async fn inbound(node: &Node) -> PeerId {
    wait_for(node, |e| match e {
        Event::Connected {
            peer,
            direction: openp2p_tokio::Direction::Inbound,
            ..
        } => Some(peer),
        _ => None,
    })
    .await
}

/// The test pattern: byte `i` of the stream of peer `seed`.
pub fn pattern(seed: u8, i: usize) -> u8 {
    (i as u64)
        .wrapping_mul(7)
        .wrapping_add(u64::from(seed).wrapping_mul(13)) as u8
}

/// The seed a stream's first byte encodes (13 is invertible mod 256: 13 * 197 = 1 mod 256).
pub fn seed_of(first: u8) -> u8 {
    first.wrapping_mul(197)
}

/// Runs each scenario as a test on a `current_thread` and a `multi_thread` runtime.
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
