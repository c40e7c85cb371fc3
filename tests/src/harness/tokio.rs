//! `openp2p-tokio` behind the facade: one multi-thread runtime per harness runs every node's
//! driver task; the facade blocks on each call.

use super::{released_port, Harness, TestNode, PATIENCE};
use openp2p_core::{
    Bytes, Config, ConnectError, Event, Framing, GlobalStats, Limits, PeerId, PeerKey, PeerStats,
    SendError, SendManyFailures,
};
use openp2p_tokio::Node;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;

/// Starts `openp2p-tokio` nodes on a shared two-worker runtime.
#[derive(Debug, Clone)]
pub struct TokioHarness {
    runtime: Arc<Runtime>,
}

impl Default for TokioHarness {
    fn default() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio: build a runtime");
        TokioHarness {
            runtime: Arc::new(runtime),
        }
    }
}

impl Harness for TokioHarness {
    type Node = TokioNode;

    fn name(&self) -> &'static str {
        "tokio"
    }

    fn start(&mut self, config: Config) -> TokioNode {
        let _inside = self.runtime.enter();
        let node = Node::start(config).expect("tokio: start a node");
        TokioNode {
            runtime: Arc::clone(&self.runtime),
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

/// An `openp2p-tokio` node and the runtime its driver runs on.
#[derive(Debug)]
pub struct TokioNode {
    runtime: Arc<Runtime>,
    node: Node,
}

impl TestNode for TokioNode {
    fn listen(&self, addr: SocketAddr) -> SocketAddr {
        self.runtime
            .block_on(self.node.listen(addr))
            .unwrap_or_else(|e| panic!("tokio: listen on {addr}: {e}"))
    }

    fn listen_with(&self, addr: SocketAddr, framing: Framing) -> SocketAddr {
        self.runtime
            .block_on(self.node.listen_with(addr, framing))
            .unwrap_or_else(|e| panic!("tokio: listen on {addr}: {e}"))
    }

    fn connect(&self, addr: SocketAddr) -> Result<PeerId, ConnectError> {
        self.runtime.block_on(self.node.connect(addr))
    }

    fn connect_with(&self, addr: SocketAddr, framing: Framing) -> Result<PeerId, ConnectError> {
        self.runtime.block_on(self.node.connect_with(addr, framing))
    }

    fn connect_pinned(&self, addr: SocketAddr, key: PeerKey) -> Result<PeerId, ConnectError> {
        self.runtime.block_on(self.node.connect_pinned(addr, key))
    }

    fn send(&self, peer: PeerId, data: Bytes) -> Result<(), SendError> {
        self.runtime.block_on(self.node.send(peer, data))
    }

    fn send_many(&self, peers: &[PeerId], data: Bytes) -> SendManyFailures {
        self.runtime.block_on(self.node.send_many(peers, data))
    }

    fn disconnect(&self, peer: PeerId) {
        let _ = self.runtime.block_on(self.node.disconnect(peer));
    }

    fn abort(&self, peer: PeerId) {
        let _ = self.runtime.block_on(self.node.abort(peer));
    }

    fn set_limits(&self, peer: PeerId, limits: Limits) {
        let _ = self.runtime.block_on(self.node.set_limits(peer, limits));
    }

    fn set_global_limits(&self, limits: Limits) {
        self.runtime.block_on(self.node.set_global_limits(limits));
    }

    fn global_stats(&self) -> GlobalStats {
        self.runtime
            .block_on(self.node.global_stats())
            .expect("tokio: node running")
    }

    fn peer_stats(&self, peer: PeerId) -> Option<PeerStats> {
        self.runtime.block_on(self.node.stats(peer))
    }

    fn next_event(&self, timeout: Duration) -> Option<Event> {
        self.runtime
            .block_on(async { tokio::time::timeout(timeout, self.node.next_event()).await })
            .ok()
            .flatten()
    }

    fn now(&self) -> Instant {
        Instant::now()
    }

    fn begin_shutdown(&self) {
        let node = self.node.clone();
        self.runtime.spawn(async move { node.shutdown().await });
    }

    fn shutdown(self) -> Vec<Event> {
        let node = &self.node;
        self.runtime.block_on(async {
            tokio::time::timeout(PATIENCE, node.shutdown())
                .await
                .expect("tokio: shutdown within the patience");
            let mut out = Vec::new();
            while let Ok(Some(event)) = tokio::time::timeout(PATIENCE, node.next_event()).await {
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
