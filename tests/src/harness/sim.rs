//! The simulated network (`openp2p_core::sim`) behind the facade: one shared [`SimNet`], virtual
//! time advanced by whichever node waits for an event.

use super::{Harness, TestNode, PATIENCE};
use openp2p_core::sim::{Link, NodeId, SimNet, TraceLine};
use openp2p_core::{
    Bytes, Config, ConnectError, Event, Framing, GlobalStats, Limits, PeerId, PeerKey, PeerStats,
    SendError, SendManyFailures,
};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Virtual time advanced per step while a node waits for an event.
const STEP: Duration = Duration::from_millis(1);

#[derive(Debug)]
struct State {
    net: SimNet,
    queues: Vec<VecDeque<Event>>,
}

impl State {
    /// Runs the network for `d` of virtual time, queueing every event at its node.
    fn run(&mut self, d: Duration) {
        let State { net, queues } = self;
        net.run_for(d, |node, _engine, event, _now| {
            queues[node].push_back(event)
        });
    }
}

/// Nodes on one deterministic simulated network: the same seed and the same scenario give the
/// same event trace.
///
/// ```
/// use openp2p_tests::harness::{expect, Harness, SimHarness, TestNode};
/// use openp2p_core::{Config, Event};
///
/// let mut h = SimHarness::new(1);
/// let server = h.start(Config::default());
/// let addr = server.listen("127.0.0.1:0".parse().unwrap());
/// let client = h.start(Config::default());
/// let peer = client.connect(addr).unwrap();
/// expect(&client, "connected", |e| matches!(e, Event::Connected { peer: p, .. } if *p == peer).then_some(()));
/// ```
#[derive(Debug, Clone)]
pub struct SimHarness {
    state: Rc<RefCell<State>>,
}

impl SimHarness {
    /// A network with the default [`Link`] (1 ms latency, 256 KiB window) and this seed.
    pub fn new(seed: u64) -> SimHarness {
        SimHarness::with_link(seed, Link::default())
    }

    /// A network with this link model.
    pub fn with_link(seed: u64, link: Link) -> SimHarness {
        let net = SimNet::new(seed, Instant::now(), link);
        SimHarness {
            state: Rc::new(RefCell::new(State {
                net,
                queues: Vec::new(),
            })),
        }
    }

    /// Every event emitted so far, in order, with its virtual time and node.
    pub fn trace(&self) -> Vec<TraceLine> {
        self.state.borrow().net.trace().to_vec()
    }

    /// Makes connects to `addr`'s host go unanswered (they time out).
    pub fn blackhole(&mut self, addr: SocketAddr) {
        self.state.borrow_mut().net.blackhole(addr.ip());
    }

    /// Virtual time since the network started.
    pub fn elapsed(&self) -> Duration {
        self.state.borrow().net.elapsed()
    }
}

impl Harness for SimHarness {
    type Node = SimNode;

    fn name(&self) -> &'static str {
        "sim"
    }

    fn start(&mut self, config: Config) -> SimNode {
        let mut state = self.state.borrow_mut();
        let id = state.net.add_node(config).expect("a valid configuration");
        state.queues.push(VecDeque::new());
        SimNode {
            state: Rc::clone(&self.state),
            id,
            finished: std::cell::Cell::new(false),
        }
    }

    fn closed_addr(&mut self) -> SocketAddr {
        // The network numbers its ports from 40,001 up: port 9 is never listened on.
        SocketAddr::from(([10, 0, 0, 1], 9))
    }

    fn is_virtual(&self) -> bool {
        true
    }
}

/// One engine on the simulated network.
#[derive(Debug)]
pub struct SimNode {
    state: Rc<RefCell<State>>,
    id: NodeId,
    /// `ShutdownComplete` was handed out already (after `begin_shutdown`).
    finished: std::cell::Cell<bool>,
}

impl SimNode {
    fn with<T>(&self, f: impl FnOnce(&mut openp2p_core::Engine, Instant) -> T) -> T {
        let mut state = self.state.borrow_mut();
        let now = state.net.now();
        f(state.net.engine(self.id), now)
    }

