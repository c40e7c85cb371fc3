//! The engine: every decision about peers, buffers, budgets and timeouts, and no IO.

use crate::clock::{Clock, Nanos};
use crate::error::{ConnectError, ListenError, SendError, UnknownId};
use crate::fair::SharedBudget;
use crate::peer::{Block, Peer, Phase, DOWN, UP};
use crate::pool::Pool;
use crate::secure::outbox::FreeOutboxes;
use crate::secure::Channel;
use crate::stats::Flow;
use crate::timer::{TimerKind, Timers};
use crate::{
    Config, ConfigError, ConnectFailure, Direction, DisconnectReason, Event, Framing, Io, Limits,
    ListenerId, PeerId,
};
use crate::{HandshakeFailure, PeerKey};
use bytes::Bytes;
use core::net::{IpAddr, SocketAddr};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use slab::Slab;
use smallvec::SmallVec;
use std::collections::{HashMap, VecDeque};
use std::time::Instant;

#[derive(Debug)]
pub(crate) struct Listener {
    pub(crate) id: ListenerId,
    pub(crate) addr: SocketAddr,
    pub(crate) framing: Framing,
    pub(crate) bound: bool,
}

/// Failures of one `send_many`: which peers refused and why (inline up to 4, no allocation).
pub type SendManyFailures = SmallVec<[(PeerId, SendError); 4]>;

/// The sans-IO peer-to-peer engine.
///
/// It opens no socket, reads no clock and starts no thread: a driver owns the sockets and the
/// clock, passes `now` into every call, performs the [`Io`] the engine asks for and hands the
/// [`Event`]s to the application. The methods come in four groups:
///
/// 1. **Application commands** (the Open.P2P verbs): [`listen`](Self::listen),
///    [`connect`](Self::connect), [`send`](Self::send), [`send_many`](Self::send_many),
///    [`disconnect`](Self::disconnect) (graceful: flush, then close), [`abort`](Self::abort),
///    [`set_limits`](Self::set_limits), [`set_global_limits`](Self::set_global_limits),
///    [`close_listener`](Self::close_listener), [`shutdown`](Self::shutdown).
/// 2. **Driver inputs**, each with `now`: [`handle_listening`](Self::handle_listening),
///    [`handle_listen_failed`](Self::handle_listen_failed),
///    [`handle_accepted`](Self::handle_accepted), [`handle_connected`](Self::handle_connected),
///    [`handle_connect_failed`](Self::handle_connect_failed), the read path
///    [`read_from`](Self::read_from) (the engine lends a slice of a pooled segment sized by the
///    download budget; the driver's closure reads into it and returns the count, 0 for EOF), the
///    write path [`write_to`](Self::write_to) (the engine hands the queue's next slices allowed by
///    the upload budget; the closure returns what the socket took),
///    [`handle_error`](Self::handle_error), [`handle_timeout`](Self::handle_timeout).
/// 3. **Outputs**: [`poll_io`](Self::poll_io), [`poll_event`](Self::poll_event),
///    [`poll_timeout`](Self::poll_timeout).
/// 4. **Queries**: [`peer`](Self::peer), [`stats`](Self::stats),
///    [`global_stats`](Self::global_stats), [`pool_usage`](Self::pool_usage),
///    [`interest`](Self::interest).
///
/// # The driver loop
///
/// After **every** input the driver drains `poll_io` until `None` and performs each `Io`, drains
/// `poll_event` until `None` and hands each to the application, then sleeps until readiness or
/// the instant `poll_timeout` names, whichever is first, and calls `handle_timeout` when that
/// instant has passed. Calls in any other order are safe (never a panic, never a lost event): a
/// stale id is a no-op or a typed error, a repeated or out-of-order report is ignored, and a
/// `now` earlier than one already seen is treated as the latest one seen.
///
/// ```
/// use openp2p_core::{Config, Engine, Event, Io, Transfer};
/// use std::time::Instant;
///
/// let now = Instant::now();
/// let mut engine = Engine::new(Config::default()).unwrap();
/// let peer = engine.connect("127.0.0.1:9988".parse().unwrap(), now).unwrap();
/// assert!(matches!(engine.poll_io(), Some(Io::Connect { .. })));
/// // ... the driver connected the socket:
/// engine.handle_connected(peer, now);
/// assert!(matches!(engine.poll_event(), Some(Event::Connected { .. })));
/// engine.send(peer, "hello".into(), now).unwrap();
/// // ... the socket is writable: the driver hands the engine's slices to the socket.
/// let mut wire = Vec::new();
/// let moved = engine.write_to(peer, now, |slices| {
///     slices.iter().for_each(|s| wire.extend_from_slice(s));
///     Ok(wire.len())
/// });
/// assert_eq!(moved, Transfer::Moved(5));
/// assert_eq!(wire, b"hello");
/// ```
#[derive(Debug)]
pub struct Engine {
    pub(crate) config: Config,
    pub(crate) clock: Clock,
    pub(crate) peers: Slab<Peer>,
    pub(crate) listeners: Slab<Listener>,
    pub(crate) next_serial: u64,
    pub(crate) pool: Pool,
    pub(crate) timers: Timers,
    pub(crate) io: VecDeque<Io>,
    pub(crate) events: VecDeque<Event>,
    pub(crate) global: [SharedBudget; 2],
    pub(crate) global_limits: Limits,
    pub(crate) per_ip: HashMap<IpAddr, usize>,
    pub(crate) pending_connects: usize,
    pub(crate) pool_waiters: VecDeque<PeerId>,
    /// Peers holding a segment with a partial message while idle (see `Peer::listed_idle`); each at most once.
    pub(crate) idle_holders: VecDeque<PeerId>,
    pub(crate) pool_retry_at: Option<Nanos>,
    pub(crate) pool_backoff: Nanos,
    pub(crate) scratch: Vec<PeerId>,
    pub(crate) totals: Totals,
    pub(crate) shutting_down: bool,
    pub(crate) shutdown_reported: bool,
    /// Where handshakes draw their ephemeral keys from (secure engines only).
    pub(crate) entropy: Option<Box<ChaCha20Rng>>,
    /// Drained sealed-output buffers kept for reuse.
    pub(crate) outboxes: FreeOutboxes,
}

