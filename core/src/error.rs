//! One error type per application command.

use core::fmt;

/// Why `send` refused a message. Nothing of a refused message was queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// The peer id is stale or was never issued.
    UnknownPeer,
    /// The peer is closing (after `disconnect`, a remote close or an error).
    Closing,
    /// The send queue is at its high-water mark; wait for `Event::Writable`.
    QueueFull {
        /// Bytes queued now.
        queued: u64,
        /// The configured high-water mark.
        limit: u64,
    },
    /// The message is longer than `Config::max_frame_size` (framed modes only).
    FrameTooLarge {
        /// The message length.
        len: u64,
        /// The configured maximum.
        max: u64,
    },
    /// In `Delimited` framing, the payload contains the delimiter byte.
    DelimiterInPayload,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::UnknownPeer => f.write_str("unknown peer"),
            SendError::Closing => f.write_str("peer is closing"),
            SendError::QueueFull { queued, limit } => {
                write!(f, "send queue full ({queued} of {limit} bytes)")
            }
            SendError::FrameTooLarge { len, max } => {
                write!(f, "message of {len} bytes exceeds the frame limit of {max}")
            }
            SendError::DelimiterInPayload => f.write_str("payload contains the delimiter byte"),
        }
    }
}

impl std::error::Error for SendError {}

/// Why `connect` refused to start a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectError {
    /// `Config::max_peers` peers are already connected or connecting.
    MaxPeers,
    /// `Config::max_pending_connects` connects are already in flight.
    MaxPendingConnects,
    /// The engine is shutting down.
    ShuttingDown,
    /// A pinned key was given to a plaintext engine, which cannot prove any key.
    NotSecure,
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConnectError::MaxPeers => "too many peers",
            ConnectError::MaxPendingConnects => "too many connects in flight",
            ConnectError::ShuttingDown => "shutting down",
            ConnectError::NotSecure => "a pinned key needs a secure engine",
        })
    }
}

impl std::error::Error for ConnectError {}

/// Why a command naming a peer or listener did nothing: the id is stale or was never issued.
/// Drivers return it too, for commands that can no longer reach their engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UnknownId;

impl fmt::Display for UnknownId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("unknown or stale id")
    }
}

impl std::error::Error for UnknownId {}

/// Why `listen` refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ListenError {
    /// The engine is shutting down.
    ShuttingDown,
}

impl fmt::Display for ListenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("shutting down")
    }
}

impl std::error::Error for ListenError {}

/// Why a driver's `listen` produced no listener (the async drivers' handles answer with it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BindError {
    /// The node is shutting down or has stopped.
    ShuttingDown,
    /// Binding or listening failed with this socket error.
    Io(std::io::ErrorKind),
}

impl fmt::Display for BindError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BindError::ShuttingDown => f.write_str("the node is shutting down"),
            BindError::Io(kind) => write!(f, "could not listen: {kind}"),
        }
    }
}

impl std::error::Error for BindError {}

/// Why a driver gave no per-peer stream (the async drivers' `Node::stream`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StreamError {
    /// The peer id is stale, was never issued, its end was already reported, or the node has
    /// stopped.
    UnknownPeer,
    /// A stream for this peer is alive already (one stream per peer).
    AlreadyTaken,
}

impl fmt::Display for StreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StreamError::UnknownPeer => "unknown peer",
            StreamError::AlreadyTaken => "the peer's stream is already taken",
        })
    }
}

impl std::error::Error for StreamError {}
