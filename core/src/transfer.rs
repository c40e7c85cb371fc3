//! The read and write paths: budgets, segments, framing and accounting around one socket call.

use crate::clock::Nanos;
use crate::engine::{lookup, Engine};
use crate::frame::{min_tail, FrameTooLarge};
use crate::peer::{Block, Phase, DOWN, UP};
use crate::queue::MAX_SLICES;
use crate::secure::Failure;
use crate::timer::TimerKind;
use crate::{DisconnectReason, Event, PeerId, Transfer};
use bytes::BytesMut;
use std::io::{self, IoSlice};
use std::time::Instant;

/// How long a peer waits before retrying an exhausted pool (memory returns when the application
/// drops received data, which the engine cannot observe).
pub(crate) const POOL_RETRY: Nanos = 2_000_000;
/// The longest wait between pool probes while nothing comes back.
pub(crate) const POOL_RETRY_MAX: Nanos = 128_000_000;

/// How many idle peers' partial messages one segment request may spill.
const EVICTIONS_PER_TAKE: usize = 4;

impl Engine {
    /// The read path. The engine lends `read` a slice of a pooled segment, sized by the download
    /// budget; `read` fills a prefix of it (one non-blocking socket read) and returns the count,
    /// `Ok(0)` meaning EOF. Received messages are queued as [`Event::Received`].
    ///
    /// Call it while the peer's [`Interest`](crate::Interest) has `read`, until it returns
    /// something other than [`Transfer::Moved`] or a read comes back shorter than the slice (the
    /// socket is drained: with edge-triggered readiness, wait for the next edge). It returns
    /// `WouldBlock` when the socket does, `Paused` when the engine does not want to read now
    /// (budget, pool, state) and `Closed` when the peer is gone or will read no more.
    ///
    /// The slice must be initialised memory, which costs a memset of the room the first time a
    /// segment is used; drivers whose socket API reads into uninitialised memory should prefer
    /// [`read_buf_from`](Self::read_buf_from).
    pub fn read_from<F>(&mut self, peer: PeerId, now: Instant, read: F) -> Transfer
    where
        F: FnOnce(&mut [u8]) -> io::Result<usize>,
    {
        let now = self.clock.observe(now);
        let want = match self.prepare_read(peer, now) {
            Ok(want) => want,
            Err(status) => return status,
        };
        let Some((segment, filled)) = self.read_target(peer) else {
            return Transfer::Paused;
        };
        let end = filled + want;
        if segment.len() < end {
            // Initialise only the part of the room no earlier read has.
            segment.resize(end, 0);
        }
        let result = read(&mut segment[filled..end]).map(|n| n.min(want));
        self.finish_read(peer, result, want, now)
    }

    /// The read path for readers that fill uninitialised memory (Tokio's `try_read_buf`, or
    /// `socket2` receives into spare capacity): the engine lends the segment's spare capacity as a
    /// [`BufMut`](bytes::BufMut) limited to the download budget; `read` appends to it (one
    /// non-blocking socket read) and returns the count, `Ok(0)` meaning EOF. Nothing is zeroed.
    /// Otherwise exactly like [`read_from`](Self::read_from).
    pub fn read_buf_from<F>(&mut self, peer: PeerId, now: Instant, read: F) -> Transfer
    where
        F: FnOnce(&mut bytes::buf::Limit<&mut BytesMut>) -> io::Result<usize>,
    {
        let now = self.clock.observe(now);
        let want = match self.prepare_read(peer, now) {
            Ok(want) => want,
            Err(status) => return status,
        };
        let Some((segment, filled)) = self.read_target(peer) else {
            return Transfer::Paused;
        };
        // Append right after the unparsed data: earlier initialised room is simply reused.
        segment.truncate(filled);
        let mut limited = bytes::BufMut::limit(&mut *segment, want);
        let result = read(&mut limited);
        // What was appended is the truth, whatever the closure returned. A closure that
        // shrank the segment or wrote past the limit (through `Limit::get_mut`) broke the
        // contract: the peer is closed rather than trusting the bytes.
        let len = segment.len();
        if len < filled || len - filled > want {
            segment.truncate(filled);
            self.close(peer, DisconnectReason::Io(io::ErrorKind::InvalidData), now);
            return Transfer::Closed;
        }
        let appended = len - filled;
        let result = match result {
            Ok(_) => Ok(appended),
            Err(e) if appended > 0 => {
                // Bytes arrived before the error: take them; the error recurs on the next read.
                let _ = e;
                Ok(appended)
            }
            Err(e) => Err(e),
        };
        self.finish_read(peer, result, want, now)
    }

