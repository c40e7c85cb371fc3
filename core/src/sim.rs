//! A deterministic simulated network on virtual time (feature `sim`).
//!
//! Several [`Engine`]s are linked by virtual TCP connections with latency and a bounded socket
//! buffer per direction. Everything (connects, reads, writes, timeouts, read sizes) happens in an
//! order fixed by the seed, so the same seed and the same test give the same event trace: whole
//! conversations, rate limits and timeouts are tested without sockets or wall-clock time, in
//! microseconds. It is a driver like any other: it follows the [`Engine`] contract to the letter.
//!
//! ```
//! use openp2p_core::sim::{Link, SimNet};
//! use openp2p_core::{Config, Event};
//! use std::time::{Duration, Instant};
//!
//! let mut net = SimNet::new(7, Instant::now(), Link::default());
//! let a = net.add_node(Config::default()).unwrap();
//! let b = net.add_node(Config::default()).unwrap();
//! let addr = net.listen(b).unwrap();
//! let now = net.now();
//! let peer = net.engine(a).connect(addr, now).unwrap();
//! net.engine(a).send(peer, "hello".into(), now).unwrap();
//! let mut got = Vec::new();
//! net.run_for(Duration::from_millis(50), |node, _engine, event, _now| {
//!     if let Event::Received { data, .. } = event {
//!         got.push((node, data));
//!     }
//! });
//! assert_eq!(got, vec![(b, "hello".into())]);
//! ```

use crate::clock::{nanos, Nanos};
use crate::{
    Config, ConfigError, Engine, Event, Interest, Io, ListenerId, PeerId, SimRng, Transfer,
};
use bytes::Bytes;
use core::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::time::{Duration, Instant};

/// Properties of every simulated link.
#[derive(Debug, Clone, Copy)]
pub struct Link {
    /// One-way latency.
    pub latency: Duration,
    /// Bytes one direction of a connection holds (in flight plus unread): the socket buffers.
    pub window: usize,
    /// Most bytes one simulated read returns (reads are also cut at random below this, so
    /// reassembly is exercised across splits).
    pub max_read: usize,
}

impl Default for Link {
    fn default() -> Self {
        Link {
            latency: Duration::from_millis(1),
            window: 256 * 1024,
            max_read: 64 * 1024,
        }
    }
}

/// Index of a node in a [`SimNet`].
pub type NodeId = usize;

/// One line of the event trace: when, where, what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceLine {
    /// Virtual time since the start.
    pub at: Duration,
    /// The node that emitted the event.
    pub node: NodeId,
    /// The event, formatted.
    pub event: String,
}

/// One direction of a virtual connection.
#[derive(Debug, Default)]
struct Pipe {
    /// Bytes with the time they arrive at the reader.
    data: VecDeque<(Nanos, Bytes)>,
    buffered: usize,
    /// The writer shut down or closed: EOF once everything before it is read.
    fin_at: Option<Nanos>,
    /// The connection was reset: errors from then on.
    reset_at: Option<Nanos>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct End {
    node: NodeId,
    peer: PeerId,
}

#[derive(Debug)]
struct Conn {
    ends: [End; 2],
    /// `pipes[i]` carries bytes written by `ends[i]`.
    pipes: [Pipe; 2],
    /// `closed[i]`: `ends[i]` dropped its socket; writes towards it fail.
    closed: [bool; 2],
}

impl Conn {
    /// Which end `peer` of node `n` is. The dialler is always `ends[0]`; a refused connection
    /// has the dialler at both ends, and it is still side 0.
    fn side(&self, n: NodeId, peer: PeerId) -> usize {
        usize::from(self.ends[0] != End { node: n, peer })
    }
}

#[derive(Debug)]
struct Node {
    engine: Engine,
    ip: IpAddr,
    interest: BTreeMap<PeerId, Interest>,
    conn_of: BTreeMap<PeerId, usize>,
}

/// Something scheduled for later.
#[derive(Debug)]
enum Action {
    /// A SYN reaches `addr`.
    Syn { from: End, addr: SocketAddr },
    /// The connect failed (nobody listening).
    Refused { from: End },
}

/// Several engines on one virtual network.
#[derive(Debug)]
pub struct SimNet {
    start: Instant,
    now: Nanos,
    link: Link,
    rng: SimRng,
    nodes: Vec<Node>,
    listeners: BTreeMap<SocketAddr, (NodeId, ListenerId)>,
    blackholes: Vec<IpAddr>,
    conns: Vec<Option<Conn>>,
    actions: BTreeMap<(Nanos, u64), Action>,
    action_seq: u64,
    next_port: u16,
    trace: Vec<TraceLine>,
}

impl SimNet {
    /// An empty network; `start` is the instant virtual time begins at.
    pub fn new(seed: u64, start: Instant, link: Link) -> Self {
        SimNet {
            start,
            now: 0,
            link,
            rng: SimRng::new(seed),
            nodes: Vec::new(),
            listeners: BTreeMap::new(),
            blackholes: Vec::new(),
            conns: Vec::new(),
            actions: BTreeMap::new(),
            action_seq: 0,
            next_port: 40_000,
            trace: Vec::new(),
        }
    }

