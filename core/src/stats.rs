//! Counters and speed meters, per peer and global.

use crate::clock::Nanos;
use std::time::Instant;

/// Length of one slot of the short-window speed meter.
const SLOT: Nanos = 250_000_000;
/// Slots in the short window (so the window is one second).
const SLOTS: usize = 4;

/// Bytes per second over the last second, from a ring of four 250 ms slots (fixed size, no
/// allocation).
#[derive(Debug, Clone, Default)]
pub(crate) struct SpeedMeter {
    bytes: [u64; SLOTS],
    slot_of: [u64; SLOTS],
}

impl SpeedMeter {
    pub(crate) fn record(&mut self, now: Nanos, n: u64) {
        let slot = now / SLOT;
        let i = (slot % SLOTS as u64) as usize;
        if self.slot_of[i] != slot {
            self.slot_of[i] = slot;
            self.bytes[i] = 0;
        }
        self.bytes[i] += n;
    }

    /// Bytes per second over the window ending at `now`.
    pub(crate) fn speed(&self, now: Nanos, since: Nanos) -> u64 {
        let current = now / SLOT;
        let oldest = current.saturating_sub(SLOTS as u64 - 1);
        let total: u64 = (0..SLOTS)
            .filter(|&i| self.slot_of[i] >= oldest && self.slot_of[i] <= current)
            .map(|i| self.bytes[i])
            .sum();
        let window_start = (oldest * SLOT).max(since);
        let span = now.saturating_sub(window_start).max(SLOT / 4);
        (u128::from(total) * 1_000_000_000 / u128::from(span)) as u64
    }
}

/// One direction's counters. The speed meter is allocated with the first bytes (once per peer,
/// never per message), so an idle peer costs 8 bytes for it instead of 64.
#[derive(Debug, Clone, Default)]
pub(crate) struct Flow {
    pub(crate) bytes: u64,
    pub(crate) payload: u64,
    pub(crate) messages: u64,
    pub(crate) last: Option<Nanos>,
    pub(crate) meter: Option<Box<SpeedMeter>>,
}

impl Flow {
    /// `bytes` crossed the socket, carrying `payload` application bytes (the same for a
    /// plaintext peer; less for a secure one, whose handshake and tags count as wire bytes).
    pub(crate) fn record(&mut self, now: Nanos, bytes: u64, payload: u64, messages: u64) {
        self.bytes += bytes;
        self.payload += payload;
        self.messages += messages;
        self.last = Some(now);
        self.meter
            .get_or_insert_with(Box::default)
            .record(now, bytes);
    }
}

/// A snapshot of one direction of traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FlowStats {
    /// Bytes that crossed the socket (framing included; for a secure peer also the handshake,
    /// the Noise length prefixes and tags). Rate limits count these.
    pub bytes: u64,
    /// Application bytes (framing included) those carried: equal to `bytes` for a plaintext
    /// peer.
    pub payload_bytes: u64,
    /// Whole messages moved (in `Raw` mode: chunks received, sends written).
    pub messages: u64,
    /// Bytes per second over the last second.
    pub current_speed: u64,
    /// Bytes per second since the start (connection time for a peer, first activity globally).
    pub average_speed: u64,
    /// When the last byte moved.
    pub last: Option<Instant>,
}

/// A snapshot of one peer's statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerStats {
    /// Received from the peer.
    pub received: FlowStats,
    /// Sent to the peer.
    pub sent: FlowStats,
    /// When the connection was established (`None` while connecting).
    pub connected_since: Option<Instant>,
    /// Bytes accepted by `send` and not yet written.
    pub queued: u64,
    /// The remote's proven static key (secure peers, once the handshake has shown it).
    pub key: Option<crate::PeerKey>,
}

/// A snapshot of the whole engine's statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GlobalStats {
    /// Everything received.
    pub received: FlowStats,
    /// Everything sent.
    pub sent: FlowStats,
    /// Peers connected or connecting now.
    pub peers: usize,
    /// Inbound connections accepted since the start.
    pub inbound_connections: u64,
    /// Outbound connections established since the start.
    pub outbound_connections: u64,
    /// Inbound connections refused by a limit.
    pub refused_connections: u64,
    /// Accepts that failed with a socket error (e.g. too many open files).
    pub accept_errors: u64,
    /// Outbound connects that failed (handshake failures of dials included).
    pub failed_connects: u64,
    /// Accepted connections whose secure handshake failed (each also reported as
    /// `Event::HandshakeFailed`).
    pub handshake_failures: u64,
    /// Bytes accepted by `send` since the start (framing included).
    pub accepted_bytes: u64,
    /// Bytes accepted but reported unsent when their peer went away.
    pub unsent_bytes: u64,
    /// Bytes queued in send queues now.
    pub queued_bytes: u64,
    /// Receive-pool bytes in use (lent to peers or still referenced by received data).
    pub pool_bytes_in_use: usize,
    /// Bytes held outside the pool for messages larger than a segment.
    pub spilled_bytes: usize,
    /// Bytes of sealed-output buffers (secure peers), lent or kept for reuse.
    pub seal_buffer_bytes: usize,
}

pub(crate) fn snapshot(
    flow: &Flow,
    now: Nanos,
    since: Nanos,
    to_instant: impl Fn(Nanos) -> Option<Instant>,
) -> FlowStats {
    let elapsed = now.saturating_sub(since);
    let average_speed = if elapsed == 0 {
        0
    } else {
        (u128::from(flow.bytes) * 1_000_000_000 / u128::from(elapsed)) as u64
    };
    FlowStats {
        bytes: flow.bytes,
        payload_bytes: flow.payload,
        messages: flow.messages,
        current_speed: flow.meter.as_ref().map_or(0, |m| m.speed(now, since)),
        average_speed,
        last: flow.last.and_then(to_instant),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Nanos = 1_000_000;

    #[test]
    fn a_steady_flow_reads_its_rate_from_the_short_window() {
        let mut m = SpeedMeter::default();
        let mut t = 0;
        while t < 5_000 * MS {
            m.record(t, 1_000);
            t += 10 * MS;
        }
        let speed = m.speed(t, 0);
        assert!((95_000..=105_000).contains(&speed), "{speed}");
    }

    #[test]
    fn a_stopped_flow_reads_zero_once_the_window_has_passed() {
        let mut m = SpeedMeter::default();
        m.record(0, 1_000_000);
        assert!(m.speed(100 * MS, 0) > 0);
        assert_eq!(m.speed(2_000 * MS, 0), 0);
    }
}