    /// Checks state and budgets and makes room; returns how many bytes the read may take.
    fn prepare_read(&mut self, peer: PeerId, now: Nanos) -> Result<usize, Transfer> {
        let Some(p) = lookup(&mut self.peers, peer) else {
            return Err(Transfer::Closed);
        };
        if !p.may_read() {
            return Err(if p.phase == Phase::Connecting {
                Transfer::Paused
            } else {
                Transfer::Closed
            });
        }
        if p.blocks[DOWN] != Block::None || p.read_paused {
            self.release_idle_segment(peer);
            return Err(Transfer::Paused);
        }
        p.idle = false;
        let Some(budget) = self.budget(peer, DOWN, self.pool.segment_size() as u64, now) else {
            // A throttled peer holds no segment while it waits (a partial message may be
            // evicted like any idle peer's).
            self.release_idle_segment(peer);
            return Err(Transfer::Paused);
        };
        let budget = budget as usize;
        if !self.make_room(peer, budget, now) {
            return Err(Transfer::Paused);
        }
        let p = lookup(&mut self.peers, peer).ok_or(Transfer::Closed)?;
        if let (Some(channel), Some(segment)) = (&mut p.secure, &mut p.segment) {
            channel.unstash(segment, p.filled);
        }
        let room = p.segment.as_ref().map_or(0, |s| s.capacity() - p.held());
        Ok(budget.min(room))
    }

    /// The peer's segment and where the next read lands (after everything it holds).
    fn read_target(&mut self, peer: PeerId) -> Option<(&mut crate::pool::Segment, usize)> {
        let p = lookup(&mut self.peers, peer)?;
        let filled = p.held();
        p.segment.as_mut().map(|s| (s, filled))
    }