    /// Adds a node (host `10.0.0.N`, virtual) running an engine with `config`.
    pub fn add_node(&mut self, config: Config) -> Result<NodeId, ConfigError> {
        // Entropy from the network's seed, so secure runs repeat exactly too.
        let mut entropy = [0u8; 32];
        for chunk in entropy.chunks_mut(8) {
            chunk.copy_from_slice(&self.rng.next_u64().to_le_bytes());
        }
        let engine = Engine::with_entropy(config, entropy)?;
        let n = self.nodes.len();
        let ip = IpAddr::V4(Ipv4Addr::new(10, 0, (n >> 8) as u8, (n & 0xff) as u8 + 1));
        self.nodes.push(Node {
            engine,
            ip,
            interest: BTreeMap::new(),
            conn_of: BTreeMap::new(),
        });
        Ok(n)
    }

    /// The node's engine, for application commands.
    pub fn engine(&mut self, node: NodeId) -> &mut Engine {
        &mut self.nodes[node].engine
    }

    /// The node's host address.
    pub fn ip(&self, node: NodeId) -> IpAddr {
        self.nodes[node].ip
    }

    /// The current virtual instant.
    pub fn now(&self) -> Instant {
        self.start + Duration::from_nanos(self.now)
    }

    /// Virtual time since the start.
    pub fn elapsed(&self) -> Duration {
        Duration::from_nanos(self.now)
    }

    /// Every event so far, in order.
    pub fn trace(&self) -> &[TraceLine] {
        &self.trace
    }

    /// Makes connects to this host go unanswered (they time out).
    pub fn blackhole(&mut self, ip: IpAddr) {
        self.blackholes.push(ip);
    }

    /// Starts a listener on the node (port chosen by the network) and returns its address once
    /// bound.
    pub fn listen(&mut self, node: NodeId) -> Option<SocketAddr> {
        let addr = SocketAddr::new(self.nodes[node].ip, 0);
        let now = self.now();
        let id = self.nodes[node].engine.listen(addr).ok()?;
        self.settle(&mut |_, _, _, _| {});
        let _ = now;
        self.listeners
            .iter()
            .find(|(_, (n, l))| *n == node && *l == id)
            .map(|(a, _)| *a)
    }

    /// Resets the connection under `peer` of `node`: both ends see `ConnectionReset`.
    pub fn reset(&mut self, node: NodeId, peer: PeerId) {
        if let Some(&c) = self.nodes[node].conn_of.get(&peer) {
            if let Some(conn) = self.conns[c].as_mut() {
                for pipe in &mut conn.pipes {
                    pipe.reset_at = Some(self.now);
                }
            }
        }
    }

