//! `openp2p-mio` behind the facade: its handle is synchronous already.

use super::{released_port, Harness, TestNode, PATIENCE};
use openp2p_core::{
    Bytes, Config, ConnectError, Event, Framing, GlobalStats, Limits, PeerId, PeerKey, PeerStats,
    SendError, SendManyFailures,
};
use openp2p_mio::{DialError, Events, Node, RecvTimeoutError, SendWaitError};
use std::cell::RefCell;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Starts `openp2p-mio` nodes (one IO thread each).
#[derive(Debug, Default)]
pub struct MioHarness;

impl Harness for MioHarness {
    type Node = MioNode;

    fn name(&self) -> &'static str {
        "mio"
    }

    fn start(&mut self, config: Config) -> MioNode {
        let (node, events) = Node::start(config).expect("mio: start a node");
        MioNode {
            node,
            events: RefCell::new(events),
        }
    }

    fn closed_addr(&mut self) -> SocketAddr {
        released_port()
    }

    fn is_virtual(&self) -> bool {
        false
    }
}

/// An `openp2p-mio` node and its event queue.
#[derive(Debug)]
pub struct MioNode {
    node: Node,
    events: RefCell<Events>,
}

fn connect_result(r: Result<PeerId, DialError>) -> Result<PeerId, ConnectError> {
    match r {
        Ok(peer) => Ok(peer),
        Err(DialError::Rejected(e)) => Err(e),
        Err(e) => panic!("mio: connect failed: {e}"),
    }
}

impl TestNode for MioNode {
    fn listen(&self, addr: SocketAddr) -> SocketAddr {
        self.node
            .listen(addr)
            .unwrap_or_else(|e| panic!("mio: listen on {addr}: {e}"))
    }

    fn listen_with(&self, addr: SocketAddr, framing: Framing) -> SocketAddr {
        self.node
            .listen_with(addr, Some(framing))
            .unwrap_or_else(|e| panic!("mio: listen on {addr}: {e}"))
    }

    fn connect(&self, addr: SocketAddr) -> Result<PeerId, ConnectError> {
        connect_result(self.node.connect(addr))
    }

    fn connect_with(&self, addr: SocketAddr, framing: Framing) -> Result<PeerId, ConnectError> {
        connect_result(self.node.connect_with(addr, Some(framing)))
    }

    fn connect_pinned(&self, addr: SocketAddr, key: PeerKey) -> Result<PeerId, ConnectError> {
        connect_result(self.node.connect_pinned(addr, key))
    }

    fn send(&self, peer: PeerId, data: Bytes) -> Result<(), SendError> {
        match self.node.send_wait(peer, data) {
            Ok(()) => Ok(()),
            Err(SendWaitError::Rejected(e)) => Err(e),
            Err(e) => panic!("mio: send: {e}"),
        }
    }

    /// `Node::send_many` answers through [`Events::send_failure`], in the batch the IO thread
    /// hands over at the end of the pass that applied it. A pass counter read in that pass (or a
    /// later one), then read again until it has moved on, proves that batch was handed over.
    /// See notes/driver-requests-conformance.md (a `send_many_wait` would make this direct).
    fn send_many(&self, peers: &[PeerId], data: Bytes) -> SendManyFailures {
        self.node.send_many(peers, data).expect("mio: node running");
        let pass = |node: &Node| node.driver_stats().expect("mio: node running").wakeups;
        let applied_in = pass(&self.node);
        while pass(&self.node) <= applied_in {}
        let mut failures = SendManyFailures::new();
        let mut events = self.events.borrow_mut();
        while let Some(f) = events.send_failure() {
            failures.push((f.peer, f.error));
        }
        failures
    }

    fn disconnect(&self, peer: PeerId) {
        self.node.disconnect(peer).expect("mio: node running");
    }

    fn abort(&self, peer: PeerId) {
        self.node.abort(peer).expect("mio: node running");
    }

    fn set_limits(&self, peer: PeerId, limits: Limits) {
        self.node
            .set_limits(peer, limits)
            .expect("mio: node running");
    }

    fn set_global_limits(&self, limits: Limits) {
        self.node
            .set_global_limits(limits)
            .expect("mio: node running");
    }

    fn global_stats(&self) -> GlobalStats {
        self.node.global_stats().expect("mio: node running")
    }

    fn peer_stats(&self, peer: PeerId) -> Option<PeerStats> {
        self.node.stats(peer).expect("mio: node running")
    }

    fn next_event(&self, timeout: Duration) -> Option<Event> {
        self.events.borrow_mut().recv_timeout(timeout).ok()
    }

    fn now(&self) -> Instant {
        Instant::now()
    }

    /// `Node::shutdown` waits for the IO thread to end, so it runs on a thread of its own.
    fn begin_shutdown(&self) {
        let node = self.node.clone();
        std::thread::spawn(move || node.shutdown());
    }

    fn shutdown(self) -> Vec<Event> {
        self.node.shutdown();
        let mut events = self.events.into_inner();
        let mut out = Vec::new();
        loop {
            match events.recv_timeout(PATIENCE) {
                Ok(event) => out.push(event),
                Err(RecvTimeoutError::Stopped) => return out,
                Err(RecvTimeoutError::Timeout) => {
                    panic!("mio: events did not end after shutdown")
                }
            }
        }
    }
}