/// Engine-wide counters.
#[derive(Debug, Default)]
pub(crate) struct Totals {
    pub(crate) received: Flow,
    pub(crate) sent: Flow,
    pub(crate) first_activity: Option<Nanos>,
    pub(crate) inbound: u64,
    pub(crate) outbound: u64,
    pub(crate) refused: u64,
    pub(crate) accept_errors: u64,
    pub(crate) failed_connects: u64,
    pub(crate) handshake_failures: u64,
    pub(crate) accepted: u64,
    pub(crate) written: u64,
    pub(crate) unsent: u64,
}

impl Engine {
    /// Validates `config` and allocates the receive pool. A secure `config` needs entropy:
    /// use [`with_entropy`](Self::with_entropy).
    pub fn new(config: Config) -> Result<Engine, ConfigError> {
        if config.secure.is_some() {
            return Err(ConfigError::NeedsEntropy);
        }
        Self::build(config, None)
    }

    /// Like [`new`](Self::new), with 32 bytes of entropy from which every secure handshake draws
    /// its ephemeral key (the engine reads no RNG of its own). Drivers pass the operating
    /// system's randomness; a simulation passes its seed, so its runs repeat exactly. Never reuse
    /// a seed outside tests: two engines with the same seed make the same ephemeral keys.
    ///
    /// ```
    /// use openp2p_core::{Config, Engine, Identity, SecureConfig};
    /// let config = Config {
    ///     secure: Some(SecureConfig::new(Identity::from_entropy([1; 32]))),
    ///     ..Config::default()
    /// };
    /// assert!(Engine::new(config.clone()).is_err());
    /// let engine = Engine::with_entropy(config, [9; 32])?; // a driver: openp2p_core::os_entropy()
    /// # Ok::<(), openp2p_core::ConfigError>(())
    /// ```
    pub fn with_entropy(config: Config, entropy: [u8; 32]) -> Result<Engine, ConfigError> {
        Self::build(config, Some(Box::new(ChaCha20Rng::from_seed(entropy))))
    }

