//! `openp2p-async-std` behind the facade, its driver spawned on async-std's or smol's executor.

use super::{released_port, Harness, TestNode, PATIENCE};
use async_io::Timer;
use futures_lite::future;
use openp2p_async_std::Node;
use openp2p_core::{
    Bytes, Config, ConnectError, Event, Framing, GlobalStats, Limits, PeerId, PeerKey, PeerStats,
    SendError, SendManyFailures,
};
use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Which executor runs the driver task and the facade's `block_on`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Executor {
    /// `async_std::task::spawn` and `async_std::task::block_on`.
    AsyncStd,
    /// `smol::spawn` and `smol::block_on`.
    Smol,
}

impl Executor {
    fn block_on<F: Future>(self, f: F) -> F::Output {
        match self {
            Executor::AsyncStd => async_std::task::block_on(f),
            Executor::Smol => smol::block_on(f),
        }
    }
}

/// Starts `openp2p-async-std` nodes whose drivers are tasks of one executor.
#[derive(Debug, Clone, Copy)]
pub struct AsyncStdHarness {
    executor: Executor,
}

impl AsyncStdHarness {
    /// Nodes on this executor.
    pub fn new(executor: Executor) -> AsyncStdHarness {
        AsyncStdHarness { executor }
    }
}

impl Harness for AsyncStdHarness {
    type Node = AsyncStdNode;

    fn name(&self) -> &'static str {
        match self.executor {
            Executor::AsyncStd => "async-std",
            Executor::Smol => "smol",
        }
    }

    fn start(&mut self, config: Config) -> AsyncStdNode {
        let (node, driver) = Node::new(config).expect("async-std: a valid configuration");
        match self.executor {
            Executor::AsyncStd => drop(async_std::task::spawn(driver)),
            Executor::Smol => smol::spawn(driver).detach(),
        }
        AsyncStdNode {
            executor: self.executor,
            node,
        }
    }

    fn closed_addr(&mut self) -> SocketAddr {
        released_port()
    }

    fn is_virtual(&self) -> bool {
        false
    }
}

/// An `openp2p-async-std` node.
#[derive(Debug)]
pub struct AsyncStdNode {
    executor: Executor,
    node: Node,
}

impl AsyncStdNode {
    fn run<F: Future>(&self, f: F) -> F::Output {
        self.executor.block_on(f)
    }
}

async fn within<T>(timeout: Duration, f: impl Future<Output = Option<T>>) -> Option<T> {
    future::or(f, async {
        Timer::after(timeout).await;
        None
    })
    .await
}

impl TestNode for AsyncStdNode {
    fn listen(&self, addr: SocketAddr) -> SocketAddr {
        self.run(self.node.listen(addr))
            .unwrap_or_else(|e| panic!("async-std: listen on {addr}: {e}"))
    }

    fn listen_with(&self, addr: SocketAddr, framing: Framing) -> SocketAddr {
        self.run(self.node.listen_with(addr, framing))
            .unwrap_or_else(|e| panic!("async-std: listen on {addr}: {e}"))
    }

    fn connect(&self, addr: SocketAddr) -> Result<PeerId, ConnectError> {
        self.run(self.node.connect(addr))
    }

    fn connect_with(&self, addr: SocketAddr, framing: Framing) -> Result<PeerId, ConnectError> {
        self.run(self.node.connect_with(addr, framing))
    }

    fn connect_pinned(&self, addr: SocketAddr, key: PeerKey) -> Result<PeerId, ConnectError> {
        self.run(self.node.connect_pinned(addr, key))
    }

    fn send(&self, peer: PeerId, data: Bytes) -> Result<(), SendError> {
        self.run(self.node.send(peer, data))
    }

    fn send_many(&self, peers: &[PeerId], data: Bytes) -> SendManyFailures {
        self.run(self.node.send_many(peers, data))
    }

    fn disconnect(&self, peer: PeerId) {
        let _ = self.run(self.node.disconnect(peer));
    }

    fn abort(&self, peer: PeerId) {
        let _ = self.run(self.node.abort(peer));
    }

    fn set_limits(&self, peer: PeerId, limits: Limits) {
        let _ = self.run(self.node.set_limits(peer, limits));
    }

    fn set_global_limits(&self, limits: Limits) {
        self.run(self.node.set_global_limits(limits));
    }

    fn global_stats(&self) -> GlobalStats {
        self.run(self.node.global_stats())
            .expect("async-std: node running")
    }

    fn peer_stats(&self, peer: PeerId) -> Option<PeerStats> {
        self.run(self.node.stats(peer))
    }

    fn next_event(&self, timeout: Duration) -> Option<Event> {
        self.run(within(timeout, self.node.next_event()))
    }

    fn now(&self) -> Instant {
        Instant::now()
    }

    fn begin_shutdown(&self) {
        let node = self.node.clone();
        let task = async move { node.shutdown().await };
        match self.executor {
            Executor::AsyncStd => drop(async_std::task::spawn(task)),
            Executor::Smol => smol::spawn(task).detach(),
        }
    }

    fn shutdown(self) -> Vec<Event> {
        let node = &self.node;
        self.run(async {
            within(PATIENCE, async {
                node.shutdown().await;
                Some(())
            })
            .await
            .expect("async-std: shutdown within the patience");
            let mut out = Vec::new();
            while let Some(event) = within(PATIENCE, node.next_event()).await {
                let done = event == Event::ShutdownComplete;
                out.push(event);
                if done {
                    break;
                }
            }
            out
        })
    }
}
