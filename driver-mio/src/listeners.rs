//! Listening sockets: bind, accept with a per-pass cap, and back off on resource errors.

use crate::driver::LISTENER_BIT;
use crate::error::BindError;
use crate::stats::DriverStats;
use crate::ListenerId;
use mio::net::{TcpListener, TcpStream};
use mio::{Poll, Token};
use std::io;
use std::net::SocketAddr;
use std::sync::mpsc::SyncSender;
use std::time::{Duration, Instant};

/// Connections accepted per listener per pass before the other sockets get a turn.
const ACCEPTS_PER_PASS: usize = 64;
/// How long a listener stops accepting after a resource error such as `EMFILE`. Accepting again
/// at once would fail again at once: the poller would spin.
pub(crate) const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

#[derive(Debug)]
struct Listening {
    id: ListenerId,
    socket: TcpListener,
    /// Not accepting until then (after a resource error).
    paused_until: Option<Instant>,
}

type BindReply = SyncSender<Result<SocketAddr, BindError>>;

/// What one `accept` call produced.
#[derive(Debug)]
pub(crate) enum Accepted {
    /// A connection from this address.
    Connection(TcpStream, SocketAddr),
    /// A resource error that pauses the listener (reported as `Event::AcceptFailed`).
    Failed(io::ErrorKind),
}

/// Listening sockets by the engine's listener slot.
#[derive(Debug, Default)]
pub(crate) struct Listeners {
    slots: Vec<Option<Listening>>,
    /// `listen` callers waiting for the bind.
    waiting: Vec<(ListenerId, BindReply)>,
    /// Listeners that hit the per-pass cap and may have more connections queued.
    carry: Vec<usize>,
    /// The earliest end of a back-off.
    resume_at: Option<Instant>,
}

impl Listeners {
    /// Remembers who waits for `listener`'s bind.
    pub(crate) fn await_bind(&mut self, listener: ListenerId, reply: BindReply) {
        self.waiting.push((listener, reply));
    }

    /// Binds and registers a listener, answering the caller waiting for it.
    pub(crate) fn open(
        &mut self,
        poll: &Poll,
        id: ListenerId,
        addr: SocketAddr,
        backlog: u32,
    ) -> Result<SocketAddr, io::ErrorKind> {
        let result = self.bind(poll, id, addr, backlog);
        if let Some(i) = self.waiting.iter().position(|(l, _)| *l == id) {
            let (_, reply) = self.waiting.swap_remove(i);
            let _ = reply.try_send(result.map_err(|kind| BindError::Io { addr, kind }));
        }
        result
    }

    fn bind(
        &mut self,
        poll: &Poll,
        id: ListenerId,
        addr: SocketAddr,
        backlog: u32,
    ) -> Result<SocketAddr, io::ErrorKind> {
        let mut socket = crate::socket::bind(addr, backlog).map_err(|e| e.kind())?;
        let bound = socket.local_addr().map_err(|e| e.kind())?;
        let slot = id.slot();
        poll.registry()
            .register(
                &mut socket,
                Token(LISTENER_BIT | slot),
                mio::Interest::READABLE,
            )
            .map_err(|e| e.kind())?;
        if self.slots.len() <= slot {
            self.slots.resize_with(slot + 1, || None);
        }
        if let Some(mut old) = self.slots[slot].replace(Listening {
            id,
            socket,
            paused_until: None,
        }) {
            let _ = poll.registry().deregister(&mut old.socket);
        }
        Ok(bound)
    }

    /// Stops and drops a listener (no-op for a stale id).
    pub(crate) fn close(&mut self, poll: &Poll, id: ListenerId) {
        let Some(slot) = self.slots.get_mut(id.slot()) else {
            return;
        };
        if slot.as_ref().is_some_and(|l| l.id == id) {
            if let Some(mut l) = slot.take() {
                let _ = poll.registry().deregister(&mut l.socket);
            }
        }
    }

    /// Accepts until `WouldBlock`, the per-pass cap or a resource error, handing each connection
    /// (or the error that starts a back-off) to `handle`.
    pub(crate) fn accept<F>(
        &mut self,
        slot: usize,
        now: Instant,
        stats: &mut DriverStats,
        mut handle: F,
    ) where
        F: FnMut(ListenerId, Accepted),
    {
        let Some(Some(l)) = self.slots.get_mut(slot) else {
            return;
        };
        if l.paused_until.is_some() {
            return;
        }
        for _ in 0..ACCEPTS_PER_PASS {
            match l.socket.accept() {
                Ok((stream, remote)) => handle(l.id, Accepted::Connection(stream, remote)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // The remote gave up while queued: that connection is gone, the next may not be.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
                    ) =>
                {
                    stats.accept_errors += 1;
                }
                Err(e) => {
                    // EMFILE, ENFILE, ENOBUFS, ENOMEM, ...: retrying now would fail now.
                    handle(l.id, Accepted::Failed(e.kind()));
                    stats.accept_errors += 1;
                    stats.accept_backoffs += 1;
                    let until = now + ACCEPT_BACKOFF;
                    l.paused_until = Some(until);
                    self.resume_at = Some(self.resume_at.map_or(until, |at| at.min(until)));
                    return;
                }
            }
        }
        if !self.carry.contains(&slot) {
            self.carry.push(slot);
        }
    }

    /// Whether a listener has connections left over from the last pass.
    pub(crate) fn has_carry(&self) -> bool {
        !self.carry.is_empty()
    }

    /// When the earliest back-off ends.
    pub(crate) fn retry_at(&self) -> Option<Instant> {
        self.resume_at
    }

    /// Listener slots to accept on now: those carried over, and those whose back-off ended.
    /// Empty (no allocation) in the common case.
    pub(crate) fn due(&mut self, now: Instant) -> Vec<usize> {
        let mut due = std::mem::take(&mut self.carry);
        if self.resume_at.is_some_and(|at| at <= now) {
            self.resume_at = None;
            for (slot, l) in self.slots.iter_mut().enumerate() {
                let Some(l) = l else { continue };
                match l.paused_until {
                    Some(until) if until <= now => {
                        l.paused_until = None;
                        due.push(slot);
                    }
                    Some(until) => {
                        self.resume_at = Some(self.resume_at.map_or(until, |at| at.min(until)));
                    }
                    None => {}
                }
            }
        }
        due
    }
}
