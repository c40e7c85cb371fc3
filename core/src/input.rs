//! Driver inputs: reports about listeners, connections and time.

use crate::clock::{nanos, Nanos};
use crate::engine::{host_key, lookup, Engine};
use crate::peer::{Block, Phase, DOWN, UP};
use crate::timer::TimerKind;
use crate::{Direction, DisconnectReason, Event, ListenerId, PeerId, Refusal};
use core::net::SocketAddr;
use std::io;
use std::time::Instant;

impl Engine {
    /// The driver bound a listener; `addr` is the real bound address.
    pub fn handle_listening(&mut self, listener: ListenerId, addr: SocketAddr, now: Instant) {
        self.clock.observe(now);
        if let Some(l) = self
            .listeners
            .get_mut(listener.slot())
            .filter(|l| l.id == listener)
        {
            if !l.bound {
                l.bound = true;
                l.addr = addr;
                self.events.push_back(Event::Listening { listener, addr });
            }
        }
    }

    /// The driver could not bind (or lost) a listener; the listener is removed.
    pub fn handle_listen_failed(
        &mut self,
        listener: ListenerId,
        error: io::ErrorKind,
        now: Instant,
    ) {
        self.clock.observe(now);
        if let Some(l) = self.listener(listener) {
            let addr = l.addr;
            self.listeners.remove(listener.slot());
            self.events.push_back(Event::ListenFailed {
                listener,
                addr,
                error,
            });
        }
    }

    /// A listener's accept failed (e.g. `EMFILE`, too many open files). The listener stays open;
    /// the driver backs off before accepting again. Reported as [`Event::AcceptFailed`].
    pub fn handle_accept_error(
        &mut self,
        listener: ListenerId,
        error: io::ErrorKind,
        now: Instant,
    ) {
        self.clock.observe(now);
        if self.listener(listener).is_some() {
            self.totals.accept_errors += 1;
            self.events
                .push_back(Event::AcceptFailed { listener, error });
        }
    }

    /// A listener accepted a connection from `remote`. On `Ok` the peer is connected (an
    /// [`Event::Connected`] is queued) and the driver registers the socket under the id; on `Err`
    /// the driver drops the socket.
    pub fn handle_accepted(
        &mut self,
        listener: ListenerId,
        remote: SocketAddr,
        now: Instant,
    ) -> Result<PeerId, Refusal> {
        let now = self.clock.observe(now);
        let refusal = if self.shutting_down {
            Some(Refusal::ShuttingDown)
        } else if self.listener(listener).is_none() {
            Some(Refusal::UnknownListener)
        } else if self.peers.len() >= self.config.max_peers {
            Some(Refusal::MaxPeers)
        } else if self
            .per_ip
            .get(&host_key(remote.ip()))
            .copied()
            .unwrap_or(0)
            >= self.config.max_peers_per_ip
        {
            Some(Refusal::MaxPeersPerIp)
        } else {
            None
        };
        if let Some(reason) = refusal {
            self.totals.refused += 1;
            if reason != Refusal::UnknownListener {
                self.events.push_back(Event::Refused {
                    listener,
                    addr: remote,
                    reason,
                });
            }
            return Err(reason);
        }
        let framing = self
            .listener(listener)
            .map_or(self.config.framing, |l| l.framing);
        let peer = self.insert_peer(remote, Direction::Inbound, framing, now);
        *self.per_ip.entry(host_key(remote.ip())).or_insert(0) += 1;
        if self.config.secure.is_some() {
            self.begin_handshake(peer, now);
        } else {
            self.totals.inbound += 1;
            self.on_established(peer, Direction::Inbound, now);
        }
        Ok(peer)
    }

    /// An outbound connect completed.
    pub fn handle_connected(&mut self, peer: PeerId, now: Instant) {
        let now = self.clock.observe(now);
        let Some(p) = self.peer_mut(peer) else { return };
        if p.phase != Phase::Connecting {
            return;
        }
        p.deadlines.set(TimerKind::Connect, None);
        if p.secure.is_some() {
            self.begin_handshake(peer, now);
            return;
        }
        p.phase = Phase::Connected;
        let drain = p.close_when_connected;
        self.pending_connects = self.pending_connects.saturating_sub(1);
        self.totals.outbound += 1;
        self.on_established(peer, Direction::Outbound, now);
        if drain {
            self.begin_drain(peer, DisconnectReason::Local, now);
        }
    }