    /// Runs for `d` of virtual time, handing every event to `on_event` (which may issue commands
    /// on the engine it is given).
    pub fn run_for(
        &mut self,
        d: Duration,
        mut on_event: impl FnMut(NodeId, &mut Engine, Event, Instant),
    ) {
        let deadline = self.now.saturating_add(nanos(d));
        loop {
            self.settle(&mut on_event);
            let next = self.next_wakeup();
            match next {
                Some(t) if t <= deadline => self.now = self.now.max(t),
                _ => {
                    self.now = deadline;
                    self.settle(&mut on_event);
                    return;
                }
            }
            self.fire_actions();
            let now = self.now();
            for node in &mut self.nodes {
                if node.engine.poll_timeout().is_some_and(|t| t <= now) {
                    node.engine.handle_timeout(now);
                }
            }
        }
    }

    /// Performs all IO possible at the current instant until nothing moves.
    fn settle(&mut self, on_event: &mut impl FnMut(NodeId, &mut Engine, Event, Instant)) {
        loop {
            let mut progress = false;
            for n in 0..self.nodes.len() {
                progress |= self.drain_outputs(n, on_event);
                progress |= self.pump(n);
                progress |= self.drain_outputs(n, on_event);
            }
            if !progress {
                return;
            }
        }
    }

    fn drain_outputs(
        &mut self,
        n: NodeId,
        on_event: &mut impl FnMut(NodeId, &mut Engine, Event, Instant),
    ) -> bool {
        let mut progress = false;
        loop {
            let mut any = false;
            while let Some(io) = self.nodes[n].engine.poll_io() {
                any = true;
                self.apply(n, io);
            }
            let now = self.now();
            while let Some(event) = self.nodes[n].engine.poll_event() {
                any = true;
                let line = match &event {
                    // Payloads are summarised (length and checksum), not spelled out.
                    Event::Received { peer, data } => {
                        let sum = data
                            .iter()
                            .fold(0u32, |h, b| h.rotate_left(5) ^ u32::from(*b));
                        format!(
                            "Received {{ peer: {peer:?}, len: {}, sum: {sum:08x} }}",
                            data.len()
                        )
                    }
                    other => format!("{other:?}"),
                };
                self.trace.push(TraceLine {
                    at: Duration::from_nanos(self.now),
                    node: n,
                    event: line,
                });
                on_event(n, &mut self.nodes[n].engine, event, now);
            }
            if !any {
                return progress;
            }
            progress = true;
        }
    }

    fn schedule(&mut self, delay: Nanos, action: Action) {
        self.action_seq += 1;
        self.actions
            .insert((self.now.saturating_add(delay), self.action_seq), action);
    }

    fn apply(&mut self, n: NodeId, io: Io) {
        let now = self.now();
        let latency = nanos(self.link.latency);
        match io {
            Io::Listen { listener, addr } => {
                let mut addr = addr;
                if addr.port() == 0 {
                    self.next_port += 1;
                    addr.set_port(self.next_port);
                }
                match self.listeners.entry(addr) {
                    std::collections::btree_map::Entry::Occupied(_) => {
                        let e = io::ErrorKind::AddrInUse;
                        self.nodes[n].engine.handle_listen_failed(listener, e, now);
                    }
                    std::collections::btree_map::Entry::Vacant(slot) => {
                        slot.insert((n, listener));
                        self.nodes[n].engine.handle_listening(listener, addr, now);
                    }
                }
            }
            Io::CloseListener { listener } => {
                self.listeners
                    .retain(|_, (node, l)| !(*node == n && *l == listener));
            }
            Io::Connect { peer, addr } => {
                let from = End { node: n, peer };
                if self.blackholes.contains(&addr.ip()) {
                    return;
                }
                if self.listeners.contains_key(&addr) {
                    self.schedule(latency, Action::Syn { from, addr });
                } else {
                    self.schedule(latency.saturating_mul(2), Action::Refused { from });
                }
            }
            Io::Interest { peer, interest } => {
                self.nodes[n].interest.insert(peer, interest);
            }
            Io::ShutdownWrite { peer } => self.fin(n, peer),
            Io::Close { peer, .. } => {
                self.fin(n, peer);
                self.nodes[n].interest.remove(&peer);
                if let Some(c) = self.nodes[n].conn_of.remove(&peer) {
                    if let Some(conn) = self.conns[c].as_mut() {
                        let side = conn.side(n, peer);
                        conn.closed[side] = true;
                        // Closing with unread data, as in TCP, resets the connection.
                        if !conn.pipes[1 - side].data.is_empty() {
                            let at = self.now.saturating_add(latency);
                            conn.pipes[side].reset_at.get_or_insert(at);
                        }
                    }
                }
            }
        }
    }

