//! Socket work: performing the engine's `Io`, and servicing sockets that reported readiness.

use super::{Driver, ListenerSlot};
use crate::readiness::{Action, Source, Token};
use openp2p_core::{Io, Transfer};
use std::io;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// Reads or writes on one socket per round before other sockets get their turn.
const OPS_PER_TURN: usize = 16;
/// Bytes one peer may write per turn on a `current_thread` runtime; a socket that used up its
/// turn waits for the driver's next poll, after the application's tasks have run.
///
/// Small on purpose (four default segments): a writer that fills its socket faster than the
/// reader takes the data keeps megabytes in flight in socket buffers and receive segments, out
/// of the CPU cache, and turns the connection into one paced by window updates. With a small
/// write turn and a larger read turn, a reader on the same runtime always catches up. Throughput
/// is not capped: a socket that still takes data is serviced again on every poll. Measured
/// (`cargo bench -p openp2p-tokio --bench loopback -- runs=8 only=throughput
/// flavor=current_thread`, medians of 8): 256 KiB 5.6-5.8 GB/s, 512 KiB 6.4-6.6 GB/s at
/// 0.15 ns CPU/B, 1 MiB 3.3 GB/s.
const WRITE_BYTES_PER_TURN: usize = 512 * 1024;
/// Accepts on one listener per round.
const ACCEPTS_PER_TURN: usize = 64;
/// Pause before accepting again after a resource error (out of file descriptors).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

impl Driver {
    /// Performs one `Io` from the engine.
    pub(super) fn perform(&mut self, io: Io, now: Instant) {
        match io {
            Io::Listen { listener, addr } => {
                match crate::socket::bind(addr, self.engine.config()) {
                    Ok(socket) => match socket.local_addr() {
                        Ok(bound) => {
                            let slot = listener.slot();
                            if self.listeners.len() <= slot {
                                self.listeners.resize_with(slot + 1, || None);
                            }
                            let token = Token {
                                slot,
                                serial: listener.serial(),
                                action: Action::Accept,
                            };
                            let accept = Source::new(token, &self.ready);
                            self.listeners[slot] = Some(ListenerSlot {
                                id: listener,
                                listener: socket,
                                accept,
                            });
                            self.next.push(token);
                            self.engine.handle_listening(listener, bound, now);
                        }
                        Err(e) => self.engine.handle_listen_failed(listener, e.kind(), now),
                    },
                    Err(e) => self.engine.handle_listen_failed(listener, e.kind(), now),
                }
            }
            Io::CloseListener { listener } => {
                if let Some(entry) = self.listeners.get_mut(listener.slot()) {
                    if entry.as_ref().is_some_and(|l| l.id == listener) {
                        *entry = None;
                    }
                }
            }
            Io::Connect { peer, addr } => {
                let results = self.connects_tx.clone();
                let task = tokio::spawn(async move {
                    let result = TcpStream::connect(addr).await;
                    // The driver may have stopped meanwhile; the socket is then simply dropped.
                    let _ = results.send((peer, result));
                });
                match self.slot_mut(peer) {
                    Some(slot) => slot.connecting = Some(task.abort_handle()),
                    None => task.abort(),
                }
            }
            Io::Interest { peer, interest } => {
                let next = &mut self.next;
                let Some(slot) = self.peers.get_mut(peer.slot()).and_then(Option::as_mut) else {
                    return;
                };
                let Some(socket) = slot.socket.as_mut().filter(|_| slot.id == peer) else {
                    return;
                };
                let was = socket.interest;
                socket.interest = interest;
                // Readiness may have arrived while the direction was off: try at once.
                let token = |action| Token {
                    slot: peer.slot(),
                    serial: peer.serial(),
                    action,
                };
                if interest.read && !was.read {
                    next.push(token(Action::Read));
                }
                if interest.write && !was.write {
                    next.push(token(Action::Write));
                }
            }
            Io::ShutdownWrite { peer } => {
                let failed = self
                    .slot_mut(peer)
                    .and_then(|slot| slot.socket.as_ref())
                    .and_then(|socket| crate::socket::shutdown_write(&socket.stream).err());
                if let Some(e) = failed {
                    self.engine.handle_error(peer, e.kind(), now);
                }
            }
            Io::Close { peer, announced } => {
                if !announced {
                    // No event will name this id, so the application can never release its
                    // link (a failed inbound handshake): it goes with the socket.
                    self.shared.lock().links.remove(&peer);
                }
                if let Some(entry) = self.peers.get_mut(peer.slot()) {
                    if entry.as_ref().is_some_and(|slot| slot.id == peer) {
                        *entry = None;
                    }
                }
            }
            // A newer engine may ask for operations this driver does not know: ignoring them is
            // the documented safe default (the engine never depends on an unperformed `Io`).
            _ => {}
        }
    }