    /// Like [`with_entropy`](Self::with_entropy), seeded from the operating system's RNG
    /// (feature `os-entropy`): what every driver calls, secure or not (a plaintext `config`
    /// reads no entropy).
    #[cfg(feature = "os-entropy")]
    pub fn with_os_entropy(config: Config) -> Result<Engine, ConfigError> {
        if config.secure.is_none() {
            // A plaintext engine draws nothing: it needs no RNG to start.
            return Self::build(config, None);
        }
        let entropy = crate::os_entropy().map_err(|_| ConfigError::NoEntropy)?;
        Self::with_entropy(config, entropy)
    }

    fn build(config: Config, entropy: Option<Box<ChaCha20Rng>>) -> Result<Engine, ConfigError> {
        config.validate()?;
        let global_limits = config.global_limits;
        Ok(Engine {
            pool: Pool::new(config.segment_size, config.pool_segments),
            global: [
                SharedBudget::new(global_limits.upload, 0),
                SharedBudget::new(global_limits.download, 0),
            ],
            global_limits,
            config,
            clock: Clock::new(),
            peers: Slab::new(),
            listeners: Slab::new(),
            next_serial: 1,
            timers: Timers::default(),
            io: VecDeque::new(),
            events: VecDeque::new(),
            per_ip: HashMap::new(),
            pending_connects: 0,
            pool_waiters: VecDeque::new(),
            idle_holders: VecDeque::new(),
            pool_retry_at: None,
            pool_backoff: crate::transfer::POOL_RETRY,
            scratch: Vec::new(),
            totals: Totals::default(),
            shutting_down: false,
            shutdown_reported: false,
            entropy,
            outboxes: FreeOutboxes::default(),
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    // ----- 1. Application commands -------------------------------------------------------------

    /// Asks the driver to listen on `addr` with the configured default framing. The bound
    /// address arrives as [`Event::Listening`].
    pub fn listen(&mut self, addr: SocketAddr) -> Result<ListenerId, ListenError> {
        self.listen_with(addr, self.config.framing)
    }

    /// Like [`listen`](Self::listen), with the framing for every peer accepted on this listener.
    pub fn listen_with(
        &mut self,
        addr: SocketAddr,
        framing: Framing,
    ) -> Result<ListenerId, ListenError> {
        if self.shutting_down {
            return Err(ListenError::ShuttingDown);
        }
        let serial = self.serial();
        let entry = self.listeners.vacant_entry();
        let id = ListenerId {
            index: slot_index(entry.key()),
            serial,
        };
        entry.insert(Listener {
            id,
            addr,
            framing,
            bound: false,
        });
        self.io.push_back(Io::Listen { listener: id, addr });
        Ok(id)
    }

    /// Stops a listener. Its accepted peers are unaffected.
    pub fn close_listener(&mut self, listener: ListenerId) -> Result<(), UnknownId> {
        self.listener(listener).ok_or(UnknownId)?;
        self.listeners.remove(listener.slot());
        self.io.push_back(Io::CloseListener { listener });
        Ok(())
    }

    /// Starts an outbound connection with the configured default framing. Exactly one
    /// [`Event::Connected`] or [`Event::ConnectFailed`] follows for the returned id. Data sent
    /// before it connects is queued.
    pub fn connect(&mut self, addr: SocketAddr, now: Instant) -> Result<PeerId, ConnectError> {
        self.connect_with(addr, self.config.framing, now)
    }

    /// Like [`connect`](Self::connect), and the remote must prove `key` in the secure
    /// handshake: another key fails the connect with
    /// [`HandshakeFailure::KeyMismatch`](crate::HandshakeFailure::KeyMismatch) before this
    /// engine sends its own static key or any application data (only the first handshake
    /// message, an ephemeral key, has gone out). On a plaintext engine, where no key can be proven, this is
    /// [`ConnectError::NotSecure`].
    pub fn connect_pinned(
        &mut self,
        addr: SocketAddr,
        key: PeerKey,
        now: Instant,
    ) -> Result<PeerId, ConnectError> {
        self.connect_full(addr, self.config.framing, Some(key), now)
    }

    /// Like [`connect`](Self::connect), with this connection's framing.
    pub fn connect_with(
        &mut self,
        addr: SocketAddr,
        framing: Framing,
        now: Instant,
    ) -> Result<PeerId, ConnectError> {
        self.connect_full(addr, framing, None, now)
    }

    /// A connect with its framing and, optionally, the key the remote must prove.
    pub fn connect_full(
        &mut self,
        addr: SocketAddr,
        framing: Framing,
        expect: Option<PeerKey>,
        now: Instant,
    ) -> Result<PeerId, ConnectError> {
        let now = self.clock.observe(now);
        if expect.is_some() && self.config.secure.is_none() {
            return Err(ConnectError::NotSecure);
        }
        if self.shutting_down {
            return Err(ConnectError::ShuttingDown);
        }
        if self.peers.len() >= self.config.max_peers {
            return Err(ConnectError::MaxPeers);
        }
        if self.pending_connects >= self.config.max_pending_connects {
            return Err(ConnectError::MaxPendingConnects);
        }
        let id = self.insert_peer(addr, Direction::Outbound, framing, now);
        if let Some(p) = self.peer_mut(id) {
            if let Some(channel) = &mut p.secure {
                channel.expect = expect;
            }
        }
        self.pending_connects += 1;
        let deadline = now.saturating_add(crate::clock::nanos(self.config.connect_timeout));
        self.arm(id, TimerKind::Connect, deadline);
        self.io.push_back(Io::Connect { peer: id, addr });
        Ok(id)
    }

    /// Queues one message for `peer`, framed by the peer's framing. Zero-copy: the `Bytes` is kept
    /// until written. Nothing is queued when an error is returned.
    pub fn send(&mut self, peer: PeerId, data: Bytes, now: Instant) -> Result<(), SendError> {
        let now = self.clock.observe(now);
        self.send_at(peer, data, now)
    }

    /// Like [`send`](Self::send), but a refusal is reported in order with the peer's other events,
    /// as [`Event::SendRefused`] carrying the message back: for drivers whose `send` does not wait
    /// for the engine. Nothing is ever dropped silently: a message for a peer that is already gone
    /// comes back as `SendRefused` with [`SendError::UnknownPeer`], the one event that can follow
    /// a peer's `Disconnected` or `ConnectFailed` (a driver's handle may have accepted the message
    /// while that event was on its way to the application).
    ///
    /// ```
    /// use openp2p_core::{Config, Engine, Event, SendError};
    /// # let now = std::time::Instant::now();
    /// let mut engine = Engine::new(Config::default()).unwrap();
    /// let peer = engine.connect("127.0.0.1:9988".parse().unwrap(), now).unwrap();
    /// engine.abort(peer, now).unwrap();
    /// assert!(matches!(engine.poll_event(), Some(Event::ConnectFailed { .. })));
    /// // A handle accepted this before it learnt that the connect had been aborted:
    /// engine.send_or_report(peer, "late".into(), now);
    /// assert!(matches!(
    ///     engine.poll_event(),
    ///     Some(Event::SendRefused { error: SendError::UnknownPeer, data, .. }) if data == "late"
    /// ));
    /// ```
    pub fn send_or_report(&mut self, peer: PeerId, data: Bytes, now: Instant) {
        let now = self.clock.observe(now);
        if let Err(error) = self.send_at(peer, data.clone(), now) {
            self.events
                .push_back(Event::SendRefused { peer, error, data });
        }
    }

    /// Queues the same message for every peer in `peers` (one `Bytes`, shared, no copy). Returns
    /// the peers that refused it, with why.
    pub fn send_many(&mut self, peers: &[PeerId], data: Bytes, now: Instant) -> SendManyFailures {
        let now = self.clock.observe(now);
        let mut failures = SendManyFailures::new();
        for &peer in peers {
            if let Err(e) = self.send_at(peer, data.clone(), now) {
                failures.push((peer, e));
            }
        }
        failures
    }

    fn send_at(&mut self, peer: PeerId, data: Bytes, now: Nanos) -> Result<(), SendError> {
        let p = lookup(&mut self.peers, peer).ok_or(SendError::UnknownPeer)?;
        if !p.accepts_sends() {
            return Err(SendError::Closing);
        }
        let len = match self.config.admit(p.framing, &data, p.queued()) {
            Ok(len) => len,
            Err(e) => {
                if matches!(e, SendError::QueueFull { .. }) {
                    p.notify_writable = true;
                }
                return Err(e);
            }
        };
        p.queue.push(p.framing, data);
        p.accepted += len;
        if len > 0 {
            p.last_activity = p.last_activity.max(now);
        }
        self.totals.accepted += len;
        self.update_interest(peer);
        Ok(())
    }

    /// Closes gracefully: no new sends, everything queued is written, our side is shut down, and
    /// the peer is closed when the remote closes too (or `Config::linger_timeout` passes). A peer
    /// still connecting closes the same way once connected (what was queued is delivered); use
    /// [`abort`](Self::abort) to abandon a connect.
    pub fn disconnect(&mut self, peer: PeerId, now: Instant) -> Result<(), UnknownId> {
        let now = self.clock.observe(now);
        let p = self.peer_mut(peer).ok_or(UnknownId)?;
        match p.phase {
            Phase::Connecting | Phase::Handshaking => p.close_when_connected = true,
            Phase::Connected => self.begin_drain(peer, DisconnectReason::Local, now),
            Phase::Draining(_) | Phase::HalfClosed(_) => {}
        }
        Ok(())
    }

    /// Closes at once; queued bytes are dropped and reported as `unsent`.
    pub fn abort(&mut self, peer: PeerId, now: Instant) -> Result<(), UnknownId> {
        let now = self.clock.observe(now);
        self.peer_ref(peer).ok_or(UnknownId)?;
        self.close(peer, DisconnectReason::Aborted, now);
        Ok(())
    }

    /// Stops (`true`) or resumes (`false`) reading from one peer, independently of its limits:
    /// back-pressure for a driver whose consumer of that peer's data is slow. TCP's window then
    /// slows the remote down.
    pub fn pause_reading(&mut self, peer: PeerId, paused: bool) -> Result<(), UnknownId> {
        let p = self.peer_mut(peer).ok_or(UnknownId)?;
        p.read_paused = paused;
        self.update_interest(peer);
        Ok(())
    }

    /// Changes one peer's upload and download limits from `now` on.
    pub fn set_limits(
        &mut self,
        peer: PeerId,
        limits: Limits,
        now: Instant,
    ) -> Result<(), UnknownId> {
        let now = self.clock.observe(now);
        let p = self.peer_mut(peer).ok_or(UnknownId)?;
        p.set_limits(limits, now);
        for dir in [UP, DOWN] {
            if p.blocks[dir] == Block::Budget {
                // Re-evaluate at once: the new rate may already allow more.
                p.blocks[dir] = Block::None;
            }
        }
        self.update_interest(peer);
        Ok(())
    }

    /// Changes the limits shared by all peers from `now` on.
    pub fn set_global_limits(&mut self, limits: Limits, now: Instant) {
        let now = self.clock.observe(now);
        self.global_limits = limits;
        for (dir, rate) in [(UP, limits.upload), (DOWN, limits.download)] {
            let released = self.global[dir].set_rate(rate, now);
            for peer in released {
                if let Some(p) = self.peer_mut(peer) {
                    p.shares[dir].parked = false;
                    if p.blocks[dir] == Block::Global {
                        p.blocks[dir] = Block::None;
                    }
                    self.update_interest(peer);
                }
            }
        }
    }

    /// Stops listening, abandons connects, disconnects every peer gracefully, and emits
    /// [`Event::ShutdownComplete`] when the last peer has closed. Commands that would add work
    /// are refused from now on.
    pub fn shutdown(&mut self, now: Instant) {
        let now = self.clock.observe(now);
        self.shutting_down = true;
        let listeners: Vec<ListenerId> = self.listeners.iter().map(|(_, l)| l.id).collect();
        for listener in listeners {
            let _ = self.close_listener(listener);
        }
        let mut ids = std::mem::take(&mut self.scratch);
        ids.clear();
        ids.extend(self.peers.iter().map(|(_, p)| p.id));
        for &peer in &ids {
            match self.peer_ref(peer).map(|p| p.phase) {
                Some(Phase::Connecting | Phase::Handshaking) => {
                    self.close(peer, DisconnectReason::Shutdown, now)
                }
                Some(Phase::Draining(_) | Phase::HalfClosed(_)) | None => {}
                Some(Phase::Connected) => self.begin_drain(peer, DisconnectReason::Shutdown, now),
            }
        }
        ids.clear();
        self.scratch = ids;
        self.check_shutdown_complete();
    }

    // ----- internal helpers --------------------------------------------------------------------

    /// 32 fresh bytes for one handshake's ephemeral key.
    pub(crate) fn handshake_seed(&mut self) -> [u8; 32] {
        let mut seed = [0u8; 32];
        if let Some(rng) = &mut self.entropy {
            rng.fill_bytes(&mut seed);
        }
        seed
    }

    fn serial(&mut self) -> u64 {
        let s = self.next_serial;
        self.next_serial += 1;
        s
    }

    pub(crate) fn insert_peer(
        &mut self,
        addr: SocketAddr,
        direction: Direction,
        framing: Framing,
        now: Nanos,
    ) -> PeerId {
        let serial = self.serial();
        let entry = self.peers.vacant_entry();
        let id = PeerId {
            index: slot_index(entry.key()),
            serial,
        };
        let peer = Peer::new(
            id,
            addr,
            direction,
            framing,
            self.config.peer_limits,
            self.config.max_frame_size,
            now,
        );
        entry.insert(peer);
        if self.config.secure.is_some() {
            if let Some(p) = self.peer_mut(id) {
                p.secure = Some(Box::new(Channel::new(None)));
            }
        }
        id
    }

    pub(crate) fn peer_ref(&self, id: PeerId) -> Option<&Peer> {
        self.peers.get(id.slot()).filter(|p| p.id == id)
    }

    pub(crate) fn peer_mut(&mut self, id: PeerId) -> Option<&mut Peer> {
        lookup(&mut self.peers, id)
    }

    pub(crate) fn listener(&self, id: ListenerId) -> Option<&Listener> {
        self.listeners.get(id.slot()).filter(|l| l.id == id)
    }

    /// Arms a peer deadline (replacing any earlier one of the same kind).
    pub(crate) fn arm(&mut self, peer: PeerId, kind: TimerKind, at: Nanos) {
        if let Some(p) = self.peer_mut(peer) {
            if p.deadlines.get(kind) == Some(at) {
                return;
            }
            p.deadlines.set(kind, Some(at));
            self.timers.push(at, peer, kind);
            if self.timers.len() > self.timers_bound() {
                // Entries of closed peers and superseded deadlines wait in the heap until they come
                // due; under connection churn drop them now (amortised O(1) per arm).
                let peers = &self.peers;
                self.timers.retain(|id, kind, at| {
                    peers
                        .get(id.slot())
                        .is_some_and(|p| p.id == id && p.deadlines.get(kind) == Some(at))
                });
            }
        }
    }

    /// Most timer entries kept before stale ones are purged: twice one live entry per kind per
    /// peer.
    pub(crate) fn timers_bound(&self) -> usize {
        2 * (self.peers.len() + 8) * crate::timer::TimerKind::COUNT
    }

    /// Closes a peer whose handshake failed, reporting `failure`.
    pub(crate) fn fail_handshake(&mut self, peer: PeerId, failure: HandshakeFailure, now: Nanos) {
        if let Some(channel) = self.peer_mut(peer).and_then(|p| p.secure.as_mut()) {
            channel.failure = Some(failure);
        }
        self.close(peer, DisconnectReason::Handshake, now);
    }

    /// Arms the quiet check of a secure peer whose transport keys are expanded and unwatched.
    pub(crate) fn watch_keys(&mut self, peer: PeerId, now: Nanos) {
        let Some(p) = self.peer_ref(peer) else { return };
        if p.deadlines.get(TimerKind::Cold).is_none()
            && p.secure.as_ref().is_some_and(|c| c.is_hot())
        {
            self.arm(
                peer,
                TimerKind::Cold,
                now.saturating_add(crate::secure::COLD_AFTER),
            );
        }
    }

    /// Emits `Io::Interest` if what the peer wants changed.
    pub(crate) fn update_interest(&mut self, peer: PeerId) {
        let Some(p) = self.peer_mut(peer) else { return };
        let want = p.desired_interest();
        if want != p.interest && p.phase != Phase::Connecting {
            p.interest = want;
            self.io.push_back(Io::Interest {
                peer,
                interest: want,
            });
        }
    }

    /// Starts a graceful close: flush, then shut down (Local) or close (Remote).
    pub(crate) fn begin_drain(&mut self, peer: PeerId, reason: DisconnectReason, now: Nanos) {
        let linger = crate::clock::nanos(self.config.linger_timeout);
        let Some(p) = self.peer_mut(peer) else { return };
        p.phase = Phase::Draining(reason);
        self.arm(peer, TimerKind::Linger, now.saturating_add(linger));
        self.after_drain_progress(peer, now);
    }

    /// If a draining peer's queue is empty, move it on.
    pub(crate) fn after_drain_progress(&mut self, peer: PeerId, now: Nanos) {
        let Some(p) = self.peer_mut(peer) else { return };
        let Phase::Draining(reason) = p.phase else {
            return;
        };
        if p.has_output() {
            self.update_interest(peer);
            return;
        }
        match reason {
            // Our side ends: send FIN and wait for the remote's, so the remote reads every byte
            // (closing with unread input would reset the connection and could lose our tail).
            DisconnectReason::Local | DisconnectReason::Shutdown if !p.eof => {
                p.phase = Phase::HalfClosed(reason);
                self.io.push_back(Io::ShutdownWrite { peer });
                self.update_interest(peer);
            }
            reason => self.close(peer, reason, now),
        }
    }

    /// Removes a peer and reports it: `ConnectFailed` if it never connected, else `Disconnected`
    /// with the unsent byte count. Always emits `Io::Close`.
    pub(crate) fn close(&mut self, peer: PeerId, reason: DisconnectReason, _now: Nanos) {
        let Some(p) = self.peer_ref(peer) else { return };
        let slot = p.id.slot();
        let mut p = self.peers.remove(slot);
        let mut unsent = p.queue.clear();
        if let Some(channel) = &mut p.secure {
            unsent += channel.unsent();
            channel.discard(&mut self.outboxes);
        }
        self.totals.unsent += unsent;
        if let Some(segment) = p.segment.take() {
            self.return_segment(segment);
        }
        for dir in [UP, DOWN] {
            if p.shares[dir].parked {
                let peers = &self.peers;
                self.global[dir].forget(|id| peers.get(id.slot()).is_some_and(|p| p.id == *id));
            }
        }
        if p.direction == Direction::Inbound {
            self.release_ip(host_key(p.addr.ip()));
        }
        if p.before_connected() && p.direction == Direction::Inbound {
            // An accepted connection that never finished its handshake: not a peer the
            // application knows; one event to log, unless we ended it ourselves.
            let failure = match reason {
                DisconnectReason::Handshake => Some(handshake_failure(&p)),
                DisconnectReason::Io(_) | DisconnectReason::Remote => {
                    Some(HandshakeFailure::Closed)
                }
                _ => None,
            };
            if let Some(reason) = failure {
                self.totals.handshake_failures += 1;
                self.events.push_back(Event::HandshakeFailed {
                    addr: p.addr,
                    reason,
                });
            }
        } else if p.before_connected() {
            self.pending_connects = self.pending_connects.saturating_sub(1);
            self.totals.failed_connects += 1;
            let reason = match reason {
                DisconnectReason::Handshake => ConnectFailure::Handshake(handshake_failure(&p)),
                DisconnectReason::Io(kind) => ConnectFailure::from(kind),
                DisconnectReason::Shutdown => ConnectFailure::Shutdown,
                DisconnectReason::IdleTimeout | DisconnectReason::LingerTimeout => {
                    ConnectFailure::TimedOut
                }
                _ => ConnectFailure::Aborted,
            };
            self.events.push_back(Event::ConnectFailed {
                peer,
                addr: p.addr,
                reason,
                unsent,
            });
        } else {
            self.events.push_back(Event::Disconnected {
                peer,
                reason,
                unsent,
            });
        }
        let announced = !(p.before_connected() && p.direction == Direction::Inbound);
        self.io.push_back(Io::Close { peer, announced });
        self.check_shutdown_complete();
    }

    fn release_ip(&mut self, ip: IpAddr) {
        if let Some(n) = self.per_ip.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                self.per_ip.remove(&ip);
            }
        }
    }

    fn check_shutdown_complete(&mut self) {
        if self.shutting_down && !self.shutdown_reported && self.peers.is_empty() {
            self.shutdown_reported = true;
            self.events.push_back(Event::ShutdownComplete);
        }
    }
}

/// Why a peer closed with `DisconnectReason::Handshake` failed.
fn handshake_failure(p: &Peer) -> HandshakeFailure {
    p.secure
        .as_ref()
        .and_then(|c| c.failure)
        .unwrap_or(HandshakeFailure::Malformed)
}

/// The key `max_peers_per_ip` counts under: an IPv4 address (also when it arrives IPv4-mapped on
/// an IPv6 socket), or an IPv6 /64 network (one host usually owns a whole /64).
pub(crate) fn host_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let mut octets = v6.octets();
            octets[8..].fill(0);
            IpAddr::V6(octets.into())
        }
        v4 => v4,
    }
}

/// Looks a peer up by id in the slab alone, so other engine fields stay borrowable.
pub(crate) fn lookup(peers: &mut Slab<Peer>, id: PeerId) -> Option<&mut Peer> {
    peers.get_mut(id.slot()).filter(|p| p.id == id)
}

pub(crate) fn slot_index(key: usize) -> u32 {
    // Peers are bounded by `max_peers` (a usize); slots past u32::MAX would need 4 billion
    // connections at once, which no socket table allows.
    u32::try_from(key).unwrap_or(u32::MAX)
}
