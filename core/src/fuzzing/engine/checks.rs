//! What the engine harness checks after every step, and how a run ends.

use super::{Harness, Life, FLUSH_ROUNDS, MAX_HELD, RING_ENTRY, START};
use crate::{Direction, DisconnectReason, Event, Io, PeerState, SendError};
use std::io::{self, IoSlice};

/// Virtual milliseconds a driver may loop on past deadlines without progress before the harness
/// calls it a spin.
const BUSY_LIMIT_MS: u32 = 200;

impl Harness {
    /// Drains the engine's outputs into the model and checks every invariant.
    pub(super) fn settle(&mut self) {
        while let Some(io) = self.engine.poll_io() {
            self.on_io(io);
        }
        while let Some(event) = self.early.pop_front().or_else(|| self.engine.poll_event()) {
            self.on_event(event);
        }
        if let Err(e) = self.engine.check_invariants() {
            panic!("engine invariant broken: {e}");
        }
        self.check();
    }

    fn on_io(&mut self, io: Io) {
        match io {
            Io::Connect { peer, .. } => {
                let m = self.model(peer);
                assert!(
                    m.outbound && !m.connect_io,
                    "unexpected Io::Connect for {peer:?}"
                );
                m.connect_io = true;
            }
            Io::Interest { peer, interest } => {
                let m = self.model(peer);
                assert!(!m.close_io, "Io::Interest for closed {peer:?}");
                m.read_armed |= interest.read && !m.interest.read;
                m.interest = interest;
            }
            Io::ShutdownWrite { peer } => {
                let m = self.model(peer);
                assert!(
                    !m.close_io && !m.shutdown_write,
                    "bad Io::ShutdownWrite for {peer:?}"
                );
                assert!(m.unwritten.is_empty(), "FIN before the queue was flushed");
                m.shutdown_write = true;
            }
            Io::Close { peer, .. } => {
                let m = self.model(peer);
                assert!(!m.close_io, "Io::Close twice for {peer:?}");
                m.close_io = true;
            }
            Io::Listen { listener, .. } => {
                assert_eq!(
                    self.listener_state.get(&listener),
                    Some(&0),
                    "stray Io::Listen"
                );
            }
            Io::CloseListener { listener } => {
                let state = self.listener_state.insert(listener, 2);
                assert!(
                    matches!(state, Some(0 | 1)),
                    "{listener:?}: Io::CloseListener when gone"
                );
            }
        }
    }