    /// Marks the end of `peer`'s outgoing stream.
    fn fin(&mut self, n: NodeId, peer: PeerId) {
        let latency = nanos(self.link.latency);
        let Some(&c) = self.nodes[n].conn_of.get(&peer) else {
            return;
        };
        let now = self.now;
        if let Some(conn) = self.conns[c].as_mut() {
            let side = conn.side(n, peer);
            let pipe = &mut conn.pipes[side];
            if pipe.fin_at.is_none() {
                let last = pipe.data.back().map_or(0, |(t, _)| *t);
                pipe.fin_at = Some(now.saturating_add(latency).max(last));
            }
        }
    }

    fn fire_actions(&mut self) {
        let now = self.now;
        while let Some((&key, _)) = self.actions.iter().next() {
            if key.0 > now {
                return;
            }
            let Some(action) = self.actions.remove(&key) else {
                return;
            };
            let at = self.now();
            match action {
                Action::Refused { from } => {
                    let e = io::ErrorKind::ConnectionRefused;
                    self.nodes[from.node]
                        .engine
                        .handle_connect_failed(from.peer, e, at);
                }
                Action::Syn { from, addr } => {
                    let Some(&(node, listener)) = self.listeners.get(&addr) else {
                        self.schedule(nanos(self.link.latency), Action::Refused { from });
                        continue;
                    };
                    self.next_port += 1;
                    let remote = SocketAddr::new(self.nodes[from.node].ip, self.next_port);
                    let accepted = self.nodes[node]
                        .engine
                        .handle_accepted(listener, remote, at);
                    let c = self.conns.len();
                    self.nodes[from.node].conn_of.insert(from.peer, c);
                    self.nodes[from.node].engine.handle_connected(from.peer, at);
                    let mut conn = Conn {
                        ends: [from, from],
                        pipes: Default::default(),
                        closed: [false; 2],
                    };
                    match accepted {
                        Ok(peer) => {
                            conn.ends[1] = End { node, peer };
                            self.nodes[node].conn_of.insert(peer, c);
                        }
                        // Refused: the server dropped the socket, the client sees EOF.
                        Err(_) => {
                            conn.pipes[1].fin_at = Some(now);
                            conn.closed[1] = true;
                        }
                    }
                    self.conns.push(Some(conn));
                }
            }
        }
    }

    /// Reads and writes everything the node's interest allows now.
    fn pump(&mut self, n: NodeId) -> bool {
        let mut progress = false;
        let peers: Vec<(PeerId, Interest)> = self.nodes[n]
            .interest
            .iter()
            .map(|(p, i)| (*p, *i))
            .collect();
        for (peer, interest) in peers {
            let Some(&c) = self.nodes[n].conn_of.get(&peer) else {
                continue;
            };
            if interest.write {
                progress |= self.pump_write(n, peer, c);
            }
            if interest.read {
                progress |= self.pump_read(n, peer, c);
            }
        }
        progress
    }

