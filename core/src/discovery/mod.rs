//! LAN discovery, sans-IO: announce this node by UDP broadcast and learn the others.
//!
//! [`Discovery`] decides when to announce (an interval with seeded jitter, from injected time),
//! decodes beacons, remembers who was heard and forgets nodes not heard from within the expiry,
//! emitting [`Event::Discovered`](crate::Event::Discovered) and
//! [`Event::Lost`](crate::Event::Lost). A driver owns the UDP socket: it sends what
//! [`poll_transmit`](Discovery::poll_transmit) returns to the broadcast address and feeds every
//! datagram it receives, with its source address, to
//! [`handle_datagram`](Discovery::handle_datagram). A discovered node's IP address is always the
//! datagram's source, never anything in the payload (Open.P2P announced a hard-coded 127.0.0.1).
//!
//! Trust: beacons are not authenticated. Any host on the LAN can announce nodes (the table is
//! bounded by `max_nodes`) and so steer `auto_connect`; authenticate peers above this layer when
//! the LAN is not trusted.
//!
//! ```
//! use openp2p_core::discovery::{Beacon, Discovery, DiscoveryConfig, NodeKey};
//! use openp2p_core::Event;
//! use std::time::Instant;
//!
//! let now = Instant::now();
//! let me = Beacon { node: NodeKey([1; 16]), tcp_port: 9988, name: "alice".into() };
//! let other = Beacon { node: NodeKey([2; 16]), tcp_port: 7777, name: "bob".into() };
//! let mut alice = Discovery::new(DiscoveryConfig::default(), me, 1);
//! let mut bob = Discovery::new(DiscoveryConfig::default(), other, 2);
//! let datagram = bob.poll_transmit(now).unwrap().to_vec();
//! alice.handle_datagram("192.168.1.20:3000".parse().unwrap(), &datagram, now).unwrap();
//! match alice.poll_event() {
//!     Some(Event::Discovered { addr, name, .. }) => {
//!         assert_eq!(addr, "192.168.1.20:7777".parse().unwrap());
//!         assert_eq!(name, "bob");
//!     }
//!     other => panic!("{other:?}"),
//! }
//! ```

mod beacon;
mod options;

pub use beacon::{Beacon, BeaconError, NodeKey, MAGIC, MAX_BEACON, MAX_NAME, VERSION};
pub use options::DiscoveryOptions;

use crate::clock::{nanos, Clock, Nanos};
use crate::rng::SimRng;
use crate::{Event, PeerId};
use core::net::SocketAddr;
use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

/// The shortest announce interval accepted.
pub const MIN_INTERVAL: Duration = Duration::from_millis(10);

/// The default UDP port for beacons (Open.P2P's chat used 3000).
pub const DEFAULT_PORT: u16 = 3000;

/// When to announce and when to forget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiscoveryConfig {
    /// Time between announcements.
    pub interval: Duration,
    /// Each interval is moved by up to this much either way (seeded), so nodes started together
    /// do not announce in lock-step.
    pub jitter: Duration,
    /// A node not heard from for this long is lost.
    pub expiry: Duration,
    /// Most nodes remembered; beacons from further nodes are ignored until some expire.
    pub max_nodes: usize,
    /// Offer discovered nodes for dialling through [`Discovery::poll_dial`]. Of two nodes that
    /// discover each other only the one with the smaller [`NodeKey`] dials, so they end up with
    /// one connection, not two. The driver reports each dial's fate with
    /// [`Discovery::dial_outcome`]: a node is offered again (at most once per interval, when
    /// heard) whenever it has no connection and no dial in flight, and never while it has one,
    /// even if it was lost and found again meanwhile.
    pub auto_connect: bool,
}

impl Default for DiscoveryConfig {
    fn default() -> Self {
        DiscoveryConfig {
            interval: Duration::from_secs(2),
            jitter: Duration::from_millis(500),
            expiry: Duration::from_secs(7),
            max_nodes: 256,
            auto_connect: false,
        }
    }
}