    fn on_event(&mut self, event: Event) {
        let low = self.config.send_queue_low_water as u64;
        let max = self.config.max_frame_size as u64;
        let (half_close, sent_events) = (self.config.half_close, self.config.sent_events);
        let Some(peer) = event.peer() else {
            match event {
                Event::ShutdownComplete => {
                    assert!(
                        self.shutdown && !self.shutdown_seen,
                        "unexpected ShutdownComplete"
                    );
                    assert_eq!(
                        self.engine.peer_count(),
                        0,
                        "ShutdownComplete with live peers"
                    );
                    self.shutdown_seen = true;
                }
                Event::Listening { listener, .. } => {
                    let state = self.listener_state.insert(listener, 1);
                    assert_eq!(state, Some(0), "{listener:?}: Listening twice or when gone");
                }
                Event::ListenFailed { listener, .. } => {
                    let state = self.listener_state.insert(listener, 2);
                    assert!(
                        matches!(state, Some(0 | 1)),
                        "{listener:?}: ListenFailed when gone"
                    );
                }
                Event::Refused { .. } => {}
                Event::AcceptFailed { listener, .. } => {
                    let state = self.listener_state.get(&listener);
                    assert!(
                        matches!(state, Some(0 | 1)),
                        "{listener:?}: AcceptFailed when gone"
                    );
                    self.accept_errors_seen += 1;
                }
                other => panic!("unexpected event {other:?}"),
            }
            return;
        };
        let m = self.model(peer);
        match event {
            Event::Connected { direction, .. } => {
                assert_eq!(
                    m.life,
                    Life::Pending,
                    "{peer:?}: Connected twice or after its end"
                );
                assert_eq!(direction == Direction::Outbound, m.outbound);
                m.life = Life::Connected;
            }
            Event::ConnectFailed { unsent, .. } => {
                assert!(
                    m.outbound && m.life == Life::Pending,
                    "{peer:?}: stray ConnectFailed"
                );
                assert_eq!(
                    (m.written, unsent),
                    (0, m.accepted),
                    "{peer:?}: wrong unsent count"
                );
                m.life = Life::Dead;
                self.unsent += unsent;
            }
            Event::Received { data, .. } => {
                assert_eq!(
                    m.life,
                    Life::Connected,
                    "{peer:?}: Received while not connected"
                );
                assert!(!m.read_closed, "{peer:?}: Received after ReadClosed");
                let expected = m.reference.expected.pop_front();
                assert_eq!(
                    expected.as_deref(),
                    Some(&data[..]),
                    "{peer:?}: wrong message"
                );
                self.held.push_back(data);
                if self.held.len() > MAX_HELD {
                    self.held.pop_front();
                }
            }
            Event::ReadClosed { .. } => {
                assert!(half_close, "{peer:?}: ReadClosed without half_close");
                assert!(
                    m.life == Life::Connected && m.eof && !m.read_closed,
                    "{peer:?}: ReadClosed"
                );
                m.read_closed = true;
            }
            Event::Sent { bytes, .. } => {
                assert_eq!(
                    m.life,
                    Life::Connected,
                    "{peer:?}: Sent while not connected"
                );
                assert!(sent_events && bytes > 0, "{peer:?}: Sent {bytes}");
                m.sent_events += bytes as u64;
            }
            Event::SendRefused { error, .. } => {
                // After its end a peer can only see a late message come back as unknown.
                assert_eq!(
                    m.life == Life::Dead,
                    error == SendError::UnknownPeer,
                    "{peer:?}: SendRefused({error:?}) while {:?}",
                    m.life
                );
            }
            Event::Writable { .. } => {
                assert!(
                    m.queue_full && m.accepted - m.written <= low,
                    "{peer:?}: early Writable"
                );
                m.queue_full = false;
                m.expect_writable = false;
            }
            Event::Disconnected { reason, unsent, .. } => {
                assert_eq!(
                    m.life,
                    Life::Connected,
                    "{peer:?}: Disconnected without Connected"
                );
                assert_eq!(
                    unsent,
                    m.accepted - m.written,
                    "{peer:?}: wrong unsent count"
                );
                if let DisconnectReason::FrameTooLarge { len, max: x } = reason {
                    assert_eq!(x, max);
                    assert_eq!(
                        m.reference.error,
                        Some(len),
                        "{peer:?}: wrong oversized frame"
                    );
                }
                m.life = Life::Dead;
                self.unsent += unsent;
            }
            other => panic!("unexpected event {other:?}"),
        }
    }

    fn check(&mut self) {
        let c = &self.config;
        let high = c.send_queue_high_water as u64;
        let spill_bound = 2 * (c.max_frame_size + c.segment_size + 8);
        let (mut live, mut queued, mut pending, mut ring_bound) = (0, 0, 0, 0);
        for (id, m) in self.ids.iter().zip(&self.peers) {
            let info = self.engine.peer(*id);
            assert_eq!(
                info.is_some(),
                m.life != Life::Dead,
                "{id:?}: engine and model disagree"
            );
            assert_eq!(
                m.close_io,
                m.life == Life::Dead,
                "{id:?}: Io::Close without its event"
            );
            assert!(
                m.reference.expected.is_empty(),
                "{id:?}: messages not delivered"
            );
            assert!(!m.expect_writable, "{id:?}: Writable missing");
            if self.config.sent_events {
                assert_eq!(
                    m.sent_events, m.written,
                    "{id:?}: Sent events disagree with writes"
                );
            }
            let Some(info) = info else { continue };
            live += 1;
            let q = m.accepted - m.written;
            queued += q;
            ring_bound += RING_ENTRY * (4 * (high.max(m.largest) as usize) + 16);
            pending += usize::from(info.state == PeerState::Connecting);
            assert_eq!(m.unwritten.len() as u64, q);
            assert!(
                m.reference.error.is_none(),
                "{id:?}: oversized frame not rejected"
            );
            assert!(q <= high.max(m.largest), "{id:?}: queue {q} over its bound");
            assert_eq!(self.engine.stats(*id).map(|s| s.queued), Some(q));
            if info.state != PeerState::Connecting {
                assert_eq!(
                    self.engine.interest(*id),
                    Some(m.interest),
                    "{id:?}: interest"
                );
            }
        }
        let g = self.engine.global_stats();
        assert_eq!(g.accepted_bytes, self.accepted);
        assert_eq!(g.unsent_bytes, self.unsent);
        assert_eq!(g.sent.bytes, self.written);
        assert_eq!(g.received.bytes, self.received);
        assert_eq!(g.queued_bytes, queued);
        assert_eq!(self.accepted, self.written + queued + self.unsent);
        assert!(live <= c.max_peers && pending <= c.max_pending_connects);
        assert!(
            g.spilled_bytes <= live * spill_bound,
            "spill {} over bound",
            g.spilled_bytes
        );
        assert!(self.engine.peer_heap_bytes() <= g.spilled_bytes + ring_bound);
        let pool = self.engine.pool_usage();
        assert!(
            pool.total == c.pool_segments && pool.lent <= live,
            "{pool:?}"
        );
        // Timer entries (live or stale) stay within a bound set by the configuration.
        let timers = self.engine.pending_timers();
        let timer_bound = 2 * (c.max_peers + 8) * crate::timer::TimerKind::COUNT;
        assert!(
            timers <= timer_bound,
            "{timers} timer entries, bound {timer_bound}"
        );
        assert_eq!(
            self.accept_errors_seen, self.accept_errors_expected,
            "AcceptFailed count"
        );
        assert_eq!(
            self.engine.global_stats().accept_errors,
            self.accept_errors_seen
        );
        if self.shutdown && live == 0 {
            assert!(self.shutdown_seen, "shut down without ShutdownComplete");
        }
    }

