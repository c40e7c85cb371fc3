//! One connection's state inside the engine.

use crate::bucket::Bucket;
use crate::clock::Nanos;
use crate::fair::Share;
use crate::frame::Decoder;
use crate::pool::Segment;
use crate::queue::SendQueue;
use crate::stats::Flow;
use crate::timer::PeerDeadlines;
use crate::{Direction, DisconnectReason, Framing, Interest, Limits, PeerId, Rate};
use core::net::SocketAddr;

/// Where a peer is in its life, as the application sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PeerState {
    /// `connect` was called; waiting for the driver's report.
    Connecting,
    /// Established: sends are accepted.
    Connected,
    /// Going away gracefully: flushing what was accepted, no new sends.
    Closing,
}

/// What the application can ask about a live peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerInfo {
    /// The remote address.
    pub addr: SocketAddr,
    /// Who opened the connection.
    pub direction: Direction,
    /// Its state.
    pub state: PeerState,
    /// Its framing.
    pub framing: Framing,
    /// Its current limits.
    pub limits: Limits,
    /// The remote's proven static key: secure peers once the handshake has shown it.
    pub key: Option<crate::PeerKey>,
}

/// The engine's internal life cycle (finer than [`PeerState`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Connecting,
    /// TCP is up; the secure handshake runs (counts as connecting for the application).
    Handshaking,
    Connected,
    /// Flushing the queue before closing; the reason is `Local` (after `disconnect`) or `Remote`
    /// (after the remote's EOF).
    Draining(DisconnectReason),
    /// Our FIN is sent after a local disconnect; reading until the remote's EOF.
    HalfClosed(DisconnectReason),
}

/// Why a direction is paused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Block {
    None,
    /// The peer's own bucket is empty; a timer wakes it.
    Budget,
    /// The global budget is contended; the next round wakes it.
    Global,
    /// The receive pool is exhausted; a free segment wakes it.
    Pool,
}

/// Index of a direction in per-direction arrays.
pub(crate) const UP: usize = 0;
/// Index of a direction in per-direction arrays.
pub(crate) const DOWN: usize = 1;

#[derive(Debug)]
pub(crate) struct Peer {
    pub(crate) id: PeerId,
    pub(crate) addr: SocketAddr,
    pub(crate) direction: Direction,
    pub(crate) phase: Phase,
    pub(crate) framing: Framing,
    /// Upload and download buckets (`None`: unlimited), indexed by `UP` / `DOWN`; boxed, so a
    /// peer without its own limits (most of a big swarm) does not carry them inline. They also
    /// hold the peer's `Limits` (see [`Peer::limits`]).
    pub(crate) buckets: [Option<Box<Bucket>>; 2],
    pub(crate) shares: [Share; 2],
    pub(crate) blocks: [Block; 2],
    pub(crate) segment: Option<Segment>,
    /// Unparsed bytes at the front of `segment`.
    pub(crate) filled: usize,
    pub(crate) decoder: Decoder,
    pub(crate) queue: SendQueue,
    /// A `QueueFull` was returned; emit `Writable` at the low-water mark.
    pub(crate) notify_writable: bool,
    /// The remote's EOF was seen.
    pub(crate) eof: bool,
    /// The driver asked to stop reading (`pause_reading`).
    pub(crate) read_paused: bool,
    /// Its socket had nothing more to read at the last read (and no read since).
    pub(crate) idle: bool,
    /// Listed in `Engine::idle_holders` (at most once): it held a partial message when it went
    /// idle, so its segment may be evicted under pool pressure while it stays idle.
    pub(crate) listed_idle: bool,
    /// `disconnect` was called while connecting: drain as soon as connected.
    pub(crate) close_when_connected: bool,
    pub(crate) interest: Interest,
    pub(crate) deadlines: PeerDeadlines,
    pub(crate) received: Flow,
    pub(crate) sent: Flow,
    pub(crate) connected_at: Option<Nanos>,
    pub(crate) last_activity: Nanos,
    /// Bytes accepted by `send` and bytes the socket took, framing included.
    pub(crate) accepted: u64,
    pub(crate) written: u64,
    /// The secure channel (`None` for a plaintext peer); boxed, so plaintext peers pay a pointer.
    pub(crate) secure: Option<Box<crate::secure::Channel>>,
}

impl Peer {
    pub(crate) fn new(
        id: PeerId,
        addr: SocketAddr,
        direction: Direction,
        framing: Framing,
        limits: Limits,
        max_frame: usize,
        now: Nanos,
    ) -> Self {
        let bucket = |rate: Option<Rate>| rate.map(|r| Box::new(Bucket::new(r, now)));
        Peer {
            id,
            addr,
            direction,
            phase: if direction == Direction::Outbound {
                Phase::Connecting
            } else {
                Phase::Connected
            },
            framing,
            buckets: [bucket(limits.upload), bucket(limits.download)],
            shares: [Share::default(); 2],
            blocks: [Block::None; 2],
            segment: None,
            filled: 0,
            decoder: Decoder::new(framing, max_frame),
            queue: SendQueue::default(),
            notify_writable: false,
            eof: false,
            read_paused: false,
            idle: false,
            listed_idle: false,
            close_when_connected: false,
            interest: Interest::default(),
            deadlines: PeerDeadlines::default(),
            received: Flow::default(),
            sent: Flow::default(),
            connected_at: None,
            last_activity: now,
            accepted: 0,
            written: 0,
            secure: None,
        }
    }