    /// Tries the operation a readiness token names.
    pub(super) fn service(&mut self, token: Token, now: Instant) {
        match token.action {
            Action::Read | Action::Write => self.transfer(token, now),
            Action::Accept => self.accept(token, now),
        }
    }

    /// Reads or writes until the socket would block, the engine pauses, or the turn is used up.
    fn transfer(&mut self, token: Token, now: Instant) {
        let engine = &mut self.engine;
        let Some(slot) = self.peers.get_mut(token.slot).and_then(Option::as_mut) else {
            return;
        };
        let peer = slot.id;
        if peer.serial() != token.serial {
            return;
        }
        let Some(socket) = slot.socket.as_mut() else {
            return;
        };
        let reading = token.action == Action::Read;
        let source = if reading { &socket.read } else { &socket.write };
        source.state.rearm();
        let mut cx = Context::from_waker(&source.waker);
        let mut written = 0;
        // The send mirror counts application bytes; `Moved` counts wire bytes (more than the
        // application's on a secure peer), so the mirror follows the engine's queue instead.
        let queued_before = if reading {
            0
        } else {
            engine.queued(peer).unwrap_or(0)
        };
        let mut turn_used = true;
        for _ in 0..OPS_PER_TURN {
            let wanted = if reading {
                socket.interest.read
            } else {
                socket.interest.write
            };
            if !wanted {
                return;
            }
            let ready = if reading {
                socket.stream.poll_read_ready(&mut cx)
            } else {
                socket.stream.poll_write_ready(&mut cx)
            };
            match ready {
                Poll::Pending => {
                    turn_used = false;
                    break;
                }
                Poll::Ready(Err(e)) => {
                    engine.handle_error(peer, e.kind(), now);
                    turn_used = false;
                    break;
                }
                Poll::Ready(Ok(())) => {}
            }
            let stream = &socket.stream;
            let moved = if reading {
                // Tokio reads into the segment's spare capacity: nothing to zero first. A short
                // read drained the socket: the turn ends there without a `recv` that would only
                // say `WouldBlock`.
                engine.read_buf_from(peer, now, |buf| read_until_short(stream, buf))
            } else {
                let quota = if self.one_thread {
                    WRITE_BYTES_PER_TURN.saturating_sub(written)
                } else {
                    usize::MAX
                };
                engine.write_at_most(peer, now, quota, |slices| write_slices(stream, slices))
            };
            match moved {
                Transfer::Moved(n) => {
                    written += n;
                    if !reading && self.one_thread && written >= WRITE_BYTES_PER_TURN {
                        break;
                    }
                }
                // WouldBlock cleared Tokio's readiness: the next poll registers the waker.
                Transfer::WouldBlock => {}
                // Paused: an `Io::Interest` turns the direction on again. Closed: `Io::Close`.
                _ => {
                    turn_used = false;
                    break;
                }
            }
        }
        let delivered = if reading {
            0
        } else {
            let after = engine.queued(peer).unwrap_or(0);
            usize::try_from(queued_before.saturating_sub(after)).unwrap_or(usize::MAX)
        };
        if !reading && delivered > 0 && slot.link.written(delivered) {
            self.writable_due.push(peer);
        }
        if turn_used && self.one_thread {
            self.deferred.push(token);
        } else if turn_used {
            self.next.push(token);
        }
    }

