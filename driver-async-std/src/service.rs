//! Servicing a socket that woke: read or write until the socket or the engine says stop, finish
//! a connect, accept connections. Every engine input is followed by a drain of its outputs.

use crate::driver::Driver;
use crate::recv::recv_into;
use crate::shared::PeerShared;
use crate::socket::PeerIo;
use crate::wake::Token;
use async_io::Async;
use bytes::BufMut;
use openp2p_core::{ListenerId, Transfer};
use std::io::{self, IoSlice, Write};
use std::net::{SocketAddr, TcpStream};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// Socket calls one peer direction may make per turn before others get theirs.
const CALLS_PER_TURN: usize = 8;
/// Bytes one peer may write per turn; the rest waits for the driver's next poll, after the
/// application (and every other task) has had its turn.
///
/// Small on purpose (three default segments): a writer that fills its socket faster than the
/// reader takes the data keeps megabytes in flight in socket buffers and receive segments, out
/// of the CPU cache, and turns the connection into one paced by window updates. With a small
/// write turn and a larger read turn, a reader on the same executor (another peer of this node,
/// or a node zipped with it) always catches up. Throughput is not capped: a socket that still
/// takes data is serviced again on the next poll. Measured on the runner's 1 GiB loopback bulk
/// (`OPENP2P_BENCH_SUBJECTS=openp2p-async-std openp2p-bench --only bulk`, 9-12 runs each, builds
/// alternated): 256 KiB median 5.0-6.0 GB/s; 384 KiB 6.2 GB/s at 0.16 ns CPU/B; 512 KiB falls
/// into the slow mode (3 GB/s, 0.3 ns CPU/B) in most runs; 768 KiB in every run. Each turn
/// costs a `send`, a poller re-arm and a reactor round, so the larger turn that stays clear of
/// that cliff wins.
const WRITE_BYTES_PER_TURN: usize = 384 * 1024;
/// Connections one listener may accept per turn.
const ACCEPTS_PER_TURN: usize = 64;
/// How long a listener that failed to accept (out of descriptors) waits before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

impl Driver {
    pub(crate) fn service_read(&mut self, slot: usize, serial: u64) {
        let Some(p) = self.peer_at(slot, serial) else {
            return;
        };
        if !p.interest.read {
            return;
        }
        let (Some(socket), id) = (p.socket.clone(), p.id) else {
            return;
        };
        let waker = p.read_waker.clone();
        for _ in 0..CALLS_PER_TURN {
            let mut drained = false;
            let moved = self.engine.read_buf_from(id, Instant::now(), |buf| {
                let offered = buf.chunk_mut().len();
                let n = recv_into(socket.get_ref(), buf)?;
                drained = n < offered;
                Ok(n)
            });
            self.flush();
            match moved {
                // A short read emptied the socket: wait for readiness instead of reading again
                // for a `WouldBlock` (re-arming the poller reports data that came meanwhile).
                Transfer::Moved(_) if !drained => {}
                Transfer::Moved(_) | Transfer::WouldBlock => {
                    if socket
                        .poll_readable(&mut Context::from_waker(&waker))
                        .is_pending()
                    {
                        return;
                    }
                }
                Transfer::Paused | Transfer::Closed => return,
            }
        }
        // The turn is used up but the socket may hold more: come back through the reactor (the
        // socket's waker fires once async-io has polled for events), so that the executor runs
        // the application and the reactor first. Only an event already delivered is retried on
        // the next poll directly.
        if socket
            .poll_readable(&mut Context::from_waker(&waker))
            .is_ready()
        {
            self.deferred.push(Token::Read { slot, serial });
        }
    }

    pub(crate) fn service_write(&mut self, slot: usize, serial: u64) {
        let Some(p) = self.peer_at(slot, serial) else {
            return;
        };
        if p.connecting.is_some() {
            return self.service_connect(slot, serial);
        }
        if !p.interest.write {
            return;
        }
        let (Some(socket), id) = (p.socket.clone(), p.id) else {
            return;
        };
        let waker = p.write_waker.clone();
        let mut written = 0;
        for _ in 0..CALLS_PER_TURN {
            let quota = WRITE_BYTES_PER_TURN - written;
            let moved = self
                .engine
                .write_at_most(id, Instant::now(), quota, |slices| {
                    write_slices(socket.get_ref(), slices)
                });
            self.flush();
            match moved {
                Transfer::Moved(n) => {
                    written += n;
                    if written >= WRITE_BYTES_PER_TURN {
                        break;
                    }
                }
                Transfer::WouldBlock => {
                    if socket
                        .poll_writable(&mut Context::from_waker(&waker))
                        .is_pending()
                    {
                        return;
                    }
                }
                Transfer::Paused | Transfer::Closed => return,
            }
        }
        // As for reads: the rest of the turn comes back through the reactor.
        if socket
            .poll_writable(&mut Context::from_waker(&waker))
            .is_ready()
        {
            self.deferred.push(Token::Write { slot, serial });
        }
    }

