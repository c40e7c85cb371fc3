//! LAN discovery on Tokio: a UDP task that announces this node and reports the others.
//!
//! The sans-IO [`Discovery`] state machine of the core decides when to announce, decodes
//! beacons and expires silent nodes. This module owns its UDP socket in a task of its own (so the
//! peer driver's loop is untouched): it broadcasts each due beacon, feeds every datagram with its
//! source address to the state machine (malformed ones are counted by the core and otherwise
//! ignored), sleeps until the machine's next deadline, puts [`Event::Discovered`] /
//! [`Event::Lost`] into the node's event queue and, with `auto_connect`, connects to the nodes
//! the machine offers. The task ends when the node stops.

use crate::command::Command;
use crate::shared::Shared;
use openp2p_core::discovery::Discovery;
use openp2p_core::{ConnectError, Event, PeerId};
use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::sync::mpsc::WeakUnboundedSender;
use tokio::sync::oneshot;

pub use openp2p_core::discovery::{
    DiscoveryConfig, DiscoveryOptions, NodeKey, DEFAULT_PORT, MAX_NAME,
};

/// Binds the beacon socket (shared with the other nodes of this host: `SO_REUSEADDR` and
/// `SO_REUSEPORT`, `SO_BROADCAST`) and spawns the discovery task.
pub(crate) fn start(
    options: DiscoveryOptions,
    shared: Arc<Shared>,
    commands: WeakUnboundedSender<Command>,
) -> io::Result<()> {
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_address(true)?;
    #[cfg(unix)]
    socket.set_reuse_port(true)?;
    socket.set_broadcast(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, options.port)).into())?;
    let socket = UdpSocket::from_std(socket.into())?;
    let discovery = Discovery::new(options.config, options.beacon(), options.seed());
    let target = options.target();
    tokio::spawn(run(socket, target, discovery, shared, commands));
    Ok(())
}

async fn run(
    socket: UdpSocket,
    target: SocketAddr,
    mut discovery: Discovery,
    shared: Arc<Shared>,
    commands: WeakUnboundedSender<Command>,
) {
    let ended = shared.ended_notify();
    tokio::pin!(ended);
    ended.as_mut().enable();
    let mut buf = [0u8; 2048];
    let mut dials = Dials::default();
    loop {
        if shared.lock().ended {
            return;
        }
        let now = Instant::now();
        dials.report(&mut discovery, &shared, now);
        discovery.handle_timeout(now);
        if let Some(beacon) = discovery.poll_transmit(now) {
            // A LAN without a route for the broadcast is not fatal: the next beacon tries again.
            let _ = socket.try_send_to(beacon, target);
        }
        forward(&mut discovery, &shared, &commands, &mut dials);
        let deadline = discovery
            .poll_timeout()
            .unwrap_or(now + Duration::from_secs(1));
        tokio::select! {
            received = socket.recv_from(&mut buf) => match received {
                Ok((n, src)) => {
                    // Malformed datagrams (another protocol on the port) are ignored.
                    let _ = discovery.handle_datagram(src, &buf[..n], Instant::now());
                }
                // E.g. an ICMP error surfacing on the socket: pause briefly, never spin.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            () = tokio::time::sleep_until(deadline.into()) => {}
            () = &mut ended => return,
        }
    }
}

/// The connects this task made for `auto_connect` whose peer id has not come back yet; once it
/// has, the state machine follows the peer ([`Discovery::check_dials`]), so a node is dialled
/// again after its connection ends, and never twice at once.
#[derive(Debug, Default)]
struct Dials {
    pending: Vec<(NodeKey, oneshot::Receiver<Result<PeerId, ConnectError>>)>,
}

impl Dials {
    /// Tells the state machine which dials stand and which have ended.
    fn report(&mut self, discovery: &mut Discovery, shared: &Shared, now: Instant) {
        self.pending
            .retain_mut(|(node, reply)| match reply.try_recv() {
                Ok(Ok(peer)) => {
                    discovery.dial_started(*node, peer, now);
                    false
                }
                Err(oneshot::error::TryRecvError::Empty) => true,
                Ok(Err(_)) | Err(oneshot::error::TryRecvError::Closed) => {
                    discovery.dial_outcome(*node, false, now);
                    false
                }
            });
        let state = shared.lock();
        discovery.check_dials(now, |peer| {
            state
                .links
                .get(&peer)
                .is_some_and(|link| link.lock().end.is_none())
        });
    }
}

/// Moves discovery events into the node's queue and dials offered nodes.
fn forward(
    discovery: &mut Discovery,
    shared: &Shared,
    commands: &WeakUnboundedSender<Command>,
    dials: &mut Dials,
) {
    let mut events: Vec<Event> = std::iter::from_fn(|| discovery.poll_event()).collect();
    if !events.is_empty() {
        let mut state = shared.lock();
        // Nothing follows the node's `ShutdownComplete`.
        if !state.ended {
            state.events.extend(events.drain(..));
            state.wake_waiters();
        }
    }
    while let Some((node, addr)) = discovery.poll_dial() {
        let Some(commands) = commands.upgrade() else {
            return;
        };
        // The application learns the outcome as `Connected` or `ConnectFailed`; this task
        // keeps the peer id to follow the connection.
        let (reply, answer) = oneshot::channel();
        let _ = commands.send(Command::Connect {
            addr,
            framing: None,
            expect: None,
            reply,
        });
        dials.pending.push((node, answer));
    }
}
