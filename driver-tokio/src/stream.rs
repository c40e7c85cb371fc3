//! Per-peer byte streams: [`PeerStream`] implements Tokio's `AsyncRead + AsyncWrite` on top of
//! the node's engine.
//!
//! The driver hands a peer's received data to its [`PeerChannel`] once the application has taken
//! the stream; writes travel to the driver as commands (one copy, from the caller's buffer into a
//! `Bytes`) and are queued in the engine like `Node::send`, so the peer's rate limits apply. The
//! stream keeps at most the engine's send-queue high-water mark in flight: past it, `poll_write`
//! waits until the socket has taken bytes, so a rate-limited peer's writer is paced by its limit.

use crate::command::Command;
use bytes::{Buf, Bytes};
use openp2p_core::{ConnectFailure, DisconnectReason, Framing, PeerId};
use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::mpsc::UnboundedSender;

/// Largest payload one stream write hands to the engine.
const MAX_WRITE: usize = 256 * 1024;

/// How a peer's connection ended, as its stream reports it.
#[derive(Debug, Clone)]
enum End {
    /// A clean close: reads return EOF.
    Clean,
    /// Reads return this error once buffered data is consumed.
    Failed(io::ErrorKind, String),
}

#[derive(Debug, Default)]
pub(crate) struct ChannelState {
    /// The application took the stream: received data goes here, not to the event queue.
    pub(crate) taken: bool,
    inbound: VecDeque<Bytes>,
    reader: Option<Waker>,
    /// Stream bytes (framing included) sent to the driver and not yet taken by the socket.
    in_flight: u64,
    writer: Option<Waker>,
    /// The engine refused stream data (the peer is closing): writes fail from now on.
    write_closed: bool,
    end: Option<End>,
}

/// The driver's side of one peer's stream.
#[derive(Debug)]
pub(crate) struct PeerChannel {
    peer: PeerId,
    framing: Framing,
    /// In-flight bytes past which writes wait.
    window: u64,
    max_write: usize,
    state: Mutex<ChannelState>,
}

