//! What the engine asks its driver to do.

use crate::{ListenerId, PeerId};
use core::net::SocketAddr;

/// Which socket operations the engine wants for one peer now.
///
/// When a direction turns on, the driver must attempt that operation promptly even if it saw no new
/// readiness: readiness may have arrived while the direction was off (edge-triggered pollers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Interest {
    /// Call [`Engine::read_from`](crate::Engine::read_from) when the socket is readable.
    pub read: bool,
    /// Call [`Engine::write_to`](crate::Engine::write_to) when the socket is writable.
    pub write: bool,
}

/// A socket operation for the driver. Drain them with
/// [`Engine::poll_io`](crate::Engine::poll_io) after every input.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Io {
    /// Bind and listen on `addr`; report `handle_listening` or `handle_listen_failed`.
    Listen {
        /// The listener id to report back.
        listener: ListenerId,
        /// Where to bind.
        addr: SocketAddr,
    },
    /// Close the listening socket; no report is expected.
    CloseListener {
        /// The listener.
        listener: ListenerId,
    },
    /// Open a non-blocking connection; report `handle_connected` or `handle_connect_failed`.
    Connect {
        /// The peer id to report back.
        peer: PeerId,
        /// Where to connect.
        addr: SocketAddr,
    },
    /// The wanted operations for a peer changed.
    Interest {
        /// The peer.
        peer: PeerId,
        /// What is wanted now.
        interest: Interest,
    },
    /// Everything queued has been written: shut down the write half (send FIN) and keep reading
    /// until EOF.
    ShutdownWrite {
        /// The peer.
        peer: PeerId,
    },
    /// Drop the socket. The peer id is dead; the engine has already emitted its event.
    Close {
        /// The peer.
        peer: PeerId,
        /// Whether the application ever learnt this id (from `connect`, or an event naming it).
        /// `false` for an accepted connection whose secure handshake failed: no event names it
        /// (only [`Event::HandshakeFailed`](crate::Event::HandshakeFailed), by address), so
        /// whatever a driver keeps for the id for the application's sake goes now.
        announced: bool,
    },
}

/// What a [`read_from`](crate::Engine::read_from) or [`write_to`](crate::Engine::write_to) call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transfer {
    /// This many bytes moved (0 after `EINTR`); call again.
    Moved(usize),
    /// The socket answered `WouldBlock`: wait for readiness.
    WouldBlock,
    /// The engine does not want this operation now (budget, pool, empty queue, state); wait for an
    /// [`Io::Interest`] that turns it on.
    Paused,
    /// The peer is gone or going (stale id, EOF, error); stop and drain `poll_io`.
    Closed,
}
