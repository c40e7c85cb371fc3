//! Per-peer byte streams: [`PeerStream`] implements Tokio's `AsyncRead + AsyncWrite` on top of
//! the node's engine.
//!
//! The driver hands a peer's received data to its [`PeerLink`] once the application has taken
//! the stream; writes travel to the driver as send commands (one copy, from the caller's buffer
//! into a `Bytes`) and are queued in the engine like `Node::send`, so the peer's rate limits
//! apply. A write is admitted against the peer's send-queue mirror: past the high-water mark,
//! `poll_write` waits until the socket has taken bytes, so a rate-limited peer's writer is paced
//! by its limit. A reader that falls behind by more than a few segments pauses reading from the
//! socket (TCP's window then slows the remote) until it catches up.

use crate::channel::{End, PeerLink};
use crate::command::Command;
use bytes::{Buf, BytesMut};
use openp2p_core::{PeerId, SendError};
use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::mpsc::UnboundedSender;

/// Largest payload one stream write hands to the engine.
const MAX_WRITE: usize = 256 * 1024;
/// Size of the staging allocation small writes share.
const STAGING: usize = 64 * 1024;

/// One peer's connection as a Tokio `AsyncRead + AsyncWrite` byte stream.
///
/// Get it with [`Node::stream`](crate::Node::stream). From then on every chunk received from the
/// peer is read from the stream instead of arriving as [`Event::Received`](crate::Event::Received)
/// (and the remote's half-close as EOF instead of [`Event::ReadClosed`](crate::Event::ReadClosed)),
/// and the socket's progress is reported by `poll_flush` instead of
/// [`Event::Sent`](crate::Event::Sent); the peer's other events (`Connected`, `Writable`,
/// `Disconnected`, ...) still go to the event queue. Writes are queued in the engine like
/// [`Node::send`](crate::Node::send) and obey the peer's upload limit: `poll_write` waits while
/// the send queue is at its high-water mark (`Config::send_queue_high_water`). `poll_flush`
/// waits until the socket took everything queued for the peer (also after `disconnect` or
/// `shutdown`, which still deliver it); it fails with `BrokenPipe` if the peer ended first, or
/// if the peer started closing before a write it had accepted reached the engine (those bytes
/// were dropped: nothing else reports them). A reader more than
/// `max(4 segments, 1 MiB)` behind pauses reading from the socket until it catches up.
///
/// Reads return EOF after a clean close (the remote closed, or `disconnect`), or an error
/// (`ConnectionReset`, `ConnectionAborted`, `TimedOut`, ...) after an abnormal one, once the data
/// received before it has been read. `poll_shutdown` starts a graceful disconnect (flush, FIN,
/// wait for the remote to close); dropping the stream does the same.
///
/// The stream is made for [`Framing::Raw`](crate::Framing::Raw) peers. With a framed peer each write becomes one
/// message and reads return the payloads back to back (framing removed); in `Delimited` framing
/// a write containing the delimiter fails with `InvalidInput`.
///
/// With `Config::half_close` the remote's EOF ends the reads only, and the stream can go on
/// writing until it is shut down (what an echo service wants). Without it, the remote's EOF is
/// the end of the conversation: the peer flushes what is queued and closes, and later writes
/// fail with `BrokenPipe`.
pub struct PeerStream {
    link: Arc<PeerLink>,
    commands: UnboundedSender<Command>,
    /// Written bytes are copied here and split off as `Bytes`: one allocation serves many small
    /// writes (it is reclaimed in place once the driver has dropped every piece).
    staging: BytesMut,
    shut_down: bool,
}

impl fmt::Debug for PeerStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerStream")
            .field("peer", &self.link.peer)
            .finish_non_exhaustive()
    }
}

impl PeerStream {
    pub(crate) fn new(link: Arc<PeerLink>, commands: UnboundedSender<Command>) -> Self {
        PeerStream {
            link,
            commands,
            staging: BytesMut::new(),
            shut_down: false,
        }
    }

    /// The peer this stream belongs to.
    pub fn peer(&self) -> PeerId {
        self.link.peer
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
        let link = &self.link;
        let mut state = link.lock();
        let mut copied = 0;
        while buf.remaining() > 0 {
            let Some(front) = state.inbound.front_mut() else {
                break;
            };
            let n = front.len().min(buf.remaining());
            buf.put_slice(&front[..n]);
            front.advance(n);
            if front.is_empty() {
                state.inbound.pop_front();
            }
            copied += n;
        }
        state.inbound_bytes -= copied;
        if state.read_paused && state.inbound_bytes <= link.inbound_high / 4 {
            state.read_paused = false;
            // A stopped driver reads nothing anyway.
            let _ = self
                .commands
                .send(Command::ResumeReading { peer: link.peer });
        }
        if copied > 0 || buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        if state.read_closed {
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
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.shut_down {
            return Poll::Ready(Err(Self::broken_pipe()));
        }
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let link = &self.link;
        let mut state = link.lock();
        if state.write_closed || state.end.is_some() {
            return Poll::Ready(Err(Self::broken_pipe()));
        }
        let max_write = MAX_WRITE.min(link.config.max_frame_size).max(1);
        let high = link.config.send_queue_high_water as u64;
        let overhead = link.framing.framed_len(0);
        // The engine takes any message into an empty queue, and fills a queue up to its mark.
        let n = if state.queued == 0 {
            buf.len().min(max_write)
        } else {
            let room = high.saturating_sub(state.queued + overhead);
            buf.len()
                .min(max_write)
                .min(usize::try_from(room).unwrap_or(usize::MAX))
        };
        if n == 0 {
            state.writer = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let data = &buf[..n];
        match link.config.admit(link.framing, data, state.queued) {
            Ok(len) => state.queued += len,
            Err(SendError::DelimiterInPayload) => {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "the data contains the peer's frame delimiter",
                )))
            }
            Err(e) => return Poll::Ready(Err(io::Error::other(e))),
        }
        drop(state);
        if self.staging.capacity() < n {
            self.staging.reserve(n.max(STAGING));
        }
        self.staging.extend_from_slice(data);
        let data = self.staging.split().freeze();
        let command = Command::Send {
            peer: self.link.peer,
            data,
            from_stream: true,
        };
        if self.commands.send(command).is_err() {
            return Poll::Ready(Err(Self::broken_pipe()));
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut state = self.link.lock();
        if state.stream_write_refused {
            // Bytes `poll_write` accepted were refused (the peer started closing meanwhile).
            return Poll::Ready(Err(Self::broken_pipe()));
        }
        if state.queued == 0 {
            return Poll::Ready(Ok(()));
        }
        // A closed sending side (`disconnect`, `shutdown`) still flushes what was queued: wait
        // for it, unless the peer is gone.
        if state.end.is_some() {
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
            let _ = self.commands.send(Command::StreamClosed {
                peer: self.link.peer,
            });
        }
        Poll::Ready(Ok(()))
    }
}

impl Drop for PeerStream {
    fn drop(&mut self) {
        // Nobody reads this peer any more: drop what is buffered and what still arrives (the
        // graceful close reads until the remote's EOF), and never pause reading for it.
        self.link.discard_reads();
        if !self.shut_down {
            self.link.close_writes();
        }
        let _ = self.commands.send(Command::StreamClosed {
            peer: self.link.peer,
        });
    }
}
