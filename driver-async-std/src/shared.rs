//! What the application's handles and the driver task share about each peer: the send credit
//! that makes `send` answer `QueueFull` at once (no round trip to the driver), and the close
//! state a [`PeerStream`](crate::PeerStream) waits on.
//!
//! The engine's send queue is the real bound; the credit here counts every byte the handles
//! accepted and the socket has not yet taken, which is never less than what the engine holds. So
//! a send the handle admits is never refused by the engine for a full queue, and because the
//! engine never sees `QueueFull`, the driver emits `Event::Writable` from this credit instead.

use atomic_waker::AtomicWaker;
use bytes::Bytes;
use openp2p_core::{Config, DisconnectReason, Framing, PeerId, SendError};
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

/// The queue limits a stream's room and the `Writable` report use (from the node's `Config`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct QueueLimits {
    pub(crate) high_water: u64,
    pub(crate) low_water: u64,
    pub(crate) max_frame: usize,
}

impl QueueLimits {
    pub(crate) fn new(config: &Config) -> QueueLimits {
        QueueLimits {
            high_water: config.send_queue_high_water as u64,
            low_water: config.send_queue_low_water as u64,
            max_frame: config.max_frame_size,
        }
    }
}

/// A stream with this many received bytes unread pauses its peer's reading (the TCP window then
/// throttles the sender) ...
const STREAM_UNREAD_HIGH: u64 = 1 << 20;
/// ... until it has caught up to this many.
const STREAM_UNREAD_LOW: u64 = 256 * 1024;

/// One peer's state shared between handles and the driver.
#[derive(Debug)]
pub(crate) struct PeerShared {
    pub(crate) id: PeerId,
    framing: Framing,
    /// Bytes (framing included) accepted by handles and neither written nor dropped yet.
    queued: AtomicU64,
    /// False after `disconnect`/`abort` from a handle, or once the peer closed.
    accepting: AtomicBool,
    /// A handle saw `QueueFull`: report `Writable` at the low-water mark.
    notify_writable: AtomicBool,
    closed: AtomicBool,
    /// A `PeerStream` is alive for this peer.
    attached: AtomicBool,
    /// Bytes routed to the peer's stream and not yet read from it.
    unread: AtomicU64,
    /// The driver paused the peer's reading because its stream fell behind.
    read_paused: AtomicBool,
    /// Wakes a stream waiting for credit, a flush or the close.
    pub(crate) writer: AtomicWaker,
    /// Why the peer closed, once it has.
    reason: Mutex<Option<DisconnectReason>>,
}

impl PeerShared {
    pub(crate) fn new(id: PeerId, framing: Framing) -> Arc<PeerShared> {
        Arc::new(PeerShared {
            id,
            framing,
            queued: AtomicU64::new(0),
            accepting: AtomicBool::new(true),
            notify_writable: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            attached: AtomicBool::new(false),
            unread: AtomicU64::new(0),
            read_paused: AtomicBool::new(false),
            writer: AtomicWaker::new(),
            reason: Mutex::new(None),
        })
    }

