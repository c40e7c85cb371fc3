//! What the engine tells the application.

use crate::discovery::NodeKey;
use crate::{ListenerId, PeerId};
use bytes::Bytes;
use core::fmt;
use core::net::SocketAddr;
use std::io;

/// Who opened a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// The remote connected to one of our listeners.
    Inbound,
    /// We called `connect`.
    Outbound,
}

/// Why an outbound connect did not produce a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectFailure {
    /// Nobody listens at the address (`ECONNREFUSED`).
    Refused,
    /// `Config::connect_timeout` passed first.
    TimedOut,
    /// The application aborted or disconnected the peer before it connected.
    Aborted,
    /// The engine is shutting down.
    Shutdown,
    /// Any other socket error.
    Io(io::ErrorKind),
    /// TCP connected, and the secure handshake failed (timed out, malformed, the wrong key, a
    /// key not allowed, ...).
    Handshake(crate::HandshakeFailure),
}

impl From<io::ErrorKind> for ConnectFailure {
    fn from(kind: io::ErrorKind) -> Self {
        match kind {
            io::ErrorKind::ConnectionRefused => ConnectFailure::Refused,
            io::ErrorKind::TimedOut => ConnectFailure::TimedOut,
            other => ConnectFailure::Io(other),
        }
    }
}

/// Why a connected peer went away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DisconnectReason {
    /// We called `disconnect`: everything queued was written and the remote closed its side.
    Local,
    /// We called `abort` (queued bytes were dropped and are counted as unsent).
    Aborted,
    /// The remote closed the connection cleanly (after we flushed what was queued).
    Remote,
    /// The connection was reset or failed with this error.
    Io(io::ErrorKind),
    /// No bytes in either direction for `Config::idle_timeout`.
    IdleTimeout,
    /// A graceful close did not complete within `Config::linger_timeout`.
    LingerTimeout,
    /// The remote announced or sent a message longer than `Config::max_frame_size`.
    FrameTooLarge {
        /// The announced (length-prefixed) or accumulated (delimited) length.
        len: u64,
        /// The configured maximum.
        max: u64,
    },
    /// The engine was shut down.
    Shutdown,
    /// The secure channel broke: a transport message failed authentication, was malformed, or
    /// the stream ended inside one. Nothing of the failed message reached the application;
    /// everything before it did.
    Secure(crate::TransportFailure),
    /// The secure handshake failed. Only used inside the engine while a peer handshakes: the
    /// application sees why in [`ConnectFailure::Handshake`] or [`Event::HandshakeFailed`],
    /// never this in `Disconnected`.
    Handshake,
}

impl fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DisconnectReason::Local => f.write_str("closed locally"),
            DisconnectReason::Aborted => f.write_str("aborted locally"),
            DisconnectReason::Remote => f.write_str("closed by the remote"),
            DisconnectReason::Io(kind) => write!(f, "socket error: {kind}"),
            DisconnectReason::IdleTimeout => f.write_str("idle timeout"),
            DisconnectReason::LingerTimeout => f.write_str("graceful close timed out"),
            DisconnectReason::FrameTooLarge { len, max } => {
                write!(f, "frame of {len} bytes exceeds the maximum of {max}")
            }
            DisconnectReason::Shutdown => f.write_str("engine shut down"),
            DisconnectReason::Secure(failure) => write!(f, "secure channel: {failure}"),
            DisconnectReason::Handshake => f.write_str("secure handshake failed"),
        }
    }
}

/// Why an inbound connection was turned away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// `Config::max_peers` peers are already connected or connecting.
    MaxPeers,
    /// `Config::max_peers_per_ip` peers from this address (IPv6: this /64) are already connected.
    MaxPeersPerIp,
    /// The listener id is stale or the listener is closed.
    UnknownListener,
    /// The engine is shutting down.
    ShuttingDown,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Refusal::MaxPeers => "too many peers",
            Refusal::MaxPeersPerIp => "too many peers from this address",
            Refusal::UnknownListener => "unknown listener",
            Refusal::ShuttingDown => "shutting down",
        })
    }
}

impl std::error::Error for Refusal {}