/// Where the dialling side stands with a node it was offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    /// Offered by `poll_dial`; its outcome has not been reported yet.
    Dialing,
    /// The dial produced a connection that is still up.
    Connected,
    /// The dial failed or its connection ended: offer again when heard at or after this instant.
    Apart { retry_at: Nanos },
}

#[derive(Debug, Clone)]
struct Known {
    addr: SocketAddr,
    name: String,
    last_seen: Nanos,
}

/// The discovery state machine (see the module docs).
#[derive(Debug)]
pub struct Discovery {
    config: DiscoveryConfig,
    me: NodeKey,
    beacon: [u8; MAX_BEACON],
    beacon_len: usize,
    clock: Clock,
    rng: SimRng,
    next_announce: Option<Nanos>,
    known: BTreeMap<NodeKey, Known>,
    events: VecDeque<Event>,
    dials: VecDeque<(NodeKey, SocketAddr)>,
    /// Nodes offered for dialling and what became of it. Bounded: only `Connected` entries
    /// outlive their node's loss, and each stands for a connection.
    links: BTreeMap<NodeKey, Link>,
    /// The peers that dials became ([`Discovery::dial_started`]), followed by
    /// [`Discovery::check_dials`].
    dialled: BTreeMap<PeerId, NodeKey>,
    ignored: u64,
}

impl Discovery {
    /// A node announcing `me`; `seed` drives the jitter. The interval is raised to at least
    /// [`MIN_INTERVAL`] and the expiry to at least one interval, so no setting makes it spin.
    pub fn new(config: DiscoveryConfig, me: Beacon, seed: u64) -> Self {
        let interval = config.interval.max(MIN_INTERVAL);
        let config = DiscoveryConfig {
            interval,
            expiry: config.expiry.max(interval),
            ..config
        };
        let mut beacon = [0u8; MAX_BEACON];
        let beacon_len = me.encode(&mut beacon);
        Discovery {
            config,
            me: me.node,
            beacon,
            beacon_len,
            clock: Clock::new(),
            rng: SimRng::new(seed),
            next_announce: None,
            known: BTreeMap::new(),
            events: VecDeque::new(),
            dials: VecDeque::new(),
            links: BTreeMap::new(),
            dialled: BTreeMap::new(),
            ignored: 0,
        }
    }

    /// The beacon to broadcast if one is due at `now` (the first call is always due).
    pub fn poll_transmit(&mut self, now: Instant) -> Option<&[u8]> {
        let now = self.clock.observe(now);
        if self.next_announce.is_some_and(|at| at > now) {
            return None;
        }
        let interval = nanos(self.config.interval);
        let jitter = nanos(self.config.jitter).min(interval / 2);
        let offset = if jitter == 0 {
            0
        } else {
            self.rng.next_u64() % (2 * jitter + 1)
        };
        // Saturating throughout: an interval near `Duration::MAX` must not overflow.
        let wait = (interval - jitter).saturating_add(offset);
        self.next_announce = Some(now.saturating_add(wait));
        Some(&self.beacon[..self.beacon_len])
    }

    /// A datagram arrived from `src`. Malformed datagrams and our own beacons change nothing.
    pub fn handle_datagram(
        &mut self,
        src: SocketAddr,
        data: &[u8],
        now: Instant,
    ) -> Result<(), BeaconError> {
        let now = self.clock.observe(now);
        let beacon = Beacon::decode(data)?;
        if beacon.node == self.me {
            return Ok(());
        }
        let addr = SocketAddr::new(src.ip(), beacon.tcp_port);
        let full = self.known.len() >= self.config.max_nodes;
        match self.known.get_mut(&beacon.node) {
            Some(known) => {
                known.last_seen = now;
                if known.addr != addr || known.name != beacon.name {
                    known.addr = addr;
                    known.name.clone_from(&beacon.name);
                    self.events.push_back(Event::Discovered {
                        node: beacon.node,
                        addr,
                        name: beacon.name,
                    });
                }
            }
            None if full => {
                self.ignored += 1;
                return Ok(());
            }
            None => {
                self.known.insert(
                    beacon.node,
                    Known {
                        addr,
                        name: beacon.name.clone(),
                        last_seen: now,
                    },
                );
                self.events.push_back(Event::Discovered {
                    node: beacon.node,
                    addr,
                    name: beacon.name,
                });
            }
        }
        self.offer(beacon.node, addr, now);
        Ok(())
    }