    fn pump_write(&mut self, n: NodeId, peer: PeerId, c: usize) -> bool {
        let latency = nanos(self.link.latency);
        let window = self.link.window;
        let now_ns = self.now;
        let now = self.now();
        let Some(conn) = self.conns[c].as_mut() else {
            return false;
        };
        let side = conn.side(n, peer);
        let peer_gone = conn.ends[0] == conn.ends[1];
        if conn.closed[1 - side] {
            // Writing to a socket the other end dropped: the RST comes back.
            let e = io::ErrorKind::ConnectionReset;
            let r = self.nodes[n].engine.write_to(peer, now, |_| Err(e.into()));
            return r == Transfer::Closed;
        }
        let pipe = &mut conn.pipes[side];
        let mut moved = false;
        loop {
            if pipe.reset_at.is_some_and(|t| t <= now_ns) {
                let e = io::ErrorKind::ConnectionReset;
                let r = self.nodes[n].engine.write_to(peer, now, |_| Err(e.into()));
                return moved || r == Transfer::Closed;
            }
            let room = window.saturating_sub(pipe.buffered);
            let r = self.nodes[n].engine.write_to(peer, now, |slices| {
                if room == 0 {
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                let mut taken = 0;
                for s in slices {
                    let k = s.len().min(room - taken);
                    if k > 0 && !peer_gone {
                        pipe.data
                            .push_back((now_ns + latency, Bytes::copy_from_slice(&s[..k])));
                    }
                    taken += k;
                    if taken == room {
                        break;
                    }
                }
                if !peer_gone {
                    pipe.buffered += taken;
                }
                Ok(taken)
            });
            match r {
                Transfer::Moved(_) => moved = true,
                _ => return moved,
            }
        }
    }

    fn pump_read(&mut self, n: NodeId, peer: PeerId, c: usize) -> bool {
        let now_ns = self.now;
        let now = self.now();
        let max_read = self.link.max_read;
        let Some(conn) = self.conns[c].as_mut() else {
            return false;
        };
        let side = conn.side(n, peer);
        // We read what the other end wrote.
        let pipe = &mut conn.pipes[1 - side];
        let mut moved = false;
        loop {
            let limit = self.rng.up_to(max_read);
            let r = self.nodes[n].engine.read_from(peer, now, |buf| {
                if pipe.reset_at.is_some_and(|t| t <= now_ns) {
                    return Err(io::ErrorKind::ConnectionReset.into());
                }
                let mut filled = 0;
                let cap = buf.len().min(limit);
                while filled < cap {
                    let Some((at, chunk)) = pipe.data.front_mut() else {
                        break;
                    };
                    if *at > now_ns {
                        break;
                    }
                    let k = chunk.len().min(cap - filled);
                    buf[filled..filled + k].copy_from_slice(&chunk[..k]);
                    filled += k;
                    if k == chunk.len() {
                        pipe.data.pop_front();
                    } else {
                        *chunk = chunk.slice(k..);
                    }
                }
                pipe.buffered -= filled;
                if filled > 0 {
                    return Ok(filled);
                }
                match pipe.fin_at {
                    Some(t) if t <= now_ns && pipe.data.is_empty() => Ok(0),
                    _ => Err(io::ErrorKind::WouldBlock.into()),
                }
            });
            match r {
                Transfer::Moved(_) => moved = true,
                Transfer::Closed => return true,
                _ => return moved,
            }
        }
    }

    /// The earliest instant something can happen: an engine deadline, data or EOF arriving, a
    /// scheduled action.
    fn next_wakeup(&self) -> Option<Nanos> {
        let mut next: Option<Nanos> = self.actions.keys().next().map(|k| k.0);
        let mut consider = |t: Nanos| next = Some(next.map_or(t, |n: Nanos| n.min(t)));
        for node in &self.nodes {
            if let Some(t) = node.engine.poll_timeout() {
                let t = nanos(t.saturating_duration_since(self.start));
                consider(t.max(self.now));
            }
        }
        for conn in self.conns.iter().flatten() {
            for pipe in &conn.pipes {
                if let Some((t, _)) = pipe.data.front() {
                    if *t > self.now {
                        consider(*t);
                    }
                }
                for t in [pipe.fin_at, pipe.reset_at].into_iter().flatten() {
                    if t > self.now {
                        consider(t);
                    }
                }
            }
        }
        next
    }
}
