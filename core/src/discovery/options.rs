//! What a driver needs to take part in LAN discovery: ports, addresses and this node's beacon.

use super::{Beacon, DiscoveryConfig, NodeKey, DEFAULT_PORT};
use core::net::{IpAddr, Ipv4Addr, SocketAddr};

/// How a node takes part in LAN discovery (each driver's `Node::enable_discovery` takes it).
///
/// ```
/// use openp2p_core::discovery::{DiscoveryOptions, NodeKey, DEFAULT_PORT};
///
/// let options = DiscoveryOptions {
///     broadcast: "192.168.1.255".parse().unwrap(),
///     ..DiscoveryOptions::new(NodeKey([7; 16]), "alice", 9988)
/// };
/// assert_eq!(options.port, DEFAULT_PORT);
/// assert_eq!(options.target().to_string(), "192.168.1.255:3000");
/// assert!(!options.config.auto_connect);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveryOptions {
    /// The UDP port every node of the LAN uses for beacons (default [`DEFAULT_PORT`]); drivers
    /// bind it with address and port reuse so several nodes on one host share it.
    pub port: u16,
    /// Where beacons go: the limited broadcast `255.255.255.255` (default), a subnet's broadcast
    /// address such as `192.168.1.255` where the limited broadcast has no route, the loopback
    /// broadcast `127.255.255.255` for nodes of one host, or any unicast address.
    pub broadcast: IpAddr,
    /// The port beacons are sent to; `None` is `port`. Nodes on one host without a
    /// broadcast-capable interface can point at each other's ports on the loopback address.
    pub target_port: Option<u16>,
    /// This node's identity (random per node, chosen by the application; its own beacons are
    /// ignored when they come back).
    pub node: NodeKey,
    /// A human-readable name announced with it (at most [`MAX_NAME`](super::MAX_NAME) bytes are
    /// sent).
    pub name: String,
    /// The TCP port of this node's listener, which the others connect to.
    pub tcp_port: u16,
    /// Announce interval, jitter, expiry, node limit and `auto_connect`.
    pub config: DiscoveryConfig,
}

impl DiscoveryOptions {
    /// The defaults for `node`, announced as `name` with its listener on `tcp_port`: port 3000,
    /// broadcast to `255.255.255.255`, the core's default intervals, no auto-connect.
    pub fn new(node: NodeKey, name: impl Into<String>, tcp_port: u16) -> Self {
        DiscoveryOptions {
            port: DEFAULT_PORT,
            broadcast: IpAddr::V4(Ipv4Addr::BROADCAST),
            target_port: None,
            node,
            name: name.into(),
            tcp_port,
            config: DiscoveryConfig::default(),
        }
    }

    /// Where beacons are sent.
    pub fn target(&self) -> SocketAddr {
        SocketAddr::new(self.broadcast, self.target_port.unwrap_or(self.port))
    }

    /// This node's beacon.
    pub fn beacon(&self) -> Beacon {
        Beacon {
            node: self.node,
            tcp_port: self.tcp_port,
            name: self.name.clone(),
        }
    }

    /// A jitter seed derived from the node's identity (distinct nodes announce out of step).
    pub fn seed(&self) -> u64 {
        self.node
            .0
            .iter()
            .fold(0u64, |h, b| h.rotate_left(8) ^ u64::from(*b))
    }
}
