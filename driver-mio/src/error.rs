//! One error type per handle operation.

use crate::{ConfigError, ConnectError, ConnectFailure, SendError};
use core::fmt;
use std::io;
use std::net::SocketAddr;

/// Why [`Node::start`](crate::Node::start) failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum StartError {
    /// The configuration was rejected by the engine.
    Config(ConfigError),
    /// The poller, its waker or the IO thread could not be created.
    Io(io::Error),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Config(e) => write!(f, "invalid configuration: {e}"),
            StartError::Io(e) => write!(f, "cannot start the IO thread: {e}"),
        }
    }
}

impl std::error::Error for StartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StartError::Config(e) => Some(e),
            StartError::Io(e) => Some(e),
        }
    }
}

/// The node's IO thread has stopped (after [`Node::shutdown`](crate::Node::shutdown), or when
/// every handle was dropped): the command was not carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped;

impl fmt::Display for Stopped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the node has stopped")
    }
}

impl std::error::Error for Stopped {}

/// Why [`Node::listen`](crate::Node::listen) did not produce a listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BindError {
    /// The node is shutting down.
    ShuttingDown,
    /// The socket could not be created, bound or put to listening.
    Io {
        /// The address asked for.
        addr: SocketAddr,
        /// The socket error (`AddrInUse`, `AddrNotAvailable`, `PermissionDenied`, ...).
        kind: io::ErrorKind,
    },
    /// The node has stopped.
    Stopped,
}

impl fmt::Display for BindError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BindError::ShuttingDown => f.write_str("the node is shutting down"),
            BindError::Io { addr, kind } => write!(f, "cannot listen on {addr}: {kind}"),
            BindError::Stopped => Stopped.fmt(f),
        }
    }
}

impl std::error::Error for BindError {}

/// Why [`Node::connect`](crate::Node::connect) or
/// [`Node::connect_wait`](crate::Node::connect_wait) produced no connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DialError {
    /// The engine refused to start the connect (a limit, shutting down, or a pinned key on a
    /// plaintext node: `ConnectError::NotSecure`).
    Rejected(ConnectError),
    /// The connect was started and failed (only from `connect_wait`; `connect` reports this as
    /// [`Event::ConnectFailed`](crate::Event::ConnectFailed)).
    Failed(ConnectFailure),
    /// The node has stopped.
    Stopped,
}

impl fmt::Display for DialError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DialError::Rejected(e) => write!(f, "connect refused: {e}"),
            DialError::Failed(reason) => write!(f, "connect failed: {reason:?}"),
            DialError::Stopped => Stopped.fmt(f),
        }
    }
}

impl std::error::Error for DialError {}

/// Why [`Node::send_wait`](crate::Node::send_wait) did not queue a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendWaitError {
    /// The engine refused the message; nothing of it was queued.
    Rejected(SendError),
    /// The node has stopped.
    Stopped,
}

impl fmt::Display for SendWaitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendWaitError::Rejected(e) => write!(f, "send refused: {e}"),
            SendWaitError::Stopped => Stopped.fmt(f),
        }
    }
}

impl std::error::Error for SendWaitError {}

/// Why [`Events::recv_timeout`](crate::Events::recv_timeout) returned no event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecvTimeoutError {
    /// Nothing arrived in time.
    Timeout,
    /// The node has stopped and every event has been delivered.
    Stopped,
}

impl fmt::Display for RecvTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvTimeoutError::Timeout => f.write_str("no event before the timeout"),
            RecvTimeoutError::Stopped => Stopped.fmt(f),
        }
    }
}

impl std::error::Error for RecvTimeoutError {}

/// Why [`Events::try_recv`](crate::Events::try_recv) returned no event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TryRecvError {
    /// No event is waiting now.
    Empty,
    /// The node has stopped and every event has been delivered.
    Stopped,
}

impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryRecvError::Empty => f.write_str("no event waiting"),
            TryRecvError::Stopped => Stopped.fmt(f),
        }
    }
}

impl std::error::Error for TryRecvError {}

/// Why [`Node::enable_discovery`](crate::Node::enable_discovery) failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DiscoveryError {
    /// The UDP socket could not be created, configured or bound.
    Io(io::ErrorKind),
    /// The node has stopped.
    Stopped,
}

impl fmt::Display for DiscoveryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DiscoveryError::Io(kind) => write!(f, "cannot open the discovery socket: {kind}"),
            DiscoveryError::Stopped => Stopped.fmt(f),
        }
    }
}

impl std::error::Error for DiscoveryError {}
