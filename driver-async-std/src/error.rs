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

pub use openp2p_core::{BindError, StreamError};
