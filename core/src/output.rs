//! Outputs for the driver and queries for the application.

use crate::engine::Engine;
use crate::peer::PeerInfo;
use crate::pool::PoolUsage;
use crate::stats::{snapshot, GlobalStats, PeerStats};
use crate::{Event, Interest, Io, Limits, PeerId};
use std::time::Instant;

impl Engine {
    // ----- 3. Outputs ---------------------------------------------------------------------------

    /// The next socket operation for the driver. Drain until `None` after every input.
    pub fn poll_io(&mut self) -> Option<Io> {
        self.io.pop_front()
    }

    /// The next event for the application. Drain until `None` after every input.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The instant at which [`handle_timeout`](Self::handle_timeout) must be called next (connect,
    /// idle and linger timeouts, budget refills of throttled peers, pool retries), or `None` when
    /// nothing is pending. It may name an instant already past: call `handle_timeout` at once.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let candidates = [
            self.timers.next(),
            self.global[0].wake_at(),
            self.global[1].wake_at(),
            self.pool_retry_at.filter(|_| !self.pool_waiters.is_empty()),
        ];
        let earliest = candidates.into_iter().flatten().min()?;
        self.clock.instant(earliest)
    }

    // ----- 4. Queries ---------------------------------------------------------------------------

    /// What is known about a live peer (`None` for a stale id).
    pub fn peer(&self, peer: PeerId) -> Option<PeerInfo> {
        let p = self.peer_ref(peer)?;
        Some(PeerInfo {
            addr: p.addr,
            direction: p.direction,
            state: p.state(),
            framing: p.framing,
            limits: p.limits(),
            key: p.key(),
        })
    }

    /// The socket operations the engine wants for a live peer now.
    pub fn interest(&self, peer: PeerId) -> Option<Interest> {
        self.peer_ref(peer).map(|p| p.interest)
    }

    /// Application bytes accepted for a live peer and not yet written (framing included; for a
    /// secure peer also what is sealed but not wholly written). Cheap: for drivers that mirror
    /// the queue, since a write's [`Transfer::Moved`](crate::Transfer) counts socket (wire)
    /// bytes, which for a secure peer are not the application's.
    pub fn queued(&self, peer: PeerId) -> Option<u64> {
        self.peer_ref(peer).map(|p| p.queued())
    }

    /// A live peer's traffic statistics.
    pub fn stats(&self, peer: PeerId) -> Option<PeerStats> {
        let p = self.peer_ref(peer)?;
        let now = self.clock.latest();
        let since = p.connected_at.unwrap_or(now);
        let to_instant = |t| self.clock.instant(t);
        Some(PeerStats {
            received: snapshot(&p.received, now, since, to_instant),
            sent: snapshot(&p.sent, now, since, to_instant),
            connected_since: p.connected_at.and_then(to_instant),
            queued: p.queued(),
            key: p.key(),
        })
    }

    /// Engine-wide statistics.
    pub fn global_stats(&self) -> GlobalStats {
        let t = &self.totals;
        let now = self.clock.latest();
        let since = t.first_activity.unwrap_or(now);
        let to_instant = |n| self.clock.instant(n);
        GlobalStats {
            received: snapshot(&t.received, now, since, to_instant),
            sent: snapshot(&t.sent, now, since, to_instant),
            peers: self.peers.len(),
            inbound_connections: t.inbound,
            outbound_connections: t.outbound,
            refused_connections: t.refused,
            accept_errors: t.accept_errors,
            failed_connects: t.failed_connects,
            handshake_failures: t.handshake_failures,
            accepted_bytes: t.accepted,
            unsent_bytes: t.unsent,
            queued_bytes: t.accepted - t.written - t.unsent,
            pool_bytes_in_use: self.pool.usage().bytes_in_use(),
            spilled_bytes: self
                .peers
                .iter()
                .map(|(_, p)| p.decoder.spilled_bytes())
                .sum(),
            seal_buffer_bytes: self.outboxes.bytes()
                + self
                    .peers
                    .iter()
                    .map(|(_, p)| p.outbox_bytes())
                    .sum::<usize>(),
        }
    }

    /// The receive pool's state.
    pub fn pool_usage(&self) -> PoolUsage {
        self.pool.usage()
    }

    /// The limits shared by all peers.
    pub fn global_limits(&self) -> Limits {
        self.global_limits
    }

    /// Live peers (connected, connecting or closing).
    pub fn peer_count(&self) -> usize {
        self.peers.len()
    }

    /// Ids of every live peer (allocates; meant for tools and tests, not the hot path).
    pub fn peer_ids(&self) -> Vec<PeerId> {
        self.peers.iter().map(|(_, p)| p.id).collect()
    }

    /// Deadline entries held for timers (connect, idle, linger, budget refills), live or stale;
    /// bounded by a small multiple of the live peers.
    pub fn pending_timers(&self) -> usize {
        self.timers.len()
    }

    /// True once `shutdown` was called and every peer has closed.
    pub fn is_shut_down(&self) -> bool {
        self.shutdown_reported
    }

    /// Heap bytes held per peer beyond the pool (queues, spill buffers), summed; with
    /// `size_of::<Peer>()` this bounds the engine's memory per idle peer.
    pub fn peer_heap_bytes(&self) -> usize {
        self.peers.iter().map(|(_, p)| p.heap_bytes()).sum()
    }

    /// Verifies the engine's bookkeeping, for tests and fuzzing: bytes accepted = written +
    /// queued (+ reported unsent for closed peers), every pool segment accounted for exactly once,
    /// every peer's interest matching its state, and the per-IP and pending-connect counts
    /// matching the peers. Cost is O(peers).
    pub fn check_invariants(&self) -> Result<(), String> {
        let t = &self.totals;
        let mut queued = 0;
        let mut lent = 0;
        let mut connecting = 0;
        let mut inbound_by_ip = std::collections::HashMap::new();
        for (slot, p) in &self.peers {
            if p.id.slot() != slot {
                return Err(format!("{:?} stored in slot {slot}", p.id));
            }
            if p.accepted != p.written + p.queued() {
                return Err(format!(
                    "{:?}: accepted {} != written {} + queued {}",
                    p.id,
                    p.accepted,
                    p.written,
                    p.queued()
                ));
            }
            if p.segment.as_ref().is_some_and(|s| s.len() < p.filled) {
                return Err(format!("{:?}: filled past its segment", p.id));
            }
            if p.interest != p.desired_interest() && p.phase != crate::peer::Phase::Connecting {
                return Err(format!("{:?}: interest {:?} is stale", p.id, p.interest));
            }
            queued += p.queued();
            lent += usize::from(p.segment.is_some());
            // A dial counts as pending until it is `Connected` (its handshake included).
            connecting +=
                usize::from(p.before_connected() && p.direction == crate::Direction::Outbound);
            if p.direction == crate::Direction::Inbound {
                *inbound_by_ip
                    .entry(crate::engine::host_key(p.addr.ip()))
                    .or_insert(0usize) += 1;
            }
        }
        if t.accepted != t.written + queued + t.unsent {
            return Err(format!(
                "accepted {} != written {} + queued {queued} + unsent {}",
                t.accepted, t.written, t.unsent
            ));
        }
        let pool = self.pool.usage();
        if pool.free + pool.lent + pool.reclaiming != pool.total || pool.lent != lent {
            return Err(format!("pool not conserved: {pool:?}, peers hold {lent}"));
        }
        if self.idle_holders.len() > 2 * self.peers.len() + 16 {
            return Err(format!(
                "{} idle holders for {} peers",
                self.idle_holders.len(),
                self.peers.len()
            ));
        }
        if connecting != self.pending_connects {
            return Err(format!(
                "{connecting} connecting, {} counted",
                self.pending_connects
            ));
        }
        if inbound_by_ip != self.per_ip {
            return Err("per-IP counts drifted".into());
        }
        if self.peers.len() > self.config.max_peers {
            return Err(format!("{} peers over the limit", self.peers.len()));
        }
        Ok(())
    }
}
