//! Secure channels: Noise XX between the socket's bytes and the framing layer.
//!
//! # Wire format
//!
//! - Protocol `Noise_XX_25519_AESGCM_SHA256` ([`Suite::AesGcm`], the default) or
//!   `Noise_XX_25519_ChaChaPoly_SHA256` ([`Suite::ChaChaPoly`]); prologue the 9 ASCII bytes
//!   `openp2p/1`; the side that dialed is the initiator. Handshake payloads are empty; a receiver
//!   accepts and ignores one of up to 1 KiB.
//! - Every Noise message, handshake and transport, is preceded by its length as a 2-byte
//!   big-endian integer. A transport message carries at most 65,519 plaintext bytes.
//! - After the handshake, the application's byte stream (raw chunks or frames, as configured) is
//!   the concatenation of the transport messages' plaintexts: Noise message boundaries mean
//!   nothing to the framing layer.
//!
//! # Identity and gating
//!
//! A node is its [`Identity`] (a static X25519 key pair); a remote is known by its [`PeerKey`],
//! which the handshake proves. [`Allow`] decides which remote keys may connect, on both sides,
//! before `Connected`; a dial may pin the key it expects
//! ([`Engine::connect_pinned`](crate::Engine::connect_pinned)).
//!
//! # Randomness
//!
//! The engine reads no RNG: [`Engine::with_entropy`](crate::Engine::with_entropy) takes a
//! 32-byte seed, from which every handshake's ephemeral key is drawn (ChaCha20). Drivers seed
//! from the operating system; the simulated network from its seed, so its runs repeat exactly.

mod channel;
mod handshake;
mod identity;
pub(crate) mod outbox;
mod transport;

pub(crate) use channel::{Channel, Failure};
#[cfg(feature = "os-entropy")]
pub use identity::os_entropy;
pub use identity::{Identity, PeerKey, PeerKeyParseError};

use core::fmt;
use std::collections::BTreeSet;
use std::time::Duration;

/// A secure peer with no traffic for this long drops its expanded transport keys (1 s, in
/// nanoseconds): they take 1 KiB, and expanding them again costs about 170 ns.
pub(crate) const COLD_AFTER: u64 = 1_000_000_000;

/// The prologue both sides mix into the handshake.
pub const PROLOGUE: &[u8] = b"openp2p/1";
/// Most plaintext bytes one transport message carries.
pub const MAX_TRANSPORT_PLAINTEXT: usize = transport::MAX_PLAINTEXT;

/// The Noise cipher of the handshake and the transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Suite {
    /// `Noise_XX_25519_AESGCM_SHA256` (AES-256-GCM): the fastest where the CPU has AES
    /// instructions.
    #[default]
    AesGcm,
    /// `Noise_XX_25519_ChaChaPoly_SHA256`: for CPUs without AES instructions.
    ChaChaPoly,
}

impl Suite {
    /// The Noise protocol name.
    pub fn noise_name(self) -> &'static str {
        match self {
            Suite::AesGcm => "Noise_XX_25519_AESGCM_SHA256",
            Suite::ChaChaPoly => "Noise_XX_25519_ChaChaPoly_SHA256",
        }
    }
}

/// Which remote keys may complete a handshake.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Allow {
    /// Any key (authenticated and encrypted, but not gated).
    #[default]
    Any,
    /// Only these keys; every other remote fails with [`HandshakeFailure::NotAllowed`].
    Only(BTreeSet<PeerKey>),
}

impl Allow {
    /// Whether `key` may connect.
    pub fn admits(&self, key: &PeerKey) -> bool {
        match self {
            Allow::Any => true,
            Allow::Only(keys) => keys.contains(key),
        }
    }
}

/// Secure channel settings: the field [`Config::secure`](crate::Config::secure) holds.
///
/// ```
/// use openp2p_core::{Allow, Config, Identity, SecureConfig};
/// let me = Identity::from_entropy([1; 32]);
/// let friend = Identity::from_entropy([2; 32]).public();
/// let config = Config {
///     secure: Some(SecureConfig { allow: Allow::Only([friend].into()), ..SecureConfig::new(me) }),
///     ..Config::default()
/// };
/// assert!(config.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecureConfig {
    /// This node's static key pair.
    pub identity: Identity,
    /// The Noise cipher.
    pub suite: Suite,
    /// Which remote keys may connect (checked on both sides before `Connected`).
    pub allow: Allow,
    /// A handshake not finished this long after TCP connect or accept fails with
    /// [`HandshakeFailure::TimedOut`] and frees its slot.
    pub handshake_timeout: Duration,
}

impl SecureConfig {
    /// AES-GCM, any remote key, a 10 s handshake timeout.
    pub fn new(identity: Identity) -> Self {
        SecureConfig {
            identity,
            suite: Suite::AesGcm,
            allow: Allow::Any,
            handshake_timeout: Duration::from_secs(10),
        }
    }
}

/// Why a handshake failed: in [`ConnectFailure::Handshake`](crate::ConnectFailure::Handshake)
/// for a dial, in [`Event::HandshakeFailed`](crate::Event::HandshakeFailed) for an accepted
/// connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandshakeFailure {
    /// Not finished within `handshake_timeout`.
    TimedOut,
    /// A message that is not a valid handshake message of this protocol (too long, wrong size, a
    /// plaintext client's bytes).
    Malformed,
    /// A handshake message failed authentication.
    Decrypt,
    /// The dial pinned `expected`, and `actual` answered.
    KeyMismatch {
        /// The pinned key.
        expected: PeerKey,
        /// The key the remote proved.
        actual: PeerKey,
    },
    /// The remote's key is not in the allowlist.
    NotAllowed {
        /// The key the remote proved.
        key: PeerKey,
    },
    /// The remote closed the connection before the handshake finished.
    Closed,
}

impl fmt::Display for HandshakeFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandshakeFailure::TimedOut => f.write_str("handshake timed out"),
            HandshakeFailure::Malformed => f.write_str("malformed handshake message"),
            HandshakeFailure::Decrypt => f.write_str("handshake message failed to decrypt"),
            HandshakeFailure::KeyMismatch { expected, actual } => {
                write!(f, "key mismatch: expected {expected}, remote is {actual}")
            }
            HandshakeFailure::NotAllowed { key } => write!(f, "key {key} is not allowed"),
            HandshakeFailure::Closed => f.write_str("closed during the handshake"),
        }
    }
}

impl std::error::Error for HandshakeFailure {}

/// Why an established secure channel broke (in
/// [`DisconnectReason::Secure`](crate::DisconnectReason::Secure)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransportFailure {
    /// A transport message failed authentication (altered, replayed or forged): nothing from it
    /// reached the application.
    Decrypt,
    /// A transport message shorter than its tag.
    Malformed,
    /// The stream ended in the middle of a transport message.
    Truncated,
}

impl fmt::Display for TransportFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TransportFailure::Decrypt => "transport message failed to decrypt",
            TransportFailure::Malformed => "malformed transport message",
            TransportFailure::Truncated => "stream ended inside a transport message",
        })
    }
}

impl std::error::Error for TransportFailure {}