    /// Accepts connections and hands them to the engine.
    fn accept(&mut self, token: Token, now: Instant) {
        let Some(listener) = self.listeners.get(token.slot).and_then(Option::as_ref) else {
            return;
        };
        if listener.id.serial() != token.serial {
            return;
        }
        let id = listener.id;
        listener.accept.state.rearm();
        let mut cx = Context::from_waker(&listener.accept.waker);
        let mut accepted = Vec::new();
        let mut again = true;
        let mut failure = None;
        for _ in 0..ACCEPTS_PER_TURN {
            match listener.listener.poll_accept(&mut cx) {
                Poll::Pending => {
                    again = false;
                    break;
                }
                Poll::Ready(Ok(connection)) => accepted.push(connection),
                Poll::Ready(Err(e)) if is_transient(&e) => {}
                Poll::Ready(Err(e)) => {
                    // Out of descriptors or memory: report it, retry later rather than spin.
                    failure = Some(e.kind());
                    again = false;
                    self.accept_retry.push(token);
                    self.accept_retry_at = Some(now + ACCEPT_BACKOFF);
                    break;
                }
            }
        }
        if let Some(error) = failure {
            self.engine.handle_accept_error(id, error, now);
        }
        for (stream, remote) in accepted {
            if let Ok(peer) = self.engine.handle_accepted(id, remote, now) {
                self.add_peer(peer);
                self.attach(peer, stream);
            }
            // Refused: the socket is dropped here; the engine reported `Event::Refused`.
        }
        if again {
            self.next.push(token);
        }
    }
}

/// Accept errors that concern one connection only.
fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}

/// One non-blocking (vectored) write of the slices the engine offers; a single slice goes out
/// with a plain `send`, which is cheaper than `sendmsg`. Neither raises `SIGPIPE` (see
/// [`crate::socket::send_vectored`]).
fn write_slices(stream: &TcpStream, slices: &[io::IoSlice<'_>]) -> io::Result<usize> {
    match slices {
        [one] => stream.try_write(one),
        many => stream.try_io(tokio::io::Interest::WRITABLE, || {
            crate::socket::send_vectored(stream, many)
        }),
    }
}

/// One non-blocking read into `buf`. A read shorter than the room offered drained the socket
/// (readiness is edge-triggered): it clears Tokio's read readiness as Tokio's own `poll_read`
/// does, so the driver waits for the next edge instead of spending a `recv` on `WouldBlock`.
/// The readiness cleared is the one observed before the read, so an edge that arrives meanwhile
/// is kept. The bytes read are appended to `buf` either way; the engine takes them and treats
/// the short read as the end of the turn.
fn read_until_short(
    stream: &TcpStream,
    buf: &mut bytes::buf::Limit<&mut bytes::BytesMut>,
) -> io::Result<usize> {
    use bytes::BufMut;
    let offered = buf.chunk_mut().len();
    stream.try_io(tokio::io::Interest::READABLE, || {
        let n = stream.try_read_buf(buf)?;
        if n > 0 && n < offered {
            Err(io::ErrorKind::WouldBlock.into())
        } else {
            Ok(n)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn the_slices_the_engine_offers_go_out_in_one_write() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let sender = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (mut receiver, _) = listener.accept().await.unwrap();
        sender.writable().await.unwrap();
        // What `Engine::write_at_most` offers with a quota of 5 bytes, then the rest.
        let slices = [io::IoSlice::new(b"abc"), io::IoSlice::new(b"de")];
        assert_eq!(write_slices(&sender, &slices).unwrap(), 5);
        assert_eq!(
            write_slices(&sender, &[io::IoSlice::new(b"hij")]).unwrap(),
            3
        );
        let mut got = [0u8; 8];
        receiver.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"abcdehij");
    }
}