    fn finish_read(
        &mut self,
        peer: PeerId,
        result: io::Result<usize>,
        want: usize,
        now: Nanos,
    ) -> Transfer {
        match result {
            Ok(0) => {
                self.on_eof(peer, now);
                Transfer::Closed
            }
            Ok(n) => {
                self.on_read(peer, n, now);
                if self.peer_ref(peer).is_none() {
                    return Transfer::Closed;
                }
                if n < want {
                    // A short read drained the socket: the peer is idle until the next edge.
                    self.release_idle_segment(peer);
                }
                Transfer::Moved(n)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.release_idle_segment(peer);
                Transfer::WouldBlock
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Transfer::Moved(0),
            Err(e) => {
                self.close(peer, DisconnectReason::Io(e.kind()), now);
                Transfer::Closed
            }
        }
    }

    /// The write path. The engine hands `write` the front of the peer's queue as slices, at most
    /// what the upload budget allows; `write` makes one non-blocking (vectored) socket write and
    /// returns how many bytes the socket took.
    ///
    /// Call it while the peer's [`Interest`](crate::Interest) has `write` and it returns
    /// [`Transfer::Moved`].
    pub fn write_to<F>(&mut self, peer: PeerId, now: Instant, write: F) -> Transfer
    where
        F: FnOnce(&[IoSlice<'_>]) -> io::Result<usize>,
    {
        self.write_at_most(peer, now, usize::MAX, write)
    }

    /// [`write_to`](Self::write_to) offering at most `limit` bytes: for drivers that cap the
    /// bytes one socket writes per turn (so a busy sender does not fill the receiver's window
    /// in one go) and hand the rest to the next turn.
    ///
    /// ```
    /// use openp2p_core::{Config, Engine, Transfer};
    /// # let now = std::time::Instant::now();
    /// # let mut engine = Engine::new(Config::default()).unwrap();
    /// # let listener = engine.listen("127.0.0.1:1".parse().unwrap()).unwrap();
    /// # engine.handle_listening(listener, "127.0.0.1:1".parse().unwrap(), now);
    /// # let peer = engine.handle_accepted(listener, "10.0.0.1:5".parse().unwrap(), now).unwrap();
    /// engine.send(peer, "abc".into(), now).unwrap();
    /// engine.send(peer, "defg".into(), now).unwrap();
    /// let mut wire = Vec::new();
    /// let moved = engine.write_at_most(peer, now, 5, |slices| {
    ///     slices.iter().for_each(|s| wire.extend_from_slice(s));
    ///     Ok(wire.len())
    /// });
    /// assert_eq!((moved, &wire[..]), (Transfer::Moved(5), &b"abcde"[..]));
    /// ```
    pub fn write_at_most<F>(
        &mut self,
        peer: PeerId,
        now: Instant,
        limit: usize,
        write: F,
    ) -> Transfer
    where
        F: FnOnce(&[IoSlice<'_>]) -> io::Result<usize>,
    {
        let now = self.clock.observe(now);
        let Some(p) = lookup(&mut self.peers, peer) else {
            return Transfer::Closed;
        };
        if !p.may_write() {
            return if p.phase == Phase::Connecting {
                Transfer::Paused
            } else {
                Transfer::Closed
            };
        }
        if !p.has_output() || p.blocks[UP] != Block::None || limit == 0 {
            return Transfer::Paused;
        }
        if let Some(channel) = &mut p.secure {
            if let Err(failure) = channel.seal(&mut p.queue, &mut self.outboxes) {
                self.close(peer, DisconnectReason::Secure(failure), now);
                return Transfer::Closed;
            }
        }
        let Some(pending) = self.peer_ref(peer).map(|p| p.unwritten()) else {
            return Transfer::Closed;
        };
        let want = pending.min(u64::try_from(limit).unwrap_or(u64::MAX));
        if want == 0 {
            return Transfer::Paused;
        }
        let Some(budget) = self.budget(peer, UP, want, now) else {
            return Transfer::Paused;
        };
        let Some(p) = self.peer_mut(peer) else {
            return Transfer::Closed;
        };
        let budget = usize::try_from(budget).unwrap_or(usize::MAX);
        let result = match p.secure.as_ref().and_then(|c| c.outbox.as_ref()) {
            Some(outbox) => {
                let sealed = outbox.unwritten();
                let chunk = &sealed[..budget.min(sealed.len())];
                write(&[IoSlice::new(chunk)]).map(|n| n.min(chunk.len()))
            }
            None => {
                let mut slices = [IoSlice::new(&[]); MAX_SLICES];
                let count = p.queue.slices(budget, &mut slices);
                let offered: usize = slices[..count].iter().map(|s| s.len()).sum();
                write(&slices[..count]).map(|n| n.min(offered))
            }
        };
        match result {
            Ok(0) => {
                self.close(peer, DisconnectReason::Io(io::ErrorKind::WriteZero), now);
                Transfer::Closed
            }
            Ok(n) => {
                self.on_written(peer, n, now);
                self.watch_keys(peer, now);
                if self.peer_ref(peer).is_some() {
                    Transfer::Moved(n)
                } else {
                    Transfer::Closed
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Transfer::WouldBlock,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Transfer::Moved(0),
            Err(e) => {
                self.close(peer, DisconnectReason::Io(e.kind()), now);
                Transfer::Closed
            }
        }
    }

    /// How many bytes `peer` may move in direction `dir` now, at most `want`. `None` pauses the
    /// direction (and arranges the wake-up).
    fn budget(&mut self, peer: PeerId, dir: usize, want: u64, now: Nanos) -> Option<u64> {
        let p = lookup(&mut self.peers, peer)?;
        let mut budget = want;
        if let Some(bucket) = &mut p.buckets[dir] {
            let available = bucket.available(now);
            // A throttled peer moves at least a wake-up's worth (or all it wants) per turn: a
            // grant of the few bytes earned since the previous call would make every further
            // read or write of the turn a system call (and an event) for a handful of bytes.
            if available < bucket.wake_amount().min(want.max(1)) {
                let at = bucket.ready_at(bucket.wake_amount(), now);
                p.blocks[dir] = Block::Budget;
                let kind = if dir == UP {
                    TimerKind::WriteBudget
                } else {
                    TimerKind::ReadBudget
                };
                self.arm(peer, kind, at);
                self.update_interest(peer);
                return None;
            }
            budget = budget.min(available);
        }
        let granted = self.global[dir].grant(&p.shares[dir], budget, now);
        if granted == 0 {
            p.blocks[dir] = Block::Global;
            let share = &mut p.shares[dir];
            self.global[dir].park(peer, share, now);
            self.update_interest(peer);
            return None;
        }
        Some(granted)
    }

    /// Charges `n` moved bytes to the peer's and the global budget.
    fn charge(&mut self, peer: PeerId, dir: usize, n: u64, now: Nanos) {
        let Some(p) = lookup(&mut self.peers, peer) else {
            return;
        };
        if let Some(bucket) = &mut p.buckets[dir] {
            bucket.take(n, now);
        }
        self.global[dir].consume(&mut p.shares[dir], n, now);
    }

    /// Ensures the peer holds a segment with room to read. False: the pool is exhausted and the
    /// peer now waits for it.
    ///
    /// Never waits on memory only this peer could free: its own segment goes back to the pool
    /// before a fresh one is taken (it may be reclaimed in place), and a partial message it holds
    /// is spilled out of the pool when no fresh segment can be had. Idle peers' partial messages
    /// are spilled too when the pool runs dry, so no set of remotes can pin the pool by trickling
    /// partial messages.
    fn make_room(&mut self, peer: PeerId, budget: usize, now: Nanos) -> bool {
        let segment_size = self.pool.segment_size();
        let min_room = self.pool.min_room().min(budget.max(1));
        let Some(p) = lookup(&mut self.peers, peer) else {
            return false;
        };
        let room = p.segment.as_ref().map_or(0, |s| s.capacity() - p.held());
        if room >= min_room {
            return true;
        }
        let mut old = p.segment.take();
        if let Some(segment) = old.as_mut() {
            if p.held() + min_tail(segment_size) > segment_size {
                // A fresh segment could not hold this message with a useful tail: spill it.
                p.decoder.spill(segment, &mut p.filled);
            }
            if p.held() == 0 {
                if let Some(segment) = old.take() {
                    self.return_segment(segment);
                }
            }
        }
        let carry = old
            .as_ref()
            .map_or(0, |_| self.peer_ref(peer).map_or(0, |p| p.held()));
        let mut fresh = self.take_segment(carry + min_room);
        if fresh.is_none() {
            if let Some(mut segment) = old.take() {
                // Our own partial message must not wait for memory only we hold.
                let Some(p) = lookup(&mut self.peers, peer) else {
                    self.return_segment(segment);
                    return false;
                };
                p.decoder.spill(&mut segment, &mut p.filled);
                if p.held() > 0 {
                    // A partial Noise message cannot leave the segment: keep it and wait.
                    p.segment = Some(segment);
                    self.wait_for_pool(peer, now);
                    return false;
                }
                self.return_segment(segment);
                fresh = self.take_segment(min_room);
            }
        }
        let Some(mut fresh) = fresh else {
            self.wait_for_pool(peer, now);
            return false;
        };
        let Some(p) = lookup(&mut self.peers, peer) else {
            self.return_segment(fresh);
            return false;
        };
        if let Some(mut old) = old {
            let carry = p.held();
            if fresh.len() >= carry {
                fresh[..carry].copy_from_slice(&old[..carry]);
            } else {
                fresh.clear();
                fresh.extend_from_slice(&old[..carry]);
            }
            bytes::Buf::advance(&mut old, carry);
            p.segment = Some(fresh);
            self.return_segment(old);
        } else {
            p.segment = Some(fresh);
        }
        true
    }

    /// Takes a segment from the pool, spilling idle peers' partial messages to free memory when
    /// it is exhausted.
    fn take_segment(&mut self, room: usize) -> Option<crate::pool::Segment> {
        for _ in 0..=EVICTIONS_PER_TAKE {
            if let Some(segment) = self.pool.take(room) {
                return Some(segment);
            }
            if !self.evict_idle_holder() {
                return None;
            }
        }
        None
    }

    /// Moves the partial message of the longest-idle peer holding a segment out of the pool and
    /// returns its segment. False when no idle peer holds one.
    fn evict_idle_holder(&mut self) -> bool {
        while let Some(id) = self.idle_holders.pop_front() {
            let Some(p) = lookup(&mut self.peers, id) else {
                continue;
            };
            p.listed_idle = false;
            if !p.idle {
                continue;
            }
            let Some(mut segment) = p.segment.take() else {
                continue;
            };
            p.decoder.spill(&mut segment, &mut p.filled);
            if p.held() > 0 {
                // A partial Noise message (or, never after a decode, complete frames) stays:
                // keep the segment rather than lose bytes.
                p.segment = Some(segment);
                continue;
            }
            self.return_segment(segment);
            return true;
        }
        false
    }

    fn wait_for_pool(&mut self, peer: PeerId, now: Nanos) {
        let Some(p) = self.peer_mut(peer) else { return };
        p.blocks[DOWN] = Block::Pool;
        self.pool_waiters.push_back(peer);
        if self.pool_retry_at.is_none() {
            self.pool_retry_at = Some(now.saturating_add(self.pool_backoff));
        }
        self.update_interest(peer);
    }

    /// Returns the peer's segment when it holds no partial message (an idle peer holds none);
    /// one that holds a partial message is listed as evictable under pool pressure.
    fn release_idle_segment(&mut self, peer: PeerId) {
        let Some(p) = lookup(&mut self.peers, peer) else {
            return;
        };
        p.idle = true;
        if let (Some(channel), Some(segment)) = (&mut p.secure, &p.segment) {
            // A partial handshake message (unauthenticated, at most ~1 KiB) waits outside the
            // pool, so strangers trickling handshakes cannot pin its segments.
            if p.phase == Phase::Handshaking && p.filled == 0 {
                channel.stash(segment);
            }
        }
        if p.held() == 0 {
            if let Some(segment) = p.segment.take() {
                self.return_segment(segment);
            }
        } else if p.segment.is_some() && !p.listed_idle {
            p.listed_idle = true;
            self.idle_holders.push_back(peer);
            // Entries of peers that closed while listed are dropped here, amortised O(1).
            if self.idle_holders.len() > 2 * self.peers.len() + 16 {
                let peers = &self.peers;
                self.idle_holders.retain(|id| {
                    peers
                        .get(id.slot())
                        .is_some_and(|p| p.id == *id && p.listed_idle)
                });
            }
        }
    }

    fn on_read(&mut self, peer: PeerId, n: usize, now: Nanos) {
        self.charge(peer, DOWN, n as u64, now);
        let Some(p) = lookup(&mut self.peers, peer) else {
            return;
        };
        p.last_activity = now;
        let mut payload = n;
        let mut broken = None;
        match (
            &mut p.secure,
            p.segment.as_mut(),
            self.config.secure.as_ref(),
        ) {
            (None, _, _) => p.filled += n,
            (Some(channel), Some(segment), Some(config)) => {
                channel.pending += n;
                match channel.open(segment, &mut p.filled, config, &mut self.outboxes) {
                    Ok(opened) => {
                        payload = opened.plain;
                        broken = opened.broken;
                        self.watch_keys(peer, now);
                        if opened.established {
                            // `Connected` goes out before anything received after it.
                            self.finish_handshake(peer, now);
                        }
                        self.update_interest(peer);
                    }
                    Err(failure) => {
                        p.received.record(now, n as u64, 0, 0);
                        self.totals.received.record(now, n as u64, 0, 0);
                        let Failure::Handshake(f) = failure;
                        self.fail_handshake(peer, f, now);
                        return;
                    }
                }
            }
            // A secure peer's bytes never reach the framing layer undecrypted (a read always
            // lands in a segment, so this cannot happen).
            (Some(_), _, _) => {
                self.close(peer, DisconnectReason::Io(io::ErrorKind::InvalidData), now);
                return;
            }
        }
        self.decode_received(peer, n, payload, now);
        if let Some(failure) = broken {
            // Everything authentic before the failed transport message was delivered above.
            self.close(peer, DisconnectReason::Secure(failure), now);
        }
    }

    /// Hands every whole message in the peer's plaintext to the application and records the
    /// read (`wire` bytes from the socket, carrying `payload` application bytes).
    fn decode_received(&mut self, peer: PeerId, wire: usize, payload: usize, now: Nanos) {
        let segment_size = self.pool.segment_size();
        let events = &mut self.events;
        let Some(p) = lookup(&mut self.peers, peer) else {
            return;
        };
        let mut messages = 0;
        let decoded = match p.segment.as_mut() {
            Some(segment) => p
                .decoder
                .decode(segment, &mut p.filled, segment_size, &mut |data| {
                    messages += 1;
                    events.push_back(Event::Received { peer, data });
                }),
            None => Ok(()),
        };
        let (wire, payload) = (wire as u64, payload as u64);
        p.received.record(now, wire, payload, messages);
        self.totals.received.record(now, wire, payload, messages);
        self.totals.first_activity.get_or_insert(now);
        if let Err(FrameTooLarge { len }) = decoded {
            let max = self.config.max_frame_size as u64;
            self.close(peer, DisconnectReason::FrameTooLarge { len, max }, now);
        }
    }

    fn on_eof(&mut self, peer: PeerId, now: Nanos) {
        let Some(p) = self.peer_mut(peer) else { return };
        p.eof = true;
        let secure_end = match &mut p.secure {
            Some(channel) if p.phase == Phase::Handshaking => {
                channel.failure = Some(crate::HandshakeFailure::Closed);
                Some(DisconnectReason::Handshake)
            }
            Some(channel) if channel.pending > 0 => {
                Some(DisconnectReason::Secure(crate::TransportFailure::Truncated))
            }
            _ => None,
        };
        if let Some(reason) = secure_end {
            self.close(peer, reason, now);
            return;
        }
        if let Some(segment) = p.segment.take() {
            // A partial message at EOF is dropped with the connection's receive state.
            self.return_segment(segment);
        }
        let half_close = self.config.half_close;
        let max_frame = self.config.max_frame_size;
        let Some(p) = self.peer_mut(peer) else { return };
        p.filled = 0;
        // A partial message at EOF will never complete: drop whatever it holds.
        p.decoder = crate::frame::Decoder::new(p.framing, max_frame);
        match p.phase {
            Phase::Connecting | Phase::Handshaking => {}
            Phase::Connected if half_close => {
                self.events.push_back(Event::ReadClosed { peer });
            }
            Phase::Connected => self.begin_drain(peer, DisconnectReason::Remote, now),
            Phase::Draining(_) => self.after_drain_progress(peer, now),
            Phase::HalfClosed(reason) => self.close(peer, reason, now),
        }
        self.update_interest(peer);
    }

    fn on_written(&mut self, peer: PeerId, n: usize, now: Nanos) {
        self.charge(peer, UP, n as u64, now);
        let low = self.config.send_queue_low_water as u64;
        let Some(p) = lookup(&mut self.peers, peer) else {
            return;
        };
        let (plain, completed) = match &mut p.secure {
            None => (n as u64, p.queue.advance(n)),
            Some(channel) => channel.written(n, &mut self.outboxes),
        };
        p.written += plain;
        p.last_activity = now;
        p.sent.record(now, n as u64, plain, completed);
        let writable = p.notify_writable && p.queued() <= low;
        if writable {
            p.notify_writable = false;
        }
        self.totals.written += plain;
        self.totals.sent.record(now, n as u64, plain, completed);
        self.totals.first_activity.get_or_insert(now);
        if self.config.sent_events && plain > 0 {
            let bytes = usize::try_from(plain).unwrap_or(usize::MAX);
            self.events.push_back(Event::Sent { peer, bytes });
        }
        if writable {
            self.events.push_back(Event::Writable { peer });
        }
        self.after_drain_progress(peer, now);
        self.update_interest(peer);
    }
}