    /// TCP is up on a secure engine: the handshake starts, under its deadline.
    fn begin_handshake(&mut self, peer: PeerId, now: Nanos) {
        let seed = self.handshake_seed();
        let Some(config) = self.config.secure.as_ref() else {
            return;
        };
        let timeout = nanos(config.handshake_timeout);
        let Some(p) = lookup(&mut self.peers, peer) else {
            return;
        };
        p.phase = Phase::Handshaking;
        let initiator = p.direction == Direction::Outbound;
        let started = match &mut p.secure {
            Some(channel) => channel.begin(initiator, config, seed, &mut self.outboxes),
            None => Ok(()),
        };
        if let Err(failure) = started {
            self.fail_handshake(peer, failure, now);
            return;
        }
        self.arm(peer, TimerKind::Handshake, now.saturating_add(timeout));
        self.update_interest(peer);
    }

    /// The secure handshake finished and the remote's key passed the gate: the peer is
    /// connected.
    pub(crate) fn finish_handshake(&mut self, peer: PeerId, now: Nanos) {
        let Some(p) = self.peer_mut(peer) else { return };
        if p.phase != Phase::Handshaking {
            return;
        }
        p.phase = Phase::Connected;
        p.deadlines.set(TimerKind::Handshake, None);
        let direction = p.direction;
        let drain = p.close_when_connected;
        if direction == Direction::Outbound {
            self.pending_connects = self.pending_connects.saturating_sub(1);
            self.totals.outbound += 1;
        } else {
            self.totals.inbound += 1;
        }
        self.on_established(peer, direction, now);
        if drain {
            self.begin_drain(peer, DisconnectReason::Local, now);
        }
    }

    fn on_established(&mut self, peer: PeerId, direction: Direction, now: Nanos) {
        let idle = self.config.idle_timeout.map(nanos);
        let Some(p) = self.peer_mut(peer) else { return };
        p.connected_at = Some(now);
        p.last_activity = now;
        let addr = p.addr;
        let key = p.key();
        self.events.push_back(Event::Connected {
            peer,
            addr,
            direction,
            key,
        });
        if let Some(idle) = idle {
            self.arm(peer, TimerKind::Idle, now.saturating_add(idle));
        }
        self.update_interest(peer);
    }

    /// An outbound connect failed. Ignored unless the peer is still connecting.
    pub fn handle_connect_failed(&mut self, peer: PeerId, error: io::ErrorKind, now: Instant) {
        let now = self.clock.observe(now);
        if self
            .peer_ref(peer)
            .is_some_and(|p| p.phase == Phase::Connecting)
        {
            self.close(peer, DisconnectReason::Io(error), now);
        }
    }

    /// The socket failed outside `read_from` / `write_to` (an error or hang-up event). The peer
    /// is closed; queued bytes are reported unsent.
    pub fn handle_error(&mut self, peer: PeerId, error: io::ErrorKind, now: Instant) {
        let now = self.clock.observe(now);
        self.close(peer, DisconnectReason::Io(error), now);
    }