    /// Checks a message with the engine's own rule ([`Config::admit`]) against this peer's credit
    /// and takes the credit. Returns the framed length the driver gives back when the bytes are
    /// written or dropped.
    pub(crate) fn admit(&self, data: &Bytes, config: &Config) -> Result<u64, SendError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(SendError::UnknownPeer);
        }
        if !self.accepting.load(Ordering::Acquire) {
            return Err(SendError::Closing);
        }
        let mut queued = self.queued.load(Ordering::Acquire);
        loop {
            let len = match config.admit(self.framing, data, queued) {
                Ok(len) => len,
                Err(full @ SendError::QueueFull { .. }) => {
                    // Ask for `Writable`, then look again: the driver may have released the
                    // credit after `queued` was read and before the request was stored, seeing no
                    // refusal to report (and no release may ever follow). With both sides
                    // sequentially consistent, either that release shows here (retry against
                    // the drained queue) or it comes later and sees the request.
                    self.notify_writable.store(true, Ordering::SeqCst);
                    let again = self.queued.load(Ordering::SeqCst);
                    if again != queued {
                        queued = again;
                        continue;
                    }
                    return Err(full);
                }
                Err(e) => return Err(e),
            };
            match self.queued.compare_exchange_weak(
                queued,
                queued + len,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Ok(len),
                Err(now) => queued = now,
            }
        }
    }

    /// Payload bytes of a `want`-byte stream write to send now (0: wait for credit). Raw framing
    /// takes what fits. A framed mode takes the write whole, as one message, or waits: any
    /// message fits an empty queue, as for `send`. A message over the frame limit is taken whole
    /// too, for the admission to refuse it.
    pub(crate) fn room(&self, want: usize, limits: QueueLimits) -> usize {
        let queued = self.queued.load(Ordering::Acquire);
        let overhead = self.framing.overhead() as u64;
        if !matches!(self.framing, Framing::Raw) {
            let framed = (want as u64).saturating_add(overhead);
            let fits = queued == 0 || queued.saturating_add(framed) <= limits.high_water;
            return if fits || want > limits.max_frame {
                want
            } else {
                0
            };
        }
        let room = if queued == 0 {
            limits.high_water.max(overhead + 1)
        } else {
            limits.high_water.saturating_sub(queued)
        };
        let payload = usize::try_from(room.saturating_sub(overhead)).unwrap_or(usize::MAX);
        payload.min(want)
    }

    /// `n` admitted bytes left the credit (written or dropped). True when a `Writable` is due.
    pub(crate) fn release(&self, n: u64, limits: QueueLimits) -> bool {
        // Sequentially consistent with `admit`'s refusal (see there).
        let before = self
            .queued
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |q| {
                Some(q.saturating_sub(n))
            })
            .unwrap_or_else(|q| q);
        let after = before.saturating_sub(n);
        self.writer.wake();
        after <= limits.low_water && self.notify_writable.swap(false, Ordering::SeqCst)
    }

    pub(crate) fn queued(&self) -> u64 {
        self.queued.load(Ordering::Acquire)
    }

    /// A handle asked to close: refuse further sends at once.
    pub(crate) fn stop_accepting(&self) {
        self.accepting.store(false, Ordering::Release);
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// The peer is gone: record why and wake the stream.
    pub(crate) fn mark_closed(&self, reason: Option<DisconnectReason>) {
        *self.reason.lock().unwrap_or_else(PoisonError::into_inner) = reason;
        self.accepting.store(false, Ordering::Release);
        self.closed.store(true, Ordering::Release);
        self.writer.wake();
    }

    /// What a stream's read reports once the data has ended: EOF after a clean close, the error
    /// after a failure.
    pub(crate) fn end_of_stream(&self) -> io::Result<usize> {
        match *self.reason.lock().unwrap_or_else(PoisonError::into_inner) {
            Some(DisconnectReason::Io(kind)) => Err(kind.into()),
            Some(DisconnectReason::FrameTooLarge { .. }) => Err(io::ErrorKind::InvalidData.into()),
            Some(DisconnectReason::IdleTimeout | DisconnectReason::LingerTimeout) => {
                Err(io::ErrorKind::TimedOut.into())
            }
            _ => Ok(0),
        }
    }

    /// The driver routed `n` bytes to the stream. True when the stream has fallen so far behind
    /// that reading must pause; the caller then pauses it and calls [`paused`](Self::paused).
    pub(crate) fn routed(&self, n: u64) -> bool {
        let unread = self.unread.fetch_add(n, Ordering::SeqCst) + n;
        unread > STREAM_UNREAD_HIGH && !self.read_paused.load(Ordering::SeqCst)
    }

    /// The driver has just paused reading. True if the stream caught up meanwhile: the caller
    /// resumes at once (exactly one of driver and stream resumes, whoever clears the flag).
    pub(crate) fn paused(&self) -> bool {
        self.read_paused.store(true, Ordering::SeqCst);
        self.unread.load(Ordering::SeqCst) <= STREAM_UNREAD_LOW
            && self.read_paused.swap(false, Ordering::SeqCst)
    }

    /// The stream consumed `n` bytes. True when reading was paused and must resume now.
    pub(crate) fn consumed(&self, n: u64) -> bool {
        let before = self
            .unread
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |u| {
                Some(u.saturating_sub(n))
            })
            .unwrap_or_else(|u| u);
        before.saturating_sub(n) <= STREAM_UNREAD_LOW
            && self.read_paused.swap(false, Ordering::SeqCst)
    }

    /// The stream is gone: nothing is buffered for it any more. True when reading must resume.
    pub(crate) fn abandoned(&self) -> bool {
        self.unread.store(0, Ordering::SeqCst);
        self.read_paused.swap(false, Ordering::SeqCst)
    }

    /// Claims the peer's single stream slot.
    pub(crate) fn try_attach(&self) -> bool {
        !self.attached.swap(true, Ordering::AcqRel)
    }

    pub(crate) fn detach(&self) {
        self.attached.store(false, Ordering::Release);
    }
}

