//! One error type per node operation.

use openp2p_core::ConfigError;
use std::{fmt, io};

/// Why [`Node::start`](crate::Node::start) failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum StartError {
    /// The configuration was rejected by the engine.
    Config(ConfigError),
    /// The driver thread could not be started.
    Spawn(io::Error),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Config(e) => write!(f, "invalid configuration: {e}"),
            StartError::Spawn(e) => write!(f, "cannot start the driver thread: {e}"),
        }
    }
}

impl std::error::Error for StartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StartError::Config(e) => Some(e),
            StartError::Spawn(e) => Some(e),
        }
    }
}

impl From<ConfigError> for StartError {
    fn from(e: ConfigError) -> Self {
        StartError::Config(e)
    }
}

/// Why [`Node::listen`](crate::Node::listen) did not produce a listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BindError {
    /// The node is shutting down or has stopped.
    ShuttingDown,
    /// Binding or listening failed with this socket error.
    Io(io::ErrorKind),
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

/// Why [`Node::stream`](crate::Node::stream) gave no stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StreamError {
    /// The peer id is stale, was never issued, or the node has stopped.
    UnknownPeer,
    /// A [`PeerStream`](crate::PeerStream) for this peer is alive already.
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
