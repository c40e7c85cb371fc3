//! One peer's state shared by the driver, the [`Node`](crate::Node) handles and the peer's
//! stream: its received-data buffer (once the stream is taken) and a mirror of its send queue.
//!
//! The mirror lets `Node::send` and stream writes answer at once, without a round trip to the
//! driver: it counts the bytes accepted for the peer and not yet taken by the socket, which is
//! never less than what the engine has queued (bytes are counted before the engine sees them and
//! uncounted by as much as the engine's queue (`Engine::queued`) shrank in a write turn: for a
//! secure peer the socket's wire bytes are more than the application's), so applying the engine's own admission rule
//! ([`Config::admit`]) to it never accepts what the engine would refuse for queue space.

use bytes::Bytes;
use openp2p_core::{Config, ConnectFailure, DisconnectReason, Framing, PeerId, SendError};
use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;

/// How a peer's connection ended, as its stream reports it.
#[derive(Debug, Clone)]
pub(crate) enum End {
    /// A clean close: reads return EOF.
    Clean,
    /// Reads return this error once buffered data is consumed.
    Failed(io::ErrorKind, String),
}

#[derive(Debug, Default)]
pub(crate) struct LinkState {
    /// The application took the stream: received data goes here, not to the event queue.
    pub(crate) taken: bool,
    pub(crate) inbound: VecDeque<Bytes>,
    pub(crate) inbound_bytes: usize,
    pub(crate) reader: Option<Waker>,
    /// The remote shut down its sending side (half-close): reads end after `inbound`.
    pub(crate) read_closed: bool,
    /// The driver paused reading this peer because `inbound` is full.
    pub(crate) read_paused: bool,
    /// Bytes of this peer's `Received` events waiting in the node's event queue.
    pub(crate) event_bytes: usize,
    /// The driver paused reading this peer because `event_bytes` passed `inbound_high`: the
    /// application takes events slower than the socket delivers (resumed at a quarter of it).
    pub(crate) events_paused: bool,
    /// The stream was dropped: received data is discarded.
    pub(crate) discard: bool,
    /// Bytes (framing included) accepted for this peer and not yet taken by the socket.
    pub(crate) queued: u64,
    pub(crate) writer: Option<Waker>,
    /// A send was refused for queue space: emit `Writable` at the low-water mark.
    pub(crate) want_writable: bool,
    /// No more sends: the application disconnected, or the engine refused data (closing).
    pub(crate) write_closed: bool,
    /// The engine refused bytes the stream had accepted: its `poll_flush` fails from now on.
    pub(crate) stream_write_refused: bool,
    pub(crate) end: Option<End>,
}

/// One peer's shared state.
#[derive(Debug)]
pub(crate) struct PeerLink {
    pub(crate) peer: PeerId,
    pub(crate) framing: Framing,
    pub(crate) config: Arc<Config>,
    /// Buffered received bytes past which the driver stops reading the peer.
    pub(crate) inbound_high: usize,
    state: Mutex<LinkState>,
}

