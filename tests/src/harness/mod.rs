//! The synchronous facade every scenario is written against, and one implementation per driver.
//!
//! A [`Harness`] starts [`TestNode`]s of one driver; a scenario is a generic function over
//! `H: Harness`, so it is written once and runs on every driver. The async drivers are wrapped
//! with their runtime's `block_on`; the simulated network advances virtual time inside
//! [`TestNode::next_event`], so its timeouts are instant and its runs deterministic.

mod async_std;
mod mio;
mod secure;
mod sim;
mod tokio;

pub use self::async_std::{AsyncStdHarness, AsyncStdNode, Executor};
pub use self::mio::{MioHarness, MioNode};
pub use self::secure::{identity, Secure};
pub use self::sim::{SimHarness, SimNode};
pub use self::tokio::{TokioHarness, TokioNode};

use openp2p_core::{
    Bytes, Config, ConnectError, Event, Framing, GlobalStats, Limits, PeerId, PeerKey, PeerStats,
    SendError, SendManyFailures,
};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Upper bound for any single wait of a scenario; a healthy run needs a small fraction of it.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// Starts nodes of one driver (or of the simulated network).
pub trait Harness {
    /// The node this harness starts.
    type Node: TestNode;

    /// The driver's name, for messages.
    fn name(&self) -> &'static str;

    /// Starts a node with `config`. Panics when the driver refuses to start (a test failure).
    fn start(&mut self, config: Config) -> Self::Node;

    /// An address where nothing listens: a connect to it is refused.
    fn closed_addr(&mut self) -> SocketAddr;

    /// Whether time is virtual (the simulated network): rates and timeouts are then exact.
    fn is_virtual(&self) -> bool;

    /// Whether every node runs a secure channel ([`Secure`]): wire byte counts then include
    /// the handshake, the Noise length prefixes and tags, and `Connected` carries the remote's
    /// key.
    fn is_secure(&self) -> bool {
        false
    }
}

/// One running node, driven synchronously. Every method panics when the node has stopped
/// unexpectedly: that is a test failure, reported with the driver's name.
pub trait TestNode {
    /// Listens on `addr` with the node's framing; returns the bound address.
    fn listen(&self, addr: SocketAddr) -> SocketAddr;

    /// Listens on `addr`; peers accepted there use `framing`.
    fn listen_with(&self, addr: SocketAddr, framing: Framing) -> SocketAddr;

    /// Starts a connection with the node's framing.
    fn connect(&self, addr: SocketAddr) -> Result<PeerId, ConnectError>;

    /// Starts a connection with this framing.
    fn connect_with(&self, addr: SocketAddr, framing: Framing) -> Result<PeerId, ConnectError>;

    /// Starts a secure connection that must reach the node whose key is `key` (the node's
    /// framing); any other key fails it with `HandshakeFailure::KeyMismatch`.
    fn connect_pinned(&self, addr: SocketAddr, key: PeerKey) -> Result<PeerId, ConnectError>;

    /// Queues one message and returns the engine's verdict.
    fn send(&self, peer: PeerId, data: Bytes) -> Result<(), SendError>;

    /// Queues one message for several peers; returns the refusals.
    fn send_many(&self, peers: &[PeerId], data: Bytes) -> SendManyFailures;

    /// Closes gracefully (stale ids are ignored).
    fn disconnect(&self, peer: PeerId);

    /// Closes at once, dropping what is queued (stale ids are ignored).
    fn abort(&self, peer: PeerId);

    /// Changes one peer's limits (stale ids are ignored).
    fn set_limits(&self, peer: PeerId, limits: Limits);

    /// Changes the limits shared by all peers.
    fn set_global_limits(&self, limits: Limits);

    /// Node-wide statistics.
    fn global_stats(&self) -> GlobalStats;

    /// A live peer's statistics (`None` for a stale id).
    fn peer_stats(&self, peer: PeerId) -> Option<PeerStats>;

    /// The next event, waiting at most `timeout` (virtual time on the simulated network).
    fn next_event(&self, timeout: Duration) -> Option<Event>;

    /// The node's clock: wall time, or virtual time on the simulated network.
    fn now(&self) -> Instant;

    /// Starts a graceful shutdown without waiting for it: events go on arriving through
    /// [`next_event`](Self::next_event), up to `ShutdownComplete`.
    fn begin_shutdown(&self);

    /// Shuts down gracefully and returns every event up to and including `ShutdownComplete`.
    fn shutdown(self) -> Vec<Event>;
}

/// Waits (at most [`PATIENCE`]) for the first event `pick` accepts; events it declines are
/// handed to `skipped`. Panics with `what` on timeout.
pub fn wait_for<N: TestNode, T>(
    node: &N,
    what: &str,
    mut skipped: impl FnMut(Event),
    mut pick: impl FnMut(&Event) -> Option<T>,
) -> T {
    let deadline = node.now() + PATIENCE;
    loop {
        let left = deadline.saturating_duration_since(node.now());
        let Some(event) = node.next_event(left) else {
            panic!("timed out waiting for {what}");
        };
        match pick(&event) {
            Some(found) => return found,
            None => skipped(event),
        }
    }
}

/// [`wait_for`] that drops the events it skips.
pub fn expect<N: TestNode, T>(node: &N, what: &str, pick: impl FnMut(&Event) -> Option<T>) -> T {
    wait_for(node, what, drop, pick)
}

/// The IPv4 loopback with port 0.
pub fn v4() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// The IPv6 loopback with port 0.
pub fn v6() -> SocketAddr {
    SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, 0))
}

/// A loopback address where nothing listens: bound, then released, by the OS.
pub(crate) fn released_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind(v4()).expect("bind a loopback port");
    listener
        .local_addr()
        .expect("a bound listener has an address")
}
