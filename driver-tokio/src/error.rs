//! Errors of the Tokio driver (the engine's own errors are re-exported from `openp2p-core`).

use openp2p_core::ConfigError;
use std::fmt;

/// Why [`Node::start`](crate::Node::start) failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StartError {
    /// The configuration was rejected.
    Config(ConfigError),
    /// Not called from within a Tokio runtime.
    NoRuntime,
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Config(e) => write!(f, "invalid configuration: {e}"),
            StartError::NoRuntime => {
                f.write_str("Node::start must be called within a Tokio runtime")
            }
        }
    }
}

impl std::error::Error for StartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StartError::Config(e) => Some(e),
            StartError::NoRuntime => None,
        }
    }
}

impl From<ConfigError> for StartError {
    fn from(e: ConfigError) -> Self {
        StartError::Config(e)
    }
}

pub use openp2p_core::{BindError, StreamError};
