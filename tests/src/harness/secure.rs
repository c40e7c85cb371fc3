//! Secure mode for any harness: the same scenario, every node behind a Noise XX channel.

use super::Harness;
use openp2p_core::{Config, Identity, SecureConfig};
use std::net::SocketAddr;

/// A deterministic identity, the `n`-th of a run: the simulated network's traces stay
/// repeatable, and a scenario can name a key before the node that holds it starts.
pub fn identity(n: u64) -> Identity {
    // Not in byte 0: X25519 clamping clears its low three bits (n = 1, 2, 3 would be one key).
    let mut secret = [0x5e; 32];
    secret[8..16].copy_from_slice(&n.to_le_bytes());
    Identity::from_secret(secret)
}

/// `H` in secure mode: every node started with `Config::secure` unset gets
/// `SecureConfig::new(identity)` with an identity of its own (so any two nodes of a scenario
/// complete a handshake with each other). A node whose config sets `secure` keeps it.
///
/// ```
/// use openp2p_tests::harness::{Harness, Secure, SimHarness};
/// use openp2p_tests::scenarios;
///
/// let mut h = Secure::new(SimHarness::new(7));
/// assert!(h.is_secure());
/// scenarios::lifecycle(&mut h);
/// ```
#[derive(Debug, Clone)]
pub struct Secure<H> {
    inner: H,
    /// Nodes started so far: the next node's identity number.
    started: u64,
}

impl<H: Harness> Secure<H> {
    /// `inner`'s nodes, made secure.
    pub fn new(inner: H) -> Secure<H> {
        Secure { inner, started: 0 }
    }
}

impl<H: Harness> Harness for Secure<H> {
    type Node = H::Node;

    fn name(&self) -> &'static str {
        match self.inner.name() {
            "sim" => "sim+secure",
            "mio" => "mio+secure",
            "tokio" => "tokio+secure",
            "async-std" => "async-std+secure",
            "smol" => "smol+secure",
            _ => "secure",
        }
    }

    fn start(&mut self, mut config: Config) -> H::Node {
        if config.secure.is_none() {
            // Far from the numbers scenarios pick for identities of their own.
            self.started += 1;
            config.secure = Some(SecureConfig::new(identity(1_000_000 + self.started)));
        }
        self.inner.start(config)
    }

    fn closed_addr(&mut self) -> SocketAddr {
        self.inner.closed_addr()
    }

    fn is_virtual(&self) -> bool {
        self.inner.is_virtual()
    }

    fn is_secure(&self) -> bool {
        true
    }
}