    /// Lets every peer write what it can, advancing time to each wake-up, and fails if a peer
    /// with queued bytes is left with no way forward (no write interest and no deadline).
    pub(super) fn flush(&mut self) {
        let (mut spins, mut busy) = (0, 0);
        for _ in 0..FLUSH_ROUNDS {
            self.held.clear();
            let mut progressed = false;
            for id in self.engine.peer_ids() {
                let Some(interest) = self.engine.interest(id) else {
                    continue;
                };
                let now = self.now();
                if interest.write {
                    let mut took = 0;
                    self.engine.write_to(id, now, |s: &[IoSlice<'_>]| {
                        took = s.iter().map(|s| s.len()).sum();
                        Ok(took)
                    });
                    self.record_written(id, took);
                    progressed |= took > 0;
                }
                // Reads as an edge-triggered driver: once each time read interest turns on.
                if interest.read && std::mem::take(&mut self.model(id).read_armed) {
                    self.engine
                        .read_from(id, now, |_| Err(io::ErrorKind::WouldBlock.into()));
                }
            }
            self.settle();
            if progressed {
                spins = 0;
                continue;
            }
            let Some(at) = self.engine.poll_timeout() else {
                self.check_nothing_stuck();
                return;
            };
            if at <= self.now() {
                // A deadline already past and no progress: a driver loops at once. Real time
                // passes while it does (1 ms per round here); the loop must end within
                // `BUSY_LIMIT` of it (core-requests-fuzz.md #5: global rounds busy-wait for a
                // refill today).
                spins += 1;
                if spins >= 4 {
                    busy += 1;
                    assert!(
                        busy <= BUSY_LIMIT_MS,
                        "poll_timeout stays in the past: the driver spins"
                    );
                    self.offset += 1_000_000;
                }
            }
            self.advance_to(at);
            self.engine.handle_timeout(self.now());
            self.settle();
            if self.offset >= START * 1_000 {
                return;
            }
        }
    }

    /// With nothing to do and no deadline, every peer that may write has written everything,
    /// and every peer that may read wants to.
    fn check_nothing_stuck(&self) {
        for (id, m) in self.ids.iter().zip(&self.peers) {
            let Some(info) = self.engine.peer(*id) else {
                continue;
            };
            if info.state == PeerState::Connecting {
                continue;
            }
            assert!(
                m.unwritten.is_empty(),
                "{id:?}: queued bytes stuck, no wake-up"
            );
            let wants = self.engine.interest(*id).is_some_and(|i| i.read);
            assert!(
                m.eof || m.read_paused || wants,
                "{id:?}: reading paused with no wake-up"
            );
        }
    }

    /// Aborts every peer: each id must end with exactly one terminal event and the engine must
    /// return to empty, with every pool segment back.
    pub(super) fn finish(&mut self) {
        let now = self.now();
        for id in self.ids.clone() {
            let _ = self.engine.abort(id, now);
            self.settle();
        }
        self.held.clear();
        assert_eq!(self.engine.peer_count(), 0);
        for (id, m) in self.ids.iter().zip(&self.peers) {
            assert_eq!(m.life, Life::Dead, "{id:?} has no terminal event");
        }
        let pool = self.engine.pool_usage();
        assert_eq!(pool.lent, 0, "{pool:?}");
    }
}