/// Something the application should know. Drain them with
/// [`Engine::poll_event`](crate::Engine::poll_event) after every input.
///
/// Guarantees: every `connect` yields exactly one `Connected` or `ConnectFailed`; every `Connected`
/// peer yields exactly one `Disconnected`, after all of its `Received` events; events of one peer
/// come in the order they happened. The only event that can follow a peer's `Disconnected` or
/// `ConnectFailed` is `SendRefused` with `SendError::UnknownPeer`, handing back a message given to
/// [`Engine::send_or_report`](crate::Engine::send_or_report) after the peer's end.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A listener is bound.
    Listening {
        /// The listener.
        listener: ListenerId,
        /// The bound address (with the real port when port 0 was asked for).
        addr: SocketAddr,
    },
    /// A listener could not be bound, or failed and was closed.
    ListenFailed {
        /// The listener.
        listener: ListenerId,
        /// The address asked for.
        addr: SocketAddr,
        /// The socket error.
        error: io::ErrorKind,
    },
    /// A listener failed to accept (e.g. `EMFILE`); it stays open and the driver retries after a
    /// back-off.
    AcceptFailed {
        /// The listener.
        listener: ListenerId,
        /// The socket error.
        error: io::ErrorKind,
    },
    /// A message given to [`Engine::send_or_report`](crate::Engine::send_or_report) was refused;
    /// nothing of it was queued.
    SendRefused {
        /// The peer it was for.
        peer: PeerId,
        /// Why.
        error: crate::SendError,
        /// The message, handed back.
        data: Bytes,
    },
    /// An inbound connection was refused by a limit; the socket has been dropped.
    Refused {
        /// The listener it arrived on.
        listener: ListenerId,
        /// The remote address.
        addr: SocketAddr,
        /// Which limit refused it.
        reason: Refusal,
    },
    /// A connection is established (for a secure engine: the handshake finished and the
    /// remote's key passed the pin and the allowlist).
    Connected {
        /// The peer.
        peer: PeerId,
        /// The remote address.
        addr: SocketAddr,
        /// Who opened it.
        direction: Direction,
        /// The remote's proven static key (`None` on a plaintext engine).
        key: Option<crate::PeerKey>,
    },
    /// An accepted connection's secure handshake failed: it never became a peer (no
    /// `Connected`), and its slot is free again. For logging; counted in
    /// `GlobalStats::handshake_failures`.
    HandshakeFailed {
        /// The remote address.
        addr: SocketAddr,
        /// What went wrong.
        reason: crate::HandshakeFailure,
    },
    /// An outbound connect failed; the id is dead.
    ConnectFailed {
        /// The peer id `connect` returned.
        peer: PeerId,
        /// The address it tried.
        addr: SocketAddr,
        /// Why.
        reason: ConnectFailure,
        /// Bytes queued by `send` while connecting, never written.
        unsent: u64,
    },
    /// Data arrived: one message in a framed mode, one chunk in `Raw` mode.
    Received {
        /// The sender.
        peer: PeerId,
        /// The payload, without framing. Shares pooled memory: drop it when done so the segment
        /// returns to the pool.
        data: Bytes,
    },
    /// The remote shut down its sending side (`Config::half_close` only): no more `Received`
    /// for this peer; it stays open for sending until `disconnect`.
    ReadClosed {
        /// The peer.
        peer: PeerId,
    },
    /// The socket took this many bytes (framing included) from the peer's queue.
    Sent {
        /// The peer.
        peer: PeerId,
        /// Bytes written by one socket write.
        bytes: usize,
    },
    /// The peer's send queue drained to the low-water mark after a `SendError::QueueFull`.
    Writable {
        /// The peer.
        peer: PeerId,
    },
    /// A connected peer went away; its id is dead.
    Disconnected {
        /// The peer.
        peer: PeerId,
        /// Why.
        reason: DisconnectReason,
        /// Bytes accepted by `send` (framing included) that were never written.
        unsent: u64,
    },
    /// `shutdown` finished: every peer and listener is closed.
    ShutdownComplete,
    /// LAN discovery heard a node for the first time, or heard it at a new address or name.
    Discovered {
        /// The node's identity.
        node: NodeKey,
        /// Where it accepts connections: the beacon's source IP and announced TCP port.
        addr: SocketAddr,
        /// Its announced name.
        name: String,
    },
    /// LAN discovery has not heard from a node within the expiry.
    Lost {
        /// The node's identity.
        node: NodeKey,
        /// Its last known address.
        addr: SocketAddr,
    },
}

impl Event {
    /// The peer this event concerns, if any.
    pub fn peer(&self) -> Option<PeerId> {
        match self {
            Event::Connected { peer, .. }
            | Event::ConnectFailed { peer, .. }
            | Event::Received { peer, .. }
            | Event::Sent { peer, .. }
            | Event::Writable { peer }
            | Event::ReadClosed { peer }
            | Event::SendRefused { peer, .. }
            | Event::Disconnected { peer, .. } => Some(*peer),
            _ => None,
        }
    }
}
