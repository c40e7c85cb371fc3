//! LAN discovery on async-io: a UDP task that announces this node and reports the others.
//!
//! The sans-IO [`Discovery`] state machine of the core decides when to announce, decodes
//! beacons and expires silent nodes; this module only binds it to a socket. Its task owns the UDP
//! socket (so the peer driver's loop is untouched) and runs on a thread of its own with
//! [`async_io::block_on`], so it works whichever executor runs the node: it broadcasts each due
//! beacon, feeds every datagram with its source address to the state machine (malformed ones are
//! ignored), sleeps until the machine's next deadline, puts [`Event::Discovered`] /
//! [`Event::Lost`] into the node's event queue and, with `auto_connect`, connects to the nodes
//! the machine offers. The task ends when the node stops.

use crate::command::Command;
use crate::queue::Queue;
use crate::shared::PeerTable;
use async_channel::{Receiver, TryRecvError};
use async_io::{Async, Timer};
use futures_lite::future;
use openp2p_core::discovery::Discovery;
use openp2p_core::{ConnectError, Event, PeerId};
use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use openp2p_core::discovery::{
    DiscoveryConfig, DiscoveryOptions, NodeKey, DEFAULT_PORT, MAX_NAME,
};

/// Binds the beacon socket (shared with the other nodes of this host: `SO_REUSEADDR` and
/// `SO_REUSEPORT`, `SO_BROADCAST`) and starts the discovery thread.
pub(crate) fn start(
    options: DiscoveryOptions,
    events: Arc<Queue<Event>>,
    commands: Arc<Queue<Command>>,
    table: Arc<PeerTable>,
) -> io::Result<()> {
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_address(true)?;
    #[cfg(unix)]
    socket.set_reuse_port(true)?;
    socket.set_broadcast(true)?;
    socket.bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, options.port)).into())?;
    let socket = Async::new(UdpSocket::from(socket))?;
    let discovery = Discovery::new(options.config, options.beacon(), options.seed());
    let target = options.target();
    std::thread::Builder::new()
        .name("openp2p-discovery".into())
        .spawn(move || {
            let link = Link {
                events,
                commands,
                table,
                pending: Vec::new(),
            };
            async_io::block_on(run(socket, target, discovery, link))
        })?;
    Ok(())
}

/// What ended one wait of the discovery task.
enum Wake {
    Datagram(io::Result<(usize, SocketAddr)>),
    Deadline,
    Stopped,
}

/// The discovery task's ways into its node.
struct Link {
    /// Closed by the driver when the node stops, which ends this task.
    events: Arc<Queue<Event>>,
    commands: Arc<Queue<Command>>,
    /// Whether a dialled peer still stands, for [`Discovery::check_dials`].
    table: Arc<PeerTable>,
    /// Connects made for `auto_connect` whose peer id has not come back yet.
    pending: Vec<(NodeKey, Receiver<Result<PeerId, ConnectError>>)>,
}

async fn run(
    socket: Async<UdpSocket>,
    target: SocketAddr,
    mut discovery: Discovery,
    mut link: Link,
) {
    let mut buf = [0u8; 2048];
    loop {
        let now = Instant::now();
        link.report(&mut discovery, now);
        discovery.handle_timeout(now);
        if let Some(beacon) = discovery.poll_transmit(now) {
            // A LAN without a route for the broadcast is not fatal: the next beacon tries again.
            let _ = socket.get_ref().send_to(beacon, target);
        }
        if !link.forward(&mut discovery) {
            return;
        }
        let deadline = discovery
            .poll_timeout()
            .unwrap_or(now + Duration::from_secs(1));
        let datagram = async { Wake::Datagram(socket.recv_from(&mut buf).await) };
        let timer = async {
            Timer::at(deadline).await;
            Wake::Deadline
        };
        // The driver closes the event queue when the node stops.
        let stopped = async {
            link.events.closed().await;
            Wake::Stopped
        };
        match future::or(stopped, future::or(datagram, timer)).await {
            Wake::Datagram(Ok((n, src))) => {
                // Malformed datagrams (another protocol on the port) are ignored.
                let _ = discovery.handle_datagram(src, &buf[..n], Instant::now());
            }
            // E.g. an ICMP error surfacing on the socket: pause briefly, never spin.
            Wake::Datagram(Err(_)) => {
                Timer::after(Duration::from_millis(10)).await;
            }
            Wake::Deadline => {}
            Wake::Stopped => return,
        }
    }
}

impl Link {
    /// Tells the state machine which dials stand and which have ended, so a node is dialled
    /// again after its connection ends, and never twice at once.
    fn report(&mut self, discovery: &mut Discovery, now: Instant) {
        self.pending.retain(|(node, reply)| match reply.try_recv() {
            Ok(Ok(peer)) => {
                discovery.dial_started(*node, peer, now);
                false
            }
            Err(TryRecvError::Empty) => true,
            Ok(Err(_)) | Err(TryRecvError::Closed) => {
                discovery.dial_outcome(*node, false, now);
                false
            }
        });
        let table = &self.table;
        discovery.check_dials(now, |peer| {
            table.with(peer, |p| !p.is_closed()) == Some(true)
        });
    }

    /// Moves discovery events into the node's queue and dials offered nodes. False once the
    /// node has stopped.
    fn forward(&mut self, discovery: &mut Discovery) -> bool {
        while let Some(event) = discovery.poll_event() {
            if self.events.push(event).is_err() {
                return false;
            }
        }
        while let Some((node, addr)) = discovery.poll_dial() {
            // The application learns the outcome as `Connected` or `ConnectFailed`; this task
            // keeps the peer id to follow the connection.
            let (reply, answer) = async_channel::bounded(1);
            if self
                .commands
                .push(Command::Connect {
                    addr,
                    framing: None,
                    expect: None,
                    reply,
                })
                .is_err()
            {
                return false;
            }
            self.pending.push((node, answer));
        }
        true
    }
}
