//! Generational handles for peers and listeners.
//!
//! A handle is a slab index plus a serial number that is never reused, so a stale handle kept by the
//! application after its peer closed can never reach the peer that later takes the same slot.

use core::fmt;

/// Identifies one connection (inbound or outbound) for its whole life.
///
/// `Copy`, cheap to hash, and never aliases: once a peer has gone, every call that names its id is a
/// harmless no-op or a typed error.
///
/// ```
/// # use openp2p_core::{Engine, Config};
/// # use std::time::Instant;
/// let mut engine = Engine::new(Config::default()).unwrap();
/// let peer = engine.connect("127.0.0.1:9988".parse().unwrap(), Instant::now()).unwrap();
/// let copy = peer;
/// assert_eq!(peer, copy);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerId {
    pub(crate) index: u32,
    pub(crate) serial: u64,
}

impl PeerId {
    /// The slot this peer occupies; slots are reused, so this alone is not an identity.
    /// Drivers may use it to index their own socket tables.
    pub fn slot(self) -> usize {
        self.index as usize
    }

    /// A number unique to this connection within its engine (never reused).
    pub fn serial(self) -> u64 {
        self.serial
    }
}

impl fmt::Debug for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "peer#{}", self.serial)
    }
}

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Identifies one listening socket.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ListenerId {
    pub(crate) index: u32,
    pub(crate) serial: u64,
}

impl ListenerId {
    /// The slot this listener occupies (reused after it closes).
    pub fn slot(self) -> usize {
        self.index as usize
    }

    /// A number unique to this listener within its engine.
    pub fn serial(self) -> u64 {
        self.serial
    }
}

impl fmt::Debug for ListenerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "listener#{}", self.serial)
    }
}

impl fmt::Display for ListenerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}