    pub(crate) fn state(&self) -> PeerState {
        match self.phase {
            Phase::Connecting | Phase::Handshaking => PeerState::Connecting,
            Phase::Connected => PeerState::Connected,
            Phase::Draining(_) | Phase::HalfClosed(_) => PeerState::Closing,
        }
    }

    /// Whether the application may still queue data.
    pub(crate) fn accepts_sends(&self) -> bool {
        matches!(
            self.phase,
            Phase::Connecting | Phase::Handshaking | Phase::Connected
        ) && !self.close_when_connected
    }

    pub(crate) fn may_read(&self) -> bool {
        !self.eof && !matches!(self.phase, Phase::Connecting)
    }

    pub(crate) fn may_write(&self) -> bool {
        matches!(
            self.phase,
            Phase::Connected | Phase::Draining(_) | Phase::Handshaking
        )
    }

    /// Whether the peer never reached `Connected` (its end is a connect or handshake failure).
    pub(crate) fn before_connected(&self) -> bool {
        matches!(self.phase, Phase::Connecting | Phase::Handshaking)
    }

    /// Bytes the peer has to write: sealed bytes, or queued plaintext it may seal (a secure
    /// peer only after its handshake).
    pub(crate) fn has_output(&self) -> bool {
        match &self.secure {
            None => !self.queue.is_empty(),
            Some(channel) => {
                channel.has_output() || (channel.is_established() && !self.queue.is_empty())
            }
        }
    }

    /// Application bytes accepted and not yet written: the send queue, plus (secure peers)
    /// what is sealed but not wholly written. Admission and `Writable` count these.
    pub(crate) fn queued(&self) -> u64 {
        self.queue.queued() + self.secure.as_ref().map_or(0, |c| c.unsent())
    }

    /// Bytes ready for the socket now: sealed bytes for a secure peer, the queue otherwise.
    pub(crate) fn unwritten(&self) -> u64 {
        match &self.secure {
            None => self.queue.queued(),
            Some(channel) => channel
                .outbox
                .as_ref()
                .map_or(0, |o| o.unwritten().len() as u64),
        }
    }

    /// Bytes this peer's segment holds: plaintext not yet framed, then secure-layer bytes not yet
    /// a whole Noise message.
    pub(crate) fn held(&self) -> usize {
        self.filled + self.secure.as_ref().map_or(0, |c| c.pending)
    }

    /// The remote's proven key (secure peers).
    pub(crate) fn key(&self) -> Option<crate::PeerKey> {
        self.secure.as_ref().and_then(|c| c.remote)
    }

    /// Capacity of the sealed-output buffer this peer holds.
    pub(crate) fn outbox_bytes(&self) -> usize {
        self.secure
            .as_ref()
            .and_then(|c| c.outbox.as_ref())
            .map_or(0, |o| o.buf.capacity())
    }

    /// What the driver should poll for now.
    pub(crate) fn desired_interest(&self) -> Interest {
        Interest {
            read: self.may_read() && !self.read_paused && self.blocks[DOWN] == Block::None,
            write: self.may_write() && self.has_output() && self.blocks[UP] == Block::None,
        }
    }

    /// The peer's current limits, as its buckets hold them.
    pub(crate) fn limits(&self) -> Limits {
        let rate = |dir: usize| self.buckets[dir].as_ref().map(|b| b.limit());
        Limits {
            upload: rate(UP),
            download: rate(DOWN),
        }
    }

    pub(crate) fn set_limits(&mut self, limits: Limits, now: Nanos) {
        for (dir, rate) in [(UP, limits.upload), (DOWN, limits.download)] {
            match (rate, &mut self.buckets[dir]) {
                (Some(rate), Some(bucket)) => bucket.set_rate(rate, now),
                (Some(rate), slot @ None) => *slot = Some(Box::new(Bucket::new(rate, now))),
                (None, slot) => *slot = None,
            }
        }
    }

    /// Memory this peer holds beyond its own struct (queue ring, spill buffer; pool segments are
    /// counted by the pool).
    pub(crate) fn heap_bytes(&self) -> usize {
        self.queue.ring_bytes() + self.decoder.spilled_bytes()
    }
}
#[cfg(test)]
mod tests {
    /// Every connected peer carries one `Peer` in the engine's slab, idle or not: 10,000 idle
    /// peers cost 10,000 of these (rate-limit buckets, speed meters and spill buffers are boxed
    /// and allocated only for the peers that use them).
    #[test]
    fn an_idle_peer_stays_under_half_a_kilobyte() {
        let size = core::mem::size_of::<super::Peer>();
        assert!(size <= 512, "Peer is {size} bytes");
    }
}