impl PeerLink {
    pub(crate) fn new(peer: PeerId, framing: Framing, config: Arc<Config>) -> Self {
        let inbound_high = (4 * config.segment_size).max(1 << 20);
        PeerLink {
            peer,
            framing,
            config,
            inbound_high,
            state: Mutex::new(LinkState::default()),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, LinkState> {
        // Every critical section leaves the state consistent, so a poisoned lock is still usable.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Admits a message for sending (`Node::send`): the engine's rule applied to the mirror.
    /// On `Ok` the message is counted and must be handed to the driver.
    pub(crate) fn admit(&self, data: &[u8]) -> Result<(), SendError> {
        let mut state = self.lock();
        if state.end.is_some() {
            return Err(SendError::UnknownPeer);
        }
        if state.write_closed {
            return Err(SendError::Closing);
        }
        match self.config.admit(self.framing, data, state.queued) {
            Ok(len) => {
                state.queued += len;
                Ok(())
            }
            Err(e) => {
                if matches!(e, SendError::QueueFull { .. }) {
                    state.want_writable = true;
                }
                Err(e)
            }
        }
    }

    /// The engine's queue for the peer shrank by `n` application bytes in a write turn. True if
    /// a `Writable` event is due.
    pub(crate) fn written(&self, n: usize) -> bool {
        let mut state = self.lock();
        state.queued = state.queued.saturating_sub(n as u64);
        if let Some(writer) = state.writer.take() {
            writer.wake();
        }
        let writable =
            state.want_writable && state.queued <= self.config.send_queue_low_water as u64;
        if writable {
            state.want_writable = false;
        }
        writable
    }

    /// The engine refused a counted message (`Node::send`): give its count back; unless the
    /// refusal was for space, the peer no longer takes sends.
    pub(crate) fn refund(&self, payload: usize, error: SendError) {
        if matches!(error, SendError::QueueFull { .. }) {
            let mut state = self.lock();
            state.queued = state
                .queued
                .saturating_sub(self.framing.framed_len(payload));
        } else {
            self.refused(payload, false);
        }
    }

    /// The engine refused a counted message of `payload` bytes: the peer no longer takes sends.
    /// `from_stream`: the stream had accepted it (`poll_write` said `Ok`), so nobody else can
    /// report it: the stream's `poll_flush` fails instead of reporting it delivered.
    pub(crate) fn refused(&self, payload: usize, from_stream: bool) {
        let mut state = self.lock();
        state.queued = state
            .queued
            .saturating_sub(self.framing.framed_len(payload));
        state.write_closed = true;
        state.stream_write_refused |= from_stream;
        if let Some(writer) = state.writer.take() {
            writer.wake();
        }
    }

    /// The application disconnected or aborted: sends fail from now on.
    pub(crate) fn close_writes(&self) {
        let mut state = self.lock();
        state.write_closed = true;
        if let Some(writer) = state.writer.take() {
            writer.wake();
        }
    }

    /// The stream was dropped: forget buffered data and discard what arrives later.
    pub(crate) fn discard_reads(&self) {
        let mut state = self.lock();
        state.discard = true;
        state.inbound.clear();
        state.inbound_bytes = 0;
    }

    /// Received data for the stream's reader. True if the driver should pause reading.
    pub(crate) fn push_received(&self, state: &mut LinkState, data: Bytes) -> bool {
        if state.discard {
            return false;
        }
        state.inbound_bytes += data.len();
        if !data.is_empty() {
            state.inbound.push_back(data);
        }
        if let Some(reader) = state.reader.take() {
            reader.wake();
        }
        let pause = !state.read_paused && state.inbound_bytes > self.inbound_high;
        state.read_paused |= pause;
        pause
    }

    /// The remote shut down its sending side.
    pub(crate) fn read_closed(state: &mut LinkState) {
        state.read_closed = true;
        if let Some(reader) = state.reader.take() {
            reader.wake();
        }
    }

    /// The peer is gone; readers see EOF (clean close) or an error after the buffered data.
    pub(crate) fn disconnected(&self, reason: DisconnectReason) {
        let failed = |kind| End::Failed(kind, reason.to_string());
        let end = match reason {
            DisconnectReason::Local | DisconnectReason::Remote | DisconnectReason::Shutdown => {
                End::Clean
            }
            DisconnectReason::Aborted => failed(io::ErrorKind::ConnectionAborted),
            DisconnectReason::Io(kind) => failed(kind),
            DisconnectReason::IdleTimeout | DisconnectReason::LingerTimeout => {
                failed(io::ErrorKind::TimedOut)
            }
            _ => failed(io::ErrorKind::InvalidData),
        };
        self.end(end);
    }

    /// The peer never connected.
    pub(crate) fn connect_failed(&self, reason: ConnectFailure) {
        let kind = match reason {
            ConnectFailure::Refused => io::ErrorKind::ConnectionRefused,
            ConnectFailure::TimedOut => io::ErrorKind::TimedOut,
            ConnectFailure::Aborted => io::ErrorKind::ConnectionAborted,
            ConnectFailure::Io(kind) => kind,
            _ => io::ErrorKind::NotConnected,
        };
        self.end(End::Failed(kind, format!("connect failed: {reason:?}")));
    }

    fn end(&self, end: End) {
        let mut state = self.lock();
        // The first end reported is the true one (shutdown closes every link again).
        state.end.get_or_insert(end);
        state.write_closed = true;
        if let Some(reader) = state.reader.take() {
            reader.wake();
        }
        if let Some(writer) = state.writer.take() {
            writer.wake();
        }
    }
}