    /// With `auto_connect`, offers `node` for dialling if this side dials it and it has neither
    /// a connection nor a dial in flight (and a failed one is at least an interval old).
    fn offer(&mut self, node: NodeKey, addr: SocketAddr, now: Nanos) {
        if !self.config.auto_connect || self.me >= node {
            return;
        }
        let due = match self.links.get(&node) {
            None => true,
            Some(Link::Apart { retry_at }) => now >= *retry_at,
            Some(Link::Dialing | Link::Connected) => false,
        };
        if due {
            self.links.insert(node, Link::Dialing);
            self.dials.push_back((node, addr));
        }
    }

    /// What became of a dial [`poll_dial`](Self::poll_dial) offered for `node`: `true` when it
    /// connected, `false` when it failed or when its connection ended later. A node that is
    /// apart is offered again when next heard, at the earliest one interval from `now`.
    /// Reports for nodes that were never offered change nothing.
    ///
    /// ```
    /// use openp2p_core::discovery::{Beacon, Discovery, DiscoveryConfig, NodeKey, MAX_BEACON};
    /// use std::time::{Duration, Instant};
    ///
    /// let t0 = Instant::now();
    /// let config = DiscoveryConfig { auto_connect: true, ..DiscoveryConfig::default() };
    /// let me = |n: u8| Beacon { node: NodeKey([n; 16]), tcp_port: 4000, name: String::new() };
    /// let mut low = Discovery::new(config, me(1), 1);
    /// let mut beacon = [0u8; MAX_BEACON];
    /// let len = me(9).encode(&mut beacon);
    /// let src = "10.0.0.9:3000".parse().unwrap();
    /// low.handle_datagram(src, &beacon[..len], t0).unwrap();
    /// let (node, _addr) = low.poll_dial().unwrap();
    /// low.dial_outcome(node, true, t0); // connected ...
    /// low.dial_outcome(node, false, t0); // ... and the connection died
    /// let later = t0 + Duration::from_secs(2);
    /// low.handle_datagram(src, &beacon[..len], later).unwrap();
    /// assert_eq!(low.poll_dial().map(|(n, _)| n), Some(node), "offered again");
    /// ```
    pub fn dial_outcome(&mut self, node: NodeKey, connected: bool, now: Instant) {
        let now = self.clock.observe(now);
        let Some(link) = self.links.get_mut(&node) else {
            return;
        };
        if connected {
            *link = Link::Connected;
        } else if self.known.contains_key(&node) {
            *link = Link::Apart {
                retry_at: now.saturating_add(nanos(self.config.interval)),
            };
        } else {
            self.links.remove(&node);
        }
    }

    /// The connect a driver made for `node`'s dial became `peer` (a connect in flight counts as
    /// standing until it fails): `dial_outcome(node, true)`, and the peer is followed by
    /// [`check_dials`](Self::check_dials) from now on.
    pub fn dial_started(&mut self, node: NodeKey, peer: PeerId, now: Instant) {
        self.dial_outcome(node, true, now);
        if self.links.contains_key(&node) {
            self.dialled.insert(peer, node);
        }
    }

    /// Asks `standing` about every peer from [`dial_started`](Self::dial_started) (is its
    /// connect or connection still there?) and reports the ended ones with
    /// [`dial_outcome`](Self::dial_outcome)`(node, false)`. Drivers call it before each
    /// [`handle_datagram`](Self::handle_datagram) / [`handle_timeout`](Self::handle_timeout)
    /// round; it costs one call per dialled peer.
    pub fn check_dials(&mut self, now: Instant, mut standing: impl FnMut(PeerId) -> bool) {
        let mut ended = Vec::new();
        self.dialled.retain(|peer, node| {
            let up = standing(*peer);
            if !up {
                ended.push(*node);
            }
            up
        });
        for node in ended {
            self.dial_outcome(node, false, now);
        }
    }