impl PeerChannel {
    pub(crate) fn new(peer: PeerId, framing: Framing, window: usize, max_frame: usize) -> Self {
        PeerChannel {
            peer,
            framing,
            window: window as u64,
            max_write: MAX_WRITE.min(max_frame).max(1),
            state: Mutex::new(ChannelState::default()),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, ChannelState> {
        // Every critical section leaves the state consistent, so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Received data for the stream's reader.
    pub(crate) fn push_received(state: &mut ChannelState, data: Bytes) {
        if !data.is_empty() {
            state.inbound.push_back(data);
        }
        if let Some(reader) = state.reader.take() {
            reader.wake();
        }
    }

    /// The socket took `bytes` of this peer's queue.
    pub(crate) fn sent(&self, bytes: usize) {
        let mut state = self.lock();
        state.in_flight = state.in_flight.saturating_sub(bytes as u64);
        if let Some(writer) = state.writer.take() {
            writer.wake();
        }
    }

    /// The engine refused stream data: the peer no longer accepts sends.
    pub(crate) fn close_writes(&self) {
        let mut state = self.lock();
        state.write_closed = true;
        state.in_flight = 0;
        if let Some(writer) = state.writer.take() {
            writer.wake();
        }
    }

    /// The peer is gone; readers see EOF (clean close) or an error after the buffered data.
    pub(crate) fn disconnected(&self, reason: DisconnectReason) {
        let end = match reason {
            DisconnectReason::Local | DisconnectReason::Remote | DisconnectReason::Shutdown => {
                End::Clean
            }
            DisconnectReason::Aborted => End::Failed(io::ErrorKind::ConnectionAborted, reason.to_string()),
            DisconnectReason::Io(kind) => End::Failed(kind, reason.to_string()),
            DisconnectReason::IdleTimeout | DisconnectReason::LingerTimeout => {
                End::Failed(io::ErrorKind::TimedOut, reason.to_string())
            }
            other => End::Failed(io::ErrorKind::InvalidData, other.to_string()),
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
        // The first end reported is the true one (shutdown closes every channel again).
        state.end.get_or_insert(end);
        if let Some(reader) = state.reader.take() {
            reader.wake();
        }
        if let Some(writer) = state.writer.take() {
            writer.wake();
        }
    }

    /// Bytes the engine adds around a payload of this peer's framing.
    fn overhead(&self) -> u64 {
        match self.framing {
            Framing::LengthPrefixed => 4,
            Framing::Delimited(_) => 1,
            _ => 0,
        }
    }
}

/// One peer's connection as a Tokio `AsyncRead + AsyncWrite` byte stream.
///
/// Get it with [`Node::stream`](crate::Node::stream). From then on every chunk received from the
/// peer is read from the stream instead of arriving as [`Event::Received`](crate::Event::Received);
/// the other events of the peer (`Sent`, `Disconnected`, ...) still go to the event queue. Writes
/// are queued in the engine like [`Node::send`](crate::Node::send) and obey the peer's upload
/// limit: `poll_write` waits while the engine's send-queue high-water mark worth of bytes is in
/// flight. `poll_flush` waits until the socket took everything written through the stream.
///
/// Reads return EOF after a clean close (the remote closed, or `disconnect`), or an error
/// (`ConnectionReset`, `ConnectionAborted`, `TimedOut`, ...) after an abnormal one, once the data
/// received before it has been read. `poll_shutdown` starts a graceful disconnect (flush, FIN,
/// wait for the remote to close); dropping the stream does the same.
///
/// The stream is made for [`Framing::Raw`] peers. With a framed peer each write becomes one
/// message and reads return the payloads back to back (framing removed); in `Delimited` framing
/// a write containing the delimiter fails with `InvalidInput`.
///
/// Note: the engine treats the remote's EOF as the end of the conversation: after it, the peer
/// flushes what is queued and closes, and later writes fail with `BrokenPipe`.
pub struct PeerStream {
    channel: Arc<PeerChannel>,
    commands: UnboundedSender<Command>,
    shut_down: bool,
}

impl fmt::Debug for PeerStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerStream").field("peer", &self.channel.peer).finish_non_exhaustive()
    }
}

impl PeerStream {
    pub(crate) fn new(channel: Arc<PeerChannel>, commands: UnboundedSender<Command>) -> Self {
        PeerStream { channel, commands, shut_down: false }
    }

    /// The peer this stream belongs to.
    pub fn peer(&self) -> PeerId {
        self.channel.peer
    }

    fn broken_pipe() -> io::Error {
        io::Error::new(io::ErrorKind::BrokenPipe, "the peer no longer accepts data")
    }
}

impl AsyncRead for PeerStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let mut state = self.channel.lock();
        let mut copied = 0;
        while buf.remaining() > 0 {
            let Some(front) = state.inbound.front_mut() else { break };
            let n = front.len().min(buf.remaining());
            buf.put_slice(&front[..n]);
            front.advance(n);
            if front.is_empty() {
                state.inbound.pop_front();
            }
            copied += n;
        }
        if copied > 0 || buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        match &state.end {
            Some(End::Clean) => Poll::Ready(Ok(())),
            Some(End::Failed(kind, message)) => {
                Poll::Ready(Err(io::Error::new(*kind, message.clone())))
            }
            None => {
                state.reader = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

impl AsyncWrite for PeerStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.shut_down {
            return Poll::Ready(Err(Self::broken_pipe()));
        }
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let channel = &self.channel;
        let overhead = channel.overhead();
        let mut state = channel.lock();
        if state.write_closed || state.end.is_some() {
            return Poll::Ready(Err(Self::broken_pipe()));
        }
        let room = channel.window.saturating_sub(state.in_flight);
        // An empty queue always takes one write (as the engine always takes one message).
        let room = if state.in_flight == 0 { room.max(overhead + 1) } else { room };
        if room <= overhead {
            state.writer = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let n = buf.len().min(channel.max_write).min((room - overhead) as usize);
        let data = &buf[..n];
        if let Framing::Delimited(d) = channel.framing {
            if data.contains(&d) {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "the data contains the peer's frame delimiter",
                )));
            }
        }
        state.in_flight += n as u64 + overhead;
        drop(state);
        let command = Command::StreamWrite { peer: channel.peer, data: Bytes::copy_from_slice(data) };
        if self.commands.send(command).is_err() {
            return Poll::Ready(Err(Self::broken_pipe()));
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut state = self.channel.lock();
        if state.in_flight == 0 {
            return Poll::Ready(Ok(()));
        }
        if state.write_closed || state.end.is_some() {
            return Poll::Ready(Err(Self::broken_pipe()));
        }
        state.writer = Some(cx.waker().clone());
        Poll::Pending
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.shut_down {
            self.shut_down = true;
            // The driver disconnects gracefully once the stream's writes are queued; a driver
            // that is gone has closed the peer already.
            let _ = self.commands.send(Command::StreamClosed { peer: self.channel.peer });
        }
        Poll::Ready(Ok(()))
    }
}

impl Drop for PeerStream {
    fn drop(&mut self) {
        if !self.shut_down {
            let _ = self.commands.send(Command::StreamClosed { peer: self.channel.peer });
        }
    }
}
