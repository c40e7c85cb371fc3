//! LAN discovery on the IO thread: the core's [`Discovery`] state machine bound to a UDP socket.

use crate::stats::DriverStats;
use crate::{Engine, Event};
use mio::net::UdpSocket;
use mio::{Poll, Token};
use openp2p_core::discovery::{Discovery, DiscoveryOptions};
use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Instant;

/// The discovery socket's token.
pub(crate) const DISCOVERY: Token = Token(usize::MAX - 1);
/// Datagrams read per pass before the other sockets get a turn.
const DATAGRAMS_PER_PASS: usize = 64;

/// The running discovery: state machine, socket, and where beacons go.
#[derive(Debug)]
pub(crate) struct LanDiscovery {
    state: Discovery,
    socket: UdpSocket,
    target: SocketAddr,
}

impl LanDiscovery {
    /// Binds and registers the UDP socket; returns the running discovery and its bound address.
    pub(crate) fn start(
        poll: &Poll,
        options: DiscoveryOptions,
        seed: u64,
    ) -> io::Result<(LanDiscovery, SocketAddr)> {
        let bind: SocketAddr = match options.broadcast {
            IpAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, options.port).into(),
            IpAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, options.port).into(),
        };
        let socket = Socket::new(Domain::for_address(bind), Type::DGRAM, Some(Protocol::UDP))?;
        socket.set_reuse_address(true)?;
        #[cfg(all(unix, not(any(target_os = "solaris", target_os = "illumos"))))]
        socket.set_reuse_port(true)?;
        if bind.is_ipv4() {
            socket.set_broadcast(true)?;
        }
        socket.set_nonblocking(true)?;
        socket.bind(&bind.into())?;
        let mut socket = UdpSocket::from_std(socket.into());
        let bound = socket.local_addr()?;
        poll.registry()
            .register(&mut socket, DISCOVERY, mio::Interest::READABLE)?;
        let target = SocketAddr::new(
            options.broadcast,
            options.target_port.unwrap_or(bound.port()),
        );
        let state = Discovery::new(options.config, options.beacon(), seed);
        Ok((
            LanDiscovery {
                state,
                socket,
                target,
            },
            bound,
        ))
    }

    /// Reads the datagrams waiting (bounded per pass); a malformed one is counted, never fatal.
    /// True when the cap stopped it (more may be waiting).
    pub(crate) fn receive(&mut self, now: Instant, stats: &mut DriverStats) -> bool {
        let mut buf = [0u8; 2048];
        for _ in 0..DATAGRAMS_PER_PASS {
            match self.socket.recv_from(&mut buf) {
                Ok((n, src)) => {
                    if self.state.handle_datagram(src, &buf[..n], now).is_err() {
                        stats.discovery_malformed += 1;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // ICMP errors from earlier sends (port unreachable, ...) surface here.
                Err(_) => stats.discovery_errors += 1,
            }
        }
        true
    }

    /// Announces if due, expires silent nodes, starts the connects auto-connect offers, and
    /// moves `Discovered` / `Lost` into `events`.
    pub(crate) fn step(
        &mut self,
        engine: &mut Engine,
        events: &mut Vec<Event>,
        now: Instant,
        stats: &mut DriverStats,
    ) {
        // Dials whose connect or connection ended make their node eligible again.
        self.state
            .check_dials(now, |peer| engine.peer(peer).is_some());
        if self.state.poll_timeout().is_some_and(|at| at <= now) {
            self.state.handle_timeout(now);
        }
        if let Some(beacon) = self.state.poll_transmit(now) {
            // A lost beacon is not worth a retry: the next one follows within the interval.
            if self.socket.send_to(beacon, self.target).is_err() {
                stats.discovery_errors += 1;
            }
        }
        while let Some((node, addr)) = self.state.poll_dial() {
            match engine.connect(addr, now) {
                Ok(peer) => self.state.dial_started(node, peer, now),
                // A refusal (max peers, shutting down): dialled again when next heard.
                Err(_) => {
                    stats.discovery_errors += 1;
                    self.state.dial_outcome(node, false, now);
                }
            }
        }
        while let Some(event) = self.state.poll_event() {
            events.push(event);
        }
    }

    /// When discovery next needs the loop.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.state.poll_timeout()
    }

    pub(crate) fn close(mut self, poll: &Poll) {
        let _ = poll.registry().deregister(&mut self.socket);
    }
}