    /// Forgets nodes not heard from within the expiry.
    pub fn handle_timeout(&mut self, now: Instant) {
        let now = self.clock.observe(now);
        let expiry = nanos(self.config.expiry);
        let events = &mut self.events;
        let links = &mut self.links;
        self.known.retain(|node, known| {
            let alive = known.last_seen.saturating_add(expiry) > now;
            if !alive {
                events.push_back(Event::Lost {
                    node: *node,
                    addr: known.addr,
                });
                // A connection outlives the beacons; a node we are apart from (or still dialling:
                // which bounds the table for drivers that never report) is forgotten.
                if !matches!(links.get(node), Some(Link::Connected)) {
                    links.remove(node);
                }
            }
            alive
        });
    }

    /// The next instant something is due: an announcement or an expiry (`None` before the first
    /// `poll_transmit`, which is due at once).
    pub fn poll_timeout(&self) -> Option<Instant> {
        let expiry = nanos(self.config.expiry);
        let first_expiry = self
            .known
            .values()
            .map(|k| k.last_seen.saturating_add(expiry))
            .min();
        let next = [self.next_announce, first_expiry]
            .into_iter()
            .flatten()
            .min()?;
        self.clock.instant(next)
    }

    /// The next `Discovered` or `Lost` event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The next discovered node this node should connect to (with `auto_connect`). A node is
    /// offered when it has neither a connection nor a dial in flight, as told by
    /// [`dial_outcome`](Self::dial_outcome); a driver that never reports gets each node once.
    pub fn poll_dial(&mut self) -> Option<(NodeKey, SocketAddr)> {
        self.dials.pop_front()
    }