/// Live peers by slot, for the handles. Only the driver writes (when a peer appears or goes);
/// handles take the read lock for a few atomic operations and never across IO or an await.
#[derive(Debug, Default)]
pub(crate) struct PeerTable {
    slots: RwLock<Vec<Option<Arc<PeerShared>>>>,
}

impl PeerTable {
    /// Runs `f` on the live peer `id`, or returns `None` for a stale or unknown id.
    pub(crate) fn with<R>(&self, id: PeerId, f: impl FnOnce(&Arc<PeerShared>) -> R) -> Option<R> {
        let slots = self.slots.read().unwrap_or_else(PoisonError::into_inner);
        slots
            .get(id.slot())
            .and_then(Option::as_ref)
            .filter(|p| p.id == id)
            .map(f)
    }

    pub(crate) fn insert(&self, peer: Arc<PeerShared>) {
        let mut slots = self.slots.write().unwrap_or_else(PoisonError::into_inner);
        let slot = peer.id.slot();
        if slots.len() <= slot {
            slots.resize(slot + 1, None);
        }
        slots[slot] = Some(peer);
    }

    pub(crate) fn remove(&self, id: PeerId) {
        let mut slots = self.slots.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = slots.get_mut(id.slot()) {
            if entry.as_ref().is_some_and(|p| p.id == id) {
                *entry = None;
            }
        }
    }