    /// Time has passed: fire every deadline due at `now`. Calling it early, late or repeatedly is
    /// harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        let now = self.clock.observe(now);
        while let Some((peer, kind, at)) = self.timers.pop_due(now) {
            let Some(p) = self.peer_mut(peer) else {
                continue;
            };
            if p.deadlines.get(kind) != Some(at) {
                continue;
            }
            p.deadlines.set(kind, None);
            self.fire(peer, kind, now);
        }
        self.start_global_rounds(now);
        self.retry_pool_waiters(now);
    }

    fn fire(&mut self, peer: PeerId, kind: TimerKind, now: Nanos) {
        let idle = self.config.idle_timeout.map(nanos);
        let Some(p) = self.peer_mut(peer) else { return };
        match kind {
            TimerKind::Connect => {
                if p.phase == Phase::Connecting {
                    self.close(peer, DisconnectReason::Io(io::ErrorKind::TimedOut), now);
                }
            }
            TimerKind::Idle => {
                let Some(idle) = idle else { return };
                // A peer we stopped reading (throttled, pool, paused) is not idle: the remote
                // may well be sending.
                if p.blocks[DOWN] != Block::None || p.read_paused {
                    p.last_activity = now;
                }
                let due = p.last_activity.saturating_add(idle);
                if due <= now {
                    self.close(peer, DisconnectReason::IdleTimeout, now);
                } else {
                    self.arm(peer, TimerKind::Idle, due);
                }
            }
            TimerKind::Cold => {
                let quiet_since = p.last_activity;
                let busy = p.held() > 0 || p.secure.as_ref().is_some_and(|c| c.has_output());
                let due = quiet_since.saturating_add(crate::secure::COLD_AFTER);
                if busy || due > now {
                    let at = due.max(now.saturating_add(1));
                    self.arm(peer, TimerKind::Cold, at);
                } else if let Some(channel) = &mut p.secure {
                    channel.compact();
                }
            }
            TimerKind::Handshake => {
                if p.phase == Phase::Handshaking {
                    self.fail_handshake(peer, crate::HandshakeFailure::TimedOut, now);
                }
            }
            TimerKind::Linger => {
                if matches!(p.phase, Phase::Draining(_) | Phase::HalfClosed(_)) {
                    self.close(peer, DisconnectReason::LingerTimeout, now);
                }
            }
            TimerKind::ReadBudget | TimerKind::WriteBudget => {
                let dir = if kind == TimerKind::ReadBudget {
                    DOWN
                } else {
                    UP
                };
                if p.blocks[dir] == Block::Budget {
                    p.blocks[dir] = Block::None;
                    self.update_interest(peer);
                }
            }
        }
    }

    fn start_global_rounds(&mut self, now: Nanos) {
        for dir in [UP, DOWN] {
            let Some(mut round) = self.global[dir].start_round(now) else {
                continue;
            };
            while round.quota > 0 {
                let Some(peer) = self.global[dir].next_candidate() else {
                    break;
                };
                let Some(p) = lookup(&mut self.peers, peer) else {
                    self.global[dir].skipped_stale();
                    continue;
                };
                if round.admit(&mut p.shares[dir]) {
                    self.global[dir].requeue(peer);
                    if p.blocks[dir] == Block::Global {
                        p.blocks[dir] = Block::None;
                        self.update_interest(peer);
                    }
                }
            }
            self.global[dir].finish_round(now);
        }
    }

    /// Wakes peers waiting for a receive segment, as many as there are segments to be had. The
    /// engine cannot see the application drop received data, so while nothing comes back it
    /// probes the pool on a timer that backs off (2 ms doubling to 128 ms), waking nobody.
    pub(crate) fn retry_pool_waiters(&mut self, now: Nanos) {
        if self.pool_waiters.is_empty() {
            self.pool_retry_at = None;
            return;
        }
        let due = self.pool_retry_at.is_none_or(|at| at <= now);
        if !due && !self.pool.has_free() {
            return;
        }
        if !self.pool.has_free() {
            // Reclaim one segment if the application has released one.
            if let Some(segment) = self.pool.take(1) {
                self.pool.give_back(segment);
            }
        }
        let mut available = self.pool.usage().free;
        let woke_any = available > 0;
        while available > 0 {
            let Some(peer) = self.pool_waiters.pop_front() else {
                break;
            };
            if let Some(p) = self.peer_mut(peer) {
                if p.blocks[DOWN] == Block::Pool {
                    p.blocks[DOWN] = Block::None;
                    self.update_interest(peer);
                    available -= 1;
                }
            }
        }
        self.pool_backoff = if woke_any {
            crate::transfer::POOL_RETRY
        } else {
            (self.pool_backoff * 2).min(crate::transfer::POOL_RETRY_MAX)
        };
        self.pool_retry_at =
            (!self.pool_waiters.is_empty()).then(|| now.saturating_add(self.pool_backoff));
    }

    /// Drops a segment back into the pool, waking a peer that waits for one.
    pub(crate) fn return_segment(&mut self, segment: crate::pool::Segment) {
        self.pool.give_back(segment);
        if self.pool.has_free() {
            if let Some(peer) = self.pool_waiters.pop_front() {
                if let Some(p) = self.peer_mut(peer) {
                    if p.blocks[DOWN] == Block::Pool {
                        p.blocks[DOWN] = Block::None;
                        self.update_interest(peer);
                    }
                }
            }
        }
    }
}
