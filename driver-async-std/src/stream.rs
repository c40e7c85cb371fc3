//! A peer as a byte stream: `futures_io::AsyncRead + AsyncWrite`.

use crate::command::Command;
use crate::node::Handle;
use crate::shared::PeerShared;
use async_channel::Receiver;
use bytes::{Buf, Bytes};
use futures_core::Stream;
use futures_io::{AsyncRead, AsyncWrite};
use openp2p_core::{PeerId, SendError};
use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// One peer as a byte stream, from [`Node::stream`](crate::Node::stream).
///
/// Reading yields the peer's received data (payloads without framing, in order), then EOF once
/// the peer has closed cleanly, or the error that closed it (a reset reads as
/// `ConnectionReset`, a failed connect as `ConnectionRefused`, `TimedOut` or its socket error).
///
/// Each write is one [`Node::send`](crate::Node::send) of a copy of the buffer. In a framed mode
/// each write is one message, taken whole or not at all: it waits (returns `Pending`) until the
/// peer's send queue has room for all of it (any message up to `Config::max_frame_size` fits an
/// empty queue), and a buffer over that limit fails with `InvalidInput`. In [`Framing::Raw`] (a
/// plain byte stream) a write takes what fits under the high-water mark and waits while the
/// queue is full. `flush` waits until the socket has taken every byte written; `close`
/// disconnects gracefully and waits for the same. Both fail if the peer ends with bytes still
/// unwritten (the error that ended it, or `BrokenPipe`).
///
/// A stream that falls more than 1 MiB behind pauses its peer's reading (the TCP window then
/// throttles the sender) until it has caught up, so a slow reader holds neither unbounded memory
/// nor the shared receive pool. With `Config::half_close`, the remote's EOF ends the reading side
/// (`read` returns 0) while writing goes on.
///
/// [`Framing::Raw`]: crate::Framing::Raw
///
/// ```no_run
/// use futures_lite::{AsyncReadExt, AsyncWriteExt};
/// use openp2p_async_std::{Config, Node};
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let node = Node::start(Config::default())?;
/// let peer = node.connect("127.0.0.1:7000".parse()?).await?;
/// let mut stream = node.stream(peer)?;
/// stream.write_all(b"ping").await?;
/// let mut reply = [0; 4];
/// stream.read_exact(&mut reply).await?;
/// stream.close().await?;
/// # Ok(()) }
/// ```
pub struct PeerStream {
    handle: Arc<Handle>,
    shared: Arc<PeerShared>,
    data: Pin<Box<Receiver<Bytes>>>,
    chunk: Bytes,
    closing: bool,
}

impl fmt::Debug for PeerStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerStream")
            .field("peer", &self.shared.id)
            .field("buffered", &self.chunk.len())
            .field("closing", &self.closing)
            .finish_non_exhaustive()
    }
}

impl PeerStream {
    pub(crate) fn new(
        handle: Arc<Handle>,
        shared: Arc<PeerShared>,
        data: Receiver<Bytes>,
    ) -> PeerStream {
        PeerStream {
            handle,
            shared,
            data: Box::pin(data),
            chunk: Bytes::new(),
            closing: false,
        }
    }

    /// The peer this stream belongs to.
    pub fn peer(&self) -> PeerId {
        self.shared.id
    }

    /// Ready once the socket has taken every byte written so far; an error once the peer has
    /// ended with some of them unwritten (they are counted in its `unsent`).
    fn poll_drained(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(done) = self.drained() {
            return Poll::Ready(done);
        }
        self.shared.writer.register(cx.waker());
        match self.drained() {
            Some(done) => Poll::Ready(done),
            None => Poll::Pending,
        }
    }

    fn drained(&self) -> Option<io::Result<()>> {
        if self.shared.queued() == 0 {
            return Some(Ok(()));
        }
        if !self.shared.is_closed() {
            return None;
        }
        // A clean end writes everything first, so bytes left over mean the peer failed (or
        // was aborted, or the node stopped).
        Some(Err(match self.shared.end_of_stream() {
            Err(e) => e,
            Ok(_) => io::ErrorKind::BrokenPipe.into(),
        }))
    }
}

impl AsyncRead for PeerStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        loop {
            if !self.chunk.is_empty() {
                let n = buf.len().min(self.chunk.len());
                buf[..n].copy_from_slice(&self.chunk[..n]);
                self.chunk.advance(n);
                if self.shared.consumed(n as u64) {
                    let peer = self.shared.id;
                    self.handle.command(Command::ResumeReading { peer });
                }
                return Poll::Ready(Ok(n));
            }
            match self.data.as_mut().poll_next(cx) {
                Poll::Ready(Some(chunk)) => self.chunk = chunk,
                Poll::Ready(None) => return Poll::Ready(self.shared.end_of_stream()),
                Poll::Pending => return Poll::Pending,
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
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        if self.closing {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        let limits = self.handle.limits;
        for registered in [false, true] {
            let room = self.shared.room(buf.len(), limits);
            if room > 0 {
                let data = Bytes::copy_from_slice(&buf[..room]);
                let len = data.len();
                match self.shared.admit(&data, &self.handle.config) {
                    Ok(credit) => {
                        let peer = self.shared.id;
                        if self.handle.command(Command::Send { peer, data, credit }) {
                            return Poll::Ready(Ok(len));
                        }
                        return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
                    }
                    // Another handle took the room meanwhile: wait like a full queue.
                    Err(SendError::QueueFull { .. }) => {}
                    Err(SendError::FrameTooLarge { .. } | SendError::DelimiterInPayload) => {
                        return Poll::Ready(Err(io::ErrorKind::InvalidInput.into()))
                    }
                    Err(_) => return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())),
                }
            } else if self.shared.is_closed() {
                return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
            }
            if !registered {
                // Register, then look again: the driver may have freed room in between.
                self.shared.writer.register(cx.waker());
            }
        }
        Poll::Pending
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_drained(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.closing {
            self.closing = true;
            self.shared.stop_accepting();
            let peer = self.shared.id;
            self.handle.command(Command::Disconnect { peer });
        }
        self.poll_drained(cx)
    }
}

impl Drop for PeerStream {
    fn drop(&mut self) {
        if self.shared.abandoned() {
            let peer = self.shared.id;
            self.handle.command(Command::ResumeReading { peer });
        }
        self.shared.detach();
    }
}
