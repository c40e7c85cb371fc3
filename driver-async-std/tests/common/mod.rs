//! The loopback harness: each scenario runs once under async-std's executor and once under
//! `smol::block_on`, with the node's driver spawned on that runtime's executor.

#![allow(dead_code)]

use async_io::Timer;
use bytes::Bytes;
use futures_lite::future;
use openp2p_async_std::{Config, Event, Node, PeerId};
use std::future::Future;
use std::time::Duration;

/// Upper bound for any single wait; a healthy run needs a fraction of it.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// Where a scenario runs.
pub trait Runtime {
    /// Runs the scenario to completion on this runtime.
    fn block_on<F: Future<Output = ()>>(scenario: F);
    /// Starts a node whose driver is a task of this runtime's executor.
    fn start(config: Config) -> Node;
}

/// async-std: `task::block_on` for the scenario, `task::spawn` for the driver.
pub struct AsyncStd;

impl Runtime for AsyncStd {
    fn block_on<F: Future<Output = ()>>(scenario: F) {
        async_std::task::block_on(scenario)
    }

    fn start(config: Config) -> Node {
        let (node, driver) = Node::new(config).expect("valid config");
        async_std::task::spawn(driver);
        node
    }
}

/// smol: `smol::block_on` for the scenario, `smol::spawn` for the driver.
pub struct Smol;

impl Runtime for Smol {
    fn block_on<F: Future<Output = ()>>(scenario: F) {
        smol::block_on(scenario)
    }

    fn start(config: Config) -> Node {
        let (node, driver) = Node::new(config).expect("valid config");
        smol::spawn(driver).detach();
        node
    }
}

/// Runs `scenario` on runtime `R`, failing it if it has not finished within a few patiences.
pub fn run<R: Runtime, F: Future<Output = ()>>(scenario: impl FnOnce(fn(Config) -> Node) -> F) {
    let scenario = scenario(R::start);
    R::block_on(async move {
        future::or(scenario, async {
            Timer::after(PATIENCE * 3).await;
            panic!("scenario did not finish in time");
        })
        .await
    })
}

/// Awaits `f`, failing the test with `what` if it takes longer than [`PATIENCE`].
pub async fn within<T>(what: &str, f: impl Future<Output = T>) -> T {
    future::or(f, async {
        Timer::after(PATIENCE).await;
        panic!("timed out waiting for {what}");
    })
    .await
}

/// The node's next event.
pub async fn next(node: &Node, what: &str) -> Event {
    within(what, node.next_event())
        .await
        .unwrap_or_else(|| panic!("events ended waiting for {what}"))
}

/// Skips events until one matches; returns it.
pub async fn expect(node: &Node, what: &str, mut wanted: impl FnMut(&Event) -> bool) -> Event {
    loop {
        let event = next(node, what).await;
        if wanted(&event) {
            return event;
        }
    }
}

/// The `Connected` peer id of the next inbound connection.
pub async fn inbound(node: &Node) -> PeerId {
    match expect(node, "inbound Connected", |e| {
        matches!(e, Event::Connected { .. })
    })
    .await
    {
        Event::Connected { peer, .. } => peer,
        _ => unreachable!("matched Connected"),
    }
}

/// Concatenates `peer`'s received data until `len` bytes arrived.
pub async fn collect(node: &Node, peer: PeerId, len: usize) -> Vec<u8> {
    let mut got = Vec::new();
    while got.len() < len {
        let event = expect(
            node,
            "Received",
            |e| matches!(e, Event::Received { peer: p, .. } if *p == peer),
        )
        .await;
        if let Event::Received { data, .. } = event {
            got.extend_from_slice(&data);
        }
    }
    got
}

/// Bytes where each follows the one before (`b[i+1] == (b[i] + 1) % 251`): any loss,
/// duplication or reordering breaks the chain. `seed` picks the first byte.
pub fn pattern(seed: usize, len: usize) -> Bytes {
    (0..len)
        .map(|i| ((seed + i) % 251) as u8)
        .collect::<Vec<u8>>()
        .into()
}

/// Checks a chunk continues the pattern after `last` (the previous byte, if any).
pub fn continues(last: &mut Option<u8>, chunk: &[u8]) -> bool {
    for &b in chunk {
        if let Some(prev) = *last {
            if b != ((prev as usize + 1) % 251) as u8 {
                return false;
            }
        }
        *last = Some(b);
    }
    true
}

/// Generates one `#[test]` per runtime for each named scenario.
#[macro_export]
macro_rules! on_both_runtimes {
    ($($scenario:ident),* $(,)?) => {
        mod async_std_runtime {
            $(#[test]
            fn $scenario() {
                $crate::common::run::<$crate::common::AsyncStd, _>(super::$scenario);
            })*
        }
        mod smol_runtime {
            $(#[test]
            fn $scenario() {
                $crate::common::run::<$crate::common::Smol, _>(super::$scenario);
            })*
        }
    };
}
