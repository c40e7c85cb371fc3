//! Who a node is: a static X25519 key pair, and the public half that names a peer.

use core::fmt;
use core::str::FromStr;

/// A peer's identity on a secure channel: its static X25519 public key (32 bytes), proven by
/// the Noise handshake. Written as 64 lowercase hex characters.
///
/// ```
/// use openp2p_core::PeerKey;
/// let hex = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a";
/// let key: PeerKey = hex.parse()?;
/// assert_eq!(key.to_string(), hex);
/// assert_eq!(key.short(), "8520f009");
/// # Ok::<(), openp2p_core::PeerKeyParseError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerKey(pub [u8; 32]);

impl PeerKey {
    /// The key's 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The first 8 hex characters, for tables and logs (not for comparing keys).
    pub fn short(&self) -> String {
        let mut s = self.to_string();
        s.truncate(8);
        s
    }
}

impl fmt::Display for PeerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for PeerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PeerKey({self})")
    }
}

/// Why a string is not a [`PeerKey`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerKeyParseError {
    /// Not exactly 64 characters long (the length found).
    Length(usize),
    /// A character that is not a hex digit, at this byte offset.
    NotHex(usize),
}

impl fmt::Display for PeerKeyParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerKeyParseError::Length(n) => {
                write!(f, "a peer key is 64 hex characters, not {n}")
            }
            PeerKeyParseError::NotHex(at) => write!(f, "not a hex digit at offset {at}"),
        }
    }
}

impl std::error::Error for PeerKeyParseError {}

impl FromStr for PeerKey {
    type Err = PeerKeyParseError;

    /// Parses 64 hex characters (either case).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.len() != 64 {
            return Err(PeerKeyParseError::Length(s.len()));
        }
        let digit = |at: usize| -> Result<u8, PeerKeyParseError> {
            let c = s.as_bytes()[at];
            (c as char)
                .to_digit(16)
                .map(|d| d as u8)
                .ok_or(PeerKeyParseError::NotHex(at))
        };
        let mut key = [0u8; 32];
        for (i, b) in key.iter_mut().enumerate() {
            *b = digit(2 * i)? << 4 | digit(2 * i + 1)?;
        }
        Ok(PeerKey(key))
    }
}

/// A node's static X25519 key pair: the secret that proves it is the [`PeerKey`] others pin.
///
/// Keep the secret secret: [`secret`](Self::secret) returns the 32 bytes to store (with
/// owner-only permissions), [`from_secret`](Self::from_secret) loads them back. `Debug` never
/// prints the secret.
///
/// ```
/// use openp2p_core::Identity;
/// let identity = Identity::from_secret([7; 32]);
/// let again = Identity::from_secret(*identity.secret());
/// assert_eq!(identity.public(), again.public());
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Identity {
    secret: [u8; 32],
    public: PeerKey,
}

impl Identity {
    /// The identity whose secret is these 32 bytes (any 32 bytes are a valid X25519 secret).
    pub fn from_secret(secret: [u8; 32]) -> Self {
        let public = curve25519_dalek::MontgomeryPoint::mul_base_clamped(secret).to_bytes();
        Identity {
            secret,
            public: PeerKey(public),
        }
    }

    /// A new identity from 32 bytes of entropy the caller supplies (the engine reads no RNG).
    /// Same as [`from_secret`](Self::from_secret).
    pub fn from_entropy(entropy: [u8; 32]) -> Self {
        Self::from_secret(entropy)
    }

    /// A new identity from the operating system's RNG (feature `os-entropy`, which every driver
    /// crate enables).
    #[cfg(feature = "os-entropy")]
    pub fn generate() -> Result<Self, getrandom::Error> {
        Ok(Self::from_secret(os_entropy()?))
    }

    /// The public key others know this node by.
    pub fn public(&self) -> PeerKey {
        self.public
    }

    /// The 32 secret bytes, to store.
    pub fn secret(&self) -> &[u8; 32] {
        &self.secret
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

/// 32 bytes from the operating system's RNG: what a driver feeds
/// [`Engine::with_entropy`](crate::Engine::with_entropy) (feature `os-entropy`).
#[cfg(feature = "os-entropy")]
pub fn os_entropy() -> Result<[u8; 32], getrandom::Error> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed)?;
    Ok(seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_public_key_is_the_rfc7748_base_point_multiple() {
        // RFC 7748 section 6.1, Alice's key pair.
        let secret: PeerKey = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"
            .parse()
            .unwrap();
        let identity = Identity::from_secret(secret.0);
        assert_eq!(
            identity.public().to_string(),
            "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
        );
    }

    #[test]
    fn bad_hex_is_a_typed_error() {
        assert_eq!("ab".parse::<PeerKey>(), Err(PeerKeyParseError::Length(2)));
        let mut s = "0".repeat(64);
        s.replace_range(10..11, "g");
        assert_eq!(s.parse::<PeerKey>(), Err(PeerKeyParseError::NotHex(10)));
        let upper = "AB".repeat(32);
        assert_eq!(upper.parse::<PeerKey>().unwrap().0, [0xab; 32]);
    }

    #[test]
    fn debug_hides_the_secret() {
        let shown = format!("{:?}", Identity::from_secret([0x5a; 32]));
        assert!(!shown.contains("5a5a5a"), "{shown}");
    }
}