    fn service_connect(&mut self, slot: usize, serial: u64) {
        let options = self.options;
        let Some(p) = self.peer_at(slot, serial) else {
            return;
        };
        let Some(connecting) = p.connecting.as_mut() else {
            return;
        };
        let waker = p.write_waker.clone();
        let outcome = match connecting.as_mut().poll(&mut Context::from_waker(&waker)) {
            Poll::Pending => return,
            Poll::Ready(outcome) => outcome,
        };
        p.connecting = None;
        let id = p.id;
        let now = Instant::now();
        match outcome {
            Ok(socket) => {
                options.apply(socket.get_ref());
                p.socket = Some(socket.into());
                self.engine.handle_connected(id, now);
            }
            Err(e) => self.engine.handle_connect_failed(id, e.kind(), now),
        }
        self.flush();
    }

    pub(crate) fn service_accept(&mut self, slot: usize, serial: u64) {
        let token = Token::Accept { slot, serial };
        let Some(l) = self.listeners.get(slot).and_then(Option::as_ref) else {
            return;
        };
        if l.id.serial() != serial {
            return;
        }
        let (Some(socket), id) = (l.socket.clone(), l.id) else {
            return;
        };
        let waker = l.waker.clone();
        for _ in 0..ACCEPTS_PER_TURN {
            match socket.get_ref().accept() {
                Ok((stream, remote)) => self.on_accepted(id, stream, remote),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if socket
                        .poll_readable(&mut Context::from_waker(&waker))
                        .is_pending()
                    {
                        return;
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::Interrupted
                            | io::ErrorKind::ConnectionAborted
                            | io::ErrorKind::ConnectionReset
                    ) => {}
                Err(e) => {
                    // Out of descriptors or memory: the listener stays ready, so polling again
                    // would spin. Report it, and retry when a peer closes or after a back-off.
                    let now = Instant::now();
                    self.engine.handle_accept_error(id, e.kind(), now);
                    self.stalled.push(token);
                    self.accept_retry_at.get_or_insert(now + ACCEPT_BACKOFF);
                    self.flush();
                    return;
                }
            }
        }
        self.again.push(token);
    }

    fn on_accepted(&mut self, listener: ListenerId, stream: TcpStream, remote: SocketAddr) {
        let now = Instant::now();
        // A refused connection is dropped here: the engine has already reported `Refused`.
        if let Ok(peer) = self.engine.handle_accepted(listener, remote, now) {
            self.options.apply(&stream);
            match Async::new(stream) {
                Ok(socket) => {
                    let framing = self
                        .engine
                        .peer(peer)
                        .map_or(Default::default(), |p| p.framing);
                    let io = PeerIo::new(PeerShared::new(peer, framing), Some(socket), &self.ready);
                    self.insert_peer(io);
                }
                Err(e) => self.engine.handle_error(peer, e.kind(), now),
            }
        }
        self.flush();
    }
}

/// One (vectored) write of the slices the engine offers; a single slice goes out with a plain
/// `send`, which is cheaper than `sendmsg`. Neither raises `SIGPIPE` (std's `write` passes
/// `MSG_NOSIGNAL`; see [`crate::socket::send_vectored`]).
fn write_slices(socket: &TcpStream, slices: &[IoSlice<'_>]) -> io::Result<usize> {
    let mut socket = socket;
    match slices {
        [one] => socket.write(one),
        many => crate::socket::send_vectored(socket, many),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::TcpListener;

    fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let sender = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (receiver, _) = listener.accept().unwrap();
        (sender, receiver)
    }

    #[test]
    fn the_slices_the_engine_offers_go_out_in_one_write() {
        let (sender, mut receiver) = pair();
        // What `Engine::write_at_most` offers with a quota of 5 bytes, then the rest.
        let slices = [IoSlice::new(b"abc"), IoSlice::new(b"de")];
        assert_eq!(write_slices(&sender, &slices).unwrap(), 5);
        assert_eq!(write_slices(&sender, &[IoSlice::new(b"hij")]).unwrap(), 3);
        let mut got = [0u8; 8];
        receiver.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"abcdehij");
    }
}