    /// The node's own address for a loopback or unspecified IPv4 request (each simulated host has
    /// its own address); other addresses (IPv6) are used as given.
    fn local(&self, addr: SocketAddr) -> SocketAddr {
        match addr.ip() {
            IpAddr::V4(ip) if ip.is_loopback() || ip.is_unspecified() => {
                SocketAddr::new(self.state.borrow().net.ip(self.id), addr.port())
            }
            _ => addr,
        }
    }
}

impl TestNode for SimNode {
    fn listen(&self, addr: SocketAddr) -> SocketAddr {
        let framing = self.with(|e, _| e.config().framing);
        self.listen_with(addr, framing)
    }

    fn listen_with(&self, addr: SocketAddr, framing: Framing) -> SocketAddr {
        let addr = self.local(addr);
        let listener = self
            .with(|e, _| e.listen_with(addr, framing))
            .expect("listen on a running engine");
        let mut state = self.state.borrow_mut();
        state.run(Duration::ZERO);
        state.queues[self.id]
            .iter()
            .find_map(|e| match e {
                Event::Listening { listener: l, addr } if *l == listener => Some(*addr),
                _ => None,
            })
            .unwrap_or_else(|| panic!("sim: listening on {addr} failed"))
    }

    fn connect(&self, addr: SocketAddr) -> Result<PeerId, ConnectError> {
        self.with(|e, now| e.connect(addr, now))
    }

    fn connect_with(&self, addr: SocketAddr, framing: Framing) -> Result<PeerId, ConnectError> {
        self.with(|e, now| e.connect_with(addr, framing, now))
    }

    fn connect_pinned(&self, addr: SocketAddr, key: PeerKey) -> Result<PeerId, ConnectError> {
        self.with(|e, now| e.connect_pinned(addr, key, now))
    }

    fn send(&self, peer: PeerId, data: Bytes) -> Result<(), SendError> {
        self.with(|e, now| e.send(peer, data, now))
    }

    fn send_many(&self, peers: &[PeerId], data: Bytes) -> SendManyFailures {
        self.with(|e, now| e.send_many(peers, data, now))
    }

    fn disconnect(&self, peer: PeerId) {
        let _ = self.with(|e, now| e.disconnect(peer, now));
    }

    fn abort(&self, peer: PeerId) {
        let _ = self.with(|e, now| e.abort(peer, now));
    }

    fn set_limits(&self, peer: PeerId, limits: Limits) {
        let _ = self.with(|e, now| e.set_limits(peer, limits, now));
    }

    fn set_global_limits(&self, limits: Limits) {
        self.with(|e, now| e.set_global_limits(limits, now));
    }

    fn global_stats(&self) -> GlobalStats {
        self.with(|e, _| e.global_stats())
    }

    fn peer_stats(&self, peer: PeerId) -> Option<PeerStats> {
        self.with(|e, _| e.stats(peer))
    }

    fn next_event(&self, timeout: Duration) -> Option<Event> {
        let mut state = self.state.borrow_mut();
        let deadline = state.net.elapsed() + timeout;
        loop {
            if let Some(event) = state.queues[self.id].pop_front() {
                if event == Event::ShutdownComplete {
                    self.finished.set(true);
                }
                return Some(event);
            }
            let now = state.net.elapsed();
            if now >= deadline {
                return None;
            }
            state.run((deadline - now).min(STEP));
        }
    }

    fn now(&self) -> Instant {
        self.state.borrow().net.now()
    }

    fn begin_shutdown(&self) {
        self.with(|e, now| e.shutdown(now));
    }

    fn shutdown(self) -> Vec<Event> {
        if self.finished.get() {
            return self.state.borrow_mut().queues[self.id].drain(..).collect();
        }
        self.with(|e, now| e.shutdown(now));
        let mut events = Vec::new();
        while let Some(event) = self.next_event(PATIENCE) {
            let done = event == Event::ShutdownComplete;
            events.push(event);
            if done {
                return events;
            }
        }
        panic!("sim: no ShutdownComplete within {PATIENCE:?}; got {events:?}");
    }
}