    /// The driver stopped: every peer is gone.
    pub(crate) fn clear(&self) {
        let mut slots = self.slots.write().unwrap_or_else(PoisonError::into_inner);
        for peer in slots.drain(..).flatten() {
            if !peer.is_closed() {
                peer.mark_closed(Some(DisconnectReason::Shutdown));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openp2p_core::{Config, Engine};
    use std::time::Instant;

    const LIMITS: QueueLimits = QueueLimits {
        high_water: 100,
        low_water: 40,
        max_frame: 64,
    };

    fn config() -> Config {
        Config {
            send_queue_high_water: 100,
            send_queue_low_water: 40,
            max_frame_size: 64,
            ..Config::default()
        }
    }

    /// A real peer id (ids cannot be made outside the engine).
    fn peer() -> PeerId {
        let mut engine = Engine::new(Config::default()).expect("default config");
        engine
            .connect("127.0.0.1:9".parse().expect("addr"), Instant::now())
            .expect("connect")
    }

    #[test]
    fn the_credit_refuses_what_the_engine_would_refuse_and_reports_writable_at_low_water() {
        let shared = PeerShared::new(peer(), Framing::LengthPrefixed);
        assert_eq!(shared.admit(&Bytes::from(vec![0; 60]), &config()), Ok(64));
        assert_eq!(
            shared.admit(&Bytes::from(vec![0; 40]), &config()),
            Err(SendError::QueueFull {
                queued: 64,
                limit: 100
            })
        );
        assert_eq!(shared.admit(&Bytes::from(vec![0; 30]), &config()), Ok(34));
        assert_eq!(shared.queued(), 98);
        assert!(
            !shared.release(50, LIMITS),
            "48 left is above the low-water mark"
        );
        assert!(
            shared.release(10, LIMITS),
            "38 left: the refused sender is told"
        );
        assert!(!shared.release(38, LIMITS), "told once per refusal");
        assert_eq!(shared.queued(), 0);
    }

    #[test]
    fn one_message_is_always_admitted_into_an_empty_queue() {
        let shared = PeerShared::new(peer(), Framing::Raw);
        assert_eq!(
            shared.admit(&Bytes::from(vec![0; 1_000]), &config()),
            Ok(1_000)
        );
        assert!(matches!(
            shared.admit(&Bytes::from_static(b"x"), &config()),
            Err(SendError::QueueFull { .. })
        ));
    }

    #[test]
    fn frame_and_delimiter_errors_are_reported_before_any_credit_is_taken() {
        let framed = PeerShared::new(peer(), Framing::LengthPrefixed);
        assert_eq!(
            framed.admit(&Bytes::from(vec![0; 65]), &config()),
            Err(SendError::FrameTooLarge { len: 65, max: 64 })
        );
        let delimited = PeerShared::new(peer(), Framing::Delimited(b'\n'));
        assert_eq!(
            delimited.admit(&Bytes::from_static(b"a\nb"), &config()),
            Err(SendError::DelimiterInPayload)
        );
        assert_eq!(framed.queued() + delimited.queued(), 0);
    }

    #[test]
    fn a_closing_or_closed_peer_refuses_sends() {
        let shared = PeerShared::new(peer(), Framing::Raw);
        shared.stop_accepting();
        assert_eq!(
            shared.admit(&Bytes::from_static(b"x"), &config()),
            Err(SendError::Closing)
        );
        shared.mark_closed(Some(DisconnectReason::Io(io::ErrorKind::ConnectionReset)));
        assert_eq!(
            shared.admit(&Bytes::from_static(b"x"), &config()),
            Err(SendError::UnknownPeer)
        );
        assert_eq!(
            shared.end_of_stream().map_err(|e| e.kind()),
            Err(io::ErrorKind::ConnectionReset)
        );
    }

    #[test]
    fn a_stream_writes_at_most_the_room_left() {
        let shared = PeerShared::new(peer(), Framing::Raw);
        assert_eq!(shared.room(1_000, LIMITS), 100);
        assert_eq!(shared.admit(&Bytes::from(vec![0; 70]), &config()), Ok(70));
        assert_eq!(shared.room(1_000, LIMITS), 30);
        assert_eq!(shared.room(10, LIMITS), 10);
        let framed = PeerShared::new(peer(), Framing::LengthPrefixed);
        assert_eq!(framed.room(60, LIMITS), 60, "a whole message");
        assert_eq!(framed.admit(&Bytes::from(vec![0; 60]), &config()), Ok(64));
        assert_eq!(framed.room(30, LIMITS), 30, "64 + 34 fits under 100");
        assert_eq!(
            framed.room(40, LIMITS),
            0,
            "64 + 44 does not: wait, never split"
        );
        assert_eq!(
            framed.room(65, LIMITS),
            65,
            "over the frame limit: refused whole"
        );
    }

    #[test]
    fn a_lagging_stream_pauses_reading_and_exactly_one_side_resumes_it() {
        let shared = PeerShared::new(peer(), Framing::Raw);
        assert!(
            !shared.routed(STREAM_UNREAD_HIGH),
            "at the mark, not past it"
        );
        assert!(shared.routed(1), "past the mark: pause");
        assert!(!shared.paused(), "still behind: stays paused");
        assert!(
            !shared.consumed(STREAM_UNREAD_HIGH / 2),
            "not caught up yet"
        );
        assert!(
            shared.consumed(STREAM_UNREAD_HIGH),
            "caught up: the stream resumes"
        );
        assert!(!shared.consumed(1), "resumed once");
        // The stream catches up between the driver's decision and its pause: the driver resumes.
        assert!(shared.routed(2 * STREAM_UNREAD_HIGH));
        assert!(
            !shared.consumed(2 * STREAM_UNREAD_HIGH),
            "not paused yet: nothing to resume"
        );
        assert!(
            shared.paused(),
            "the driver sees the stream caught up and resumes itself"
        );
        assert!(!shared.abandoned(), "nothing left paused");
    }

    #[test]
    fn the_table_finds_live_peers_only() {
        let table = PeerTable::default();
        let id = peer();
        table.insert(PeerShared::new(id, Framing::Raw));
        assert_eq!(table.with(id, |p| p.id), Some(id));
        table.remove(id);
        assert_eq!(table.with(id, |p| p.id), None);
    }
}

#[cfg(test)]
mod race {
    use super::*;
    use openp2p_core::{Config, Engine};
    use std::sync::atomic::AtomicUsize;
    use std::time::{Duration, Instant};

    /// A sender told `QueueFull` while the driver drains the queue on another thread is always
    /// told `Writable` later: the refusal and the last release never miss each other (or the
    /// sender sees the drained queue and is admitted). The threads meet at a spin barrier with
    /// the sender's start swept over a range of offsets, so the release lands in every part of
    /// the admission.
    #[test]
    fn a_refusal_racing_the_last_release_is_never_left_without_writable() {
        const LIMITS: QueueLimits = QueueLimits {
            high_water: 100,
            low_water: 40,
            max_frame: 64,
        };
        const STOP: usize = usize::MAX;
        let config = Config {
            send_queue_high_water: 100,
            send_queue_low_water: 40,
            ..Config::default()
        };
        let id = Engine::new(Config::default())
            .expect("default config")
            .connect("127.0.0.1:9".parse().expect("addr"), Instant::now())
            .expect("connect");
        // The round the releasing thread is asked to run, and the last one it finished (with
        // whether its release reported `Writable`, in the lowest bit).
        let go = Arc::new(AtomicUsize::new(0));
        let finished = Arc::new(AtomicUsize::new(0));
        let current = Arc::new(Mutex::new(PeerShared::new(id, Framing::Raw)));
        let releaser = {
            let (go, finished, current) = (go.clone(), finished.clone(), current.clone());
            std::thread::spawn(move || {
                let mut last = 0;
                loop {
                    let round = loop {
                        let round = go.load(Ordering::SeqCst);
                        if round != last {
                            break round;
                        }
                        std::hint::spin_loop();
                    };
                    if round == STOP {
                        return;
                    }
                    last = round;
                    let shared = Arc::clone(&current.lock().expect("lock"));
                    let writable = shared.release(100, LIMITS);
                    finished.store(round << 1 | usize::from(writable), Ordering::SeqCst);
                }
            })
        };
        let (started, mut round, mut lost, mut raced) = (Instant::now(), 0, 0, 0);
        while round < 100_000 && started.elapsed() < Duration::from_secs(2) {
            let shared = PeerShared::new(id, Framing::Raw);
            assert_eq!(shared.admit(&Bytes::from(vec![0; 100]), &config), Ok(100));
            *current.lock().expect("lock") = Arc::clone(&shared);
            round += 1;
            go.store(round, Ordering::SeqCst);
            for _ in 0..round % 64 {
                std::hint::spin_loop();
            }
            let refused = matches!(
                shared.admit(&Bytes::from_static(b"x"), &config),
                Err(SendError::QueueFull { .. })
            );
            let report = loop {
                let report = finished.load(Ordering::SeqCst);
                if report >> 1 == round {
                    break report;
                }
                std::hint::spin_loop();
            };
            let writable = report & 1 == 1;
            raced += usize::from(refused);
            lost += usize::from(refused && !writable);
        }
        go.store(STOP, Ordering::SeqCst);
        releaser.join().expect("releasing thread");
        assert!(
            raced > 0,
            "no refusal in {round} rounds: the race was never run"
        );
        assert_eq!(
            lost, 0,
            "{lost} of {raced} refusals never got their Writable ({round} rounds)"
        );
    }
}
