//! The table of peer sockets, indexed by the engine's peer slot.

use crate::{Interest, PeerId};
use mio::net::TcpStream;
use mio::{Poll, Token};
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

/// One peer's socket and what the driver knows about it.
#[derive(Debug)]
pub(crate) struct Conn {
    pub(crate) id: PeerId,
    pub(crate) stream: TcpStream,
    /// A non-blocking connect is in progress.
    pub(crate) connecting: bool,
    /// The poller reported readability and no read has answered `WouldBlock` since.
    pub(crate) readable: bool,
    /// Likewise for writes.
    pub(crate) writable: bool,
    /// The poller reported the remote's EOF (or an error): reads must go on until they return
    /// it, as no further edge will come.
    pub(crate) read_closed: bool,
    /// What the engine wants, from its last `Io::Interest`.
    pub(crate) want: Interest,
    /// In the driver's ready queue (or carried to the next pass).
    pub(crate) queued: bool,
    /// Close with a reset (`SO_LINGER` 0): the application aborted.
    pub(crate) reset_on_close: bool,
}

/// Peer sockets by slot. Slots are reused by the engine; the stored id tells a socket of a
/// stale peer from the current one.
#[derive(Debug)]
pub(crate) struct Conns {
    slots: Vec<Option<Conn>>,
    nodelay: bool,
    keepalive: Option<Duration>,
}

impl Conns {
    pub(crate) fn new(nodelay: bool, keepalive: Option<Duration>) -> Conns {
        Conns {
            slots: Vec::new(),
            nodelay,
            keepalive,
        }
    }

    pub(crate) fn get_mut(&mut self, peer: PeerId) -> Option<&mut Conn> {
        self.slots
            .get_mut(peer.slot())?
            .as_mut()
            .filter(|c| c.id == peer)
    }

    pub(crate) fn by_slot(&mut self, slot: usize) -> Option<&mut Conn> {
        self.slots.get_mut(slot)?.as_mut()
    }

    /// Sets `TCP_NODELAY` and keepalive once the connection is established.
    pub(crate) fn configure(&mut self, peer: PeerId) {
        let (nodelay, keepalive) = (self.nodelay, self.keepalive);
        if let Some(conn) = self.get_mut(peer) {
            crate::socket::configure(&conn.stream, nodelay, keepalive);
        }
    }

    /// Starts a non-blocking connect; the outcome arrives as readiness.
    pub(crate) fn connect(
        &mut self,
        poll: &Poll,
        peer: PeerId,
        addr: SocketAddr,
    ) -> Result<(), io::ErrorKind> {
        let stream = TcpStream::connect(addr).map_err(|e| e.kind())?;
        self.insert(poll, peer, stream, true)
    }

    /// Takes an accepted connection (already established: both directions may be tried at once).
    pub(crate) fn adopt(
        &mut self,
        poll: &Poll,
        peer: PeerId,
        stream: TcpStream,
    ) -> Result<(), io::ErrorKind> {
        crate::socket::configure(&stream, self.nodelay, self.keepalive);
        self.insert(poll, peer, stream, false)
    }

    fn insert(
        &mut self,
        poll: &Poll,
        peer: PeerId,
        mut stream: TcpStream,
        connecting: bool,
    ) -> Result<(), io::ErrorKind> {
        let slot = peer.slot();
        // The engine reused the slot of a peer whose `Io::Close` is still queued: drop the old
        // socket now (the queued close then finds a different id and does nothing).
        if let Some(old) = self.slots.get_mut(slot).and_then(Option::take) {
            drop_socket(poll, old);
        }
        poll.registry()
            .register(
                &mut stream,
                Token(slot),
                mio::Interest::READABLE | mio::Interest::WRITABLE,
            )
            .map_err(|e| e.kind())?;
        if self.slots.len() <= slot {
            self.slots.resize_with(slot + 1, || None);
        }
        self.slots[slot] = Some(Conn {
            id: peer,
            stream,
            connecting,
            readable: !connecting,
            writable: !connecting,
            read_closed: false,
            want: Interest::default(),
            queued: false,
            reset_on_close: false,
        });
        Ok(())
    }

    /// Deregisters and drops a peer's socket (no-op for a stale id).
    pub(crate) fn close(&mut self, poll: &Poll, peer: PeerId) {
        let Some(slot) = self.slots.get_mut(peer.slot()) else {
            return;
        };
        if slot.as_ref().is_some_and(|c| c.id == peer) {
            if let Some(conn) = slot.take() {
                drop_socket(poll, conn);
            }
        }
    }
}

fn drop_socket(poll: &Poll, mut conn: Conn) {
    let _ = poll.registry().deregister(&mut conn.stream);
    if conn.reset_on_close {
        crate::socket::reset_on_close(&conn.stream);
    }
}