    /// Nodes known now: id, address (source IP, announced TCP port) and name.
    pub fn nodes(&self) -> impl Iterator<Item = (NodeKey, SocketAddr, &str)> + '_ {
        self.known
            .iter()
            .map(|(k, v)| (*k, v.addr, v.name.as_str()))
    }

    /// Well-formed beacons ignored because `max_nodes` nodes were already known.
    pub fn ignored(&self) -> u64 {
        self.ignored
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn beacon(n: u8, port: u16) -> Vec<u8> {
        let b = Beacon {
            node: NodeKey([n; 16]),
            tcp_port: port,
            name: format!("node{n}"),
        };
        let mut buf = [0u8; MAX_BEACON];
        let len = b.encode(&mut buf);
        buf[..len].to_vec()
    }

    fn discovery(n: u8) -> Discovery {
        let me = Beacon {
            node: NodeKey([n; 16]),
            tcp_port: 1,
            name: "me".into(),
        };
        Discovery::new(
            DiscoveryConfig {
                max_nodes: 2,
                ..DiscoveryConfig::default()
            },
            me,
            u64::from(n),
        )
    }

    #[test]
    fn announcements_come_every_interval_give_or_take_the_jitter() {
        let base = crate::test_clock::base();
        let mut d = discovery(1);
        let mut sent = Vec::new();
        let mut t = Duration::ZERO;
        while t < Duration::from_secs(60) {
            if d.poll_transmit(base + t).is_some() {
                sent.push(t);
            }
            t += Duration::from_millis(10);
        }
        assert!(
            (25..=35).contains(&sent.len()),
            "{} announcements",
            sent.len()
        );
        for w in sent.windows(2) {
            let gap = w[1] - w[0];
            assert!(
                gap >= Duration::from_millis(1500) && gap <= Duration::from_millis(2510),
                "{gap:?}"
            );
        }
    }

    #[test]
    fn the_address_comes_from_the_datagram_source_and_own_beacons_are_ignored() {
        let now = crate::test_clock::base();
        let mut d = discovery(1);
        d.handle_datagram("10.1.2.3:3000".parse().unwrap(), &beacon(1, 5), now)
            .unwrap();
        assert_eq!(d.poll_event(), None, "our own beacon");
        d.handle_datagram("10.1.2.4:3000".parse().unwrap(), &beacon(2, 5000), now)
            .unwrap();
        let Some(Event::Discovered { addr, .. }) = d.poll_event() else {
            panic!()
        };
        assert_eq!(addr, "10.1.2.4:5000".parse().unwrap());
        // Heard again unchanged: no new event; moved: a new event.
        d.handle_datagram("10.1.2.4:3000".parse().unwrap(), &beacon(2, 5000), now)
            .unwrap();
        assert_eq!(d.poll_event(), None);
        d.handle_datagram("10.1.2.9:3000".parse().unwrap(), &beacon(2, 5000), now)
            .unwrap();
        assert!(matches!(d.poll_event(), Some(Event::Discovered { .. })));
    }

    #[test]
    fn silent_nodes_are_lost_after_the_expiry_and_the_table_is_bounded() {
        let base = crate::test_clock::base();
        let mut d = discovery(1);
        for n in 2..6 {
            d.handle_datagram("10.0.0.2:1".parse().unwrap(), &beacon(n, 1), base)
                .unwrap();
        }
        assert_eq!(d.nodes().count(), 2);
        assert_eq!(d.ignored(), 2);
        while d.poll_event().is_some() {}
        let later = base + Duration::from_secs(6);
        d.handle_datagram("10.0.0.2:1".parse().unwrap(), &beacon(2, 1), later)
            .unwrap();
        assert_eq!(d.poll_timeout(), Some(base + Duration::from_secs(7)));
        d.handle_timeout(base + Duration::from_secs(7));
        assert!(
            matches!(d.poll_event(), Some(Event::Lost { node, .. }) if node == NodeKey([3; 16]))
        );
        assert_eq!(d.poll_event(), None);
        assert_eq!(d.nodes().count(), 1);
    }

    #[test]
    fn with_auto_connect_only_the_smaller_key_dials() {
        let now = crate::test_clock::base();
        let config = DiscoveryConfig {
            auto_connect: true,
            ..DiscoveryConfig::default()
        };
        let me = |n: u8| Beacon {
            node: NodeKey([n; 16]),
            tcp_port: 1,
            name: String::new(),
        };
        let mut low = Discovery::new(config, me(1), 1);
        let mut high = Discovery::new(config, me(9), 2);
        let src = "10.0.0.1:3000".parse().unwrap();
        low.handle_datagram(src, &beacon(9, 4000), now).unwrap();
        high.handle_datagram(src, &beacon(1, 4000), now).unwrap();
        assert_eq!(
            low.poll_dial(),
            Some((NodeKey([9; 16]), "10.0.0.1:4000".parse().unwrap()))
        );
        assert_eq!(low.poll_dial(), None, "offered once");
        assert_eq!(high.poll_dial(), None);
    }

    fn dialler() -> Discovery {
        let config = DiscoveryConfig {
            auto_connect: true,
            ..DiscoveryConfig::default()
        };
        let me = Beacon {
            node: NodeKey([1; 16]),
            tcp_port: 1,
            name: String::new(),
        };
        Discovery::new(config, me, 1)
    }

    const NINE: NodeKey = NodeKey([9; 16]);

    /// `ms` after the test clock's base.
    fn at(ms: u64) -> Instant {
        crate::test_clock::base() + Duration::from_millis(ms)
    }

    /// Node 9's beacon arrives at `ms`; returns the node offered for dialling, if any.
    fn hear_nine(d: &mut Discovery, ms: u64) -> Option<NodeKey> {
        let src = "10.0.0.9:3000".parse().unwrap();
        d.handle_datagram(src, &beacon(9, 4000), at(ms)).unwrap();
        d.poll_dial().map(|(node, _)| node)
    }

    #[test]
    fn a_node_whose_dial_failed_or_whose_connection_ended_is_offered_again_an_interval_later() {
        let mut d = dialler();
        assert_eq!(hear_nine(&mut d, 0), Some(NINE));
        // Heard again while the dial is in flight, and while connected: no second offer.
        assert_eq!(hear_nine(&mut d, 1000), None);
        d.dial_outcome(NINE, true, at(1000));
        assert_eq!(hear_nine(&mut d, 2000), None, "connected");
        // The connection ends: offered when heard, but not before an interval has passed.
        d.dial_outcome(NINE, false, at(3000));
        assert_eq!(hear_nine(&mut d, 4900), None, "within the interval");
        assert_eq!(hear_nine(&mut d, 5000), Some(NINE));
        // A failed dial likewise.
        d.dial_outcome(NINE, false, at(5000));
        assert_eq!(hear_nine(&mut d, 7000), Some(NINE));
    }

    #[test]
    fn a_connected_node_lost_and_heard_again_is_not_dialled_twice() {
        let mut d = dialler();
        assert!(hear_nine(&mut d, 0).is_some());
        d.dial_outcome(NINE, true, at(0));
        // Its beacons are lost for a while (lossy Wi-Fi); the TCP connection is fine.
        d.handle_timeout(at(8000));
        assert!(matches!(d.poll_event(), Some(Event::Discovered { .. })));
        assert!(matches!(d.poll_event(), Some(Event::Lost { .. })));
        assert_eq!(hear_nine(&mut d, 9000), None, "still connected");
        // Once the connection ends, a lost node is forgotten entirely and dialled when found.
        d.dial_outcome(NINE, false, at(10_000));
        d.handle_timeout(at(17_000));
        assert_eq!(hear_nine(&mut d, 18_000), Some(NINE));
    }

    #[test]
    fn check_dials_reports_the_peers_that_ended() {
        let mut d = dialler();
        assert!(hear_nine(&mut d, 0).is_some());
        let peer = PeerId {
            index: 3,
            serial: 7,
        };
        d.dial_started(NINE, peer, at(0));
        d.check_dials(at(0), |p| {
            assert_eq!(p, peer);
            true
        });
        assert_eq!(hear_nine(&mut d, 3000), None, "standing");
        d.check_dials(at(3000), |_| false);
        assert!(d.dialled.is_empty());
        assert_eq!(hear_nine(&mut d, 5000), Some(NINE), "ended: dialled again");
    }

    #[test]
    fn reports_for_nodes_never_offered_change_nothing() {
        let mut d = dialler();
        d.dial_outcome(NINE, true, at(0));
        d.dial_outcome(NINE, false, at(0));
        assert!(d.links.is_empty());
        assert!(
            hear_nine(&mut d, 0).is_some(),
            "a fresh node is offered at once"
        );
    }

    #[test]
    fn an_interval_near_duration_max_neither_overflows_nor_spins() {
        let now = crate::test_clock::base();
        let config = DiscoveryConfig {
            interval: Duration::MAX,
            jitter: Duration::MAX,
            expiry: Duration::MAX,
            ..DiscoveryConfig::default()
        };
        let me = Beacon {
            node: NodeKey([1; 16]),
            tcp_port: 1,
            name: String::new(),
        };
        let mut d = Discovery::new(config, me, 7);
        assert!(d.poll_transmit(now).is_some());
        assert!(d.poll_transmit(now + Duration::from_secs(3600)).is_none());
        d.handle_timeout(now + Duration::from_secs(3600));
    }

    #[test]
    fn garbage_is_rejected_without_side_effects() {
        let now = crate::test_clock::base();
        let mut d = discovery(1);
        assert_eq!(
            d.handle_datagram("10.0.0.2:1".parse().unwrap(), b"hello", now),
            Err(BeaconError::Truncated)
        );
        assert_eq!(d.poll_event(), None);
        assert_eq!(d.nodes().count(), 0);
    }
}
