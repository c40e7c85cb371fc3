//! The Noise XX handshake, over `snow`, with randomness the engine injects.

use super::identity::{Identity, PeerKey};
use super::{HandshakeFailure, Suite, PROLOGUE};
use curve25519_dalek::MontgomeryPoint;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use snow::params::{CipherChoice, DHChoice, HashChoice};
use snow::resolvers::{CryptoResolver, DefaultResolver};
use snow::types::{Cipher, Dh, Hash, Random};

/// Longest handshake payload a receiver accepts (and ignores): later versions may send one.
pub(crate) const MAX_PAYLOAD: usize = 1024;
/// Longest XX handshake message: an ephemeral key, an encrypted static key and an encrypted
/// payload of at most [`MAX_PAYLOAD`].
pub(crate) const MAX_MESSAGE: usize = 32 + (32 + 16) + (MAX_PAYLOAD + 16);

/// snow's default primitives, but the engine's seeded generator instead of the OS RNG, and an
/// X25519 that knows this node's static key pair (snow derives the public key of every private
/// key it is given: one base-point multiplication per handshake saved).
struct SeededResolver {
    seed: [u8; 32],
    identity: Identity,
}

/// X25519 as snow's default resolver has it, plus the known static key pair.
struct X25519 {
    privkey: [u8; 32],
    pubkey: [u8; 32],
    known: Identity,
}

impl X25519 {
    fn derive_pubkey(&mut self) {
        self.pubkey = if self.privkey == *self.known.secret() {
            *self.known.public().as_bytes()
        } else {
            MontgomeryPoint::mul_base_clamped(self.privkey).to_bytes()
        };
    }
}

impl Dh for X25519 {
    fn name(&self) -> &'static str {
        "25519"
    }
    fn pub_len(&self) -> usize {
        32
    }
    fn priv_len(&self) -> usize {
        32
    }
    fn set(&mut self, privkey: &[u8]) {
        let n = privkey.len().min(32);
        self.privkey = [0; 32];
        self.privkey[..n].copy_from_slice(&privkey[..n]);
        self.derive_pubkey();
    }
    fn generate(&mut self, rng: &mut dyn Random) -> Result<(), snow::Error> {
        rng.try_fill_bytes(&mut self.privkey)?;
        self.derive_pubkey();
        Ok(())
    }
    fn pubkey(&self) -> &[u8] {
        &self.pubkey
    }
    fn privkey(&self) -> &[u8] {
        &self.privkey
    }
    fn dh(&self, pubkey: &[u8], out: &mut [u8]) -> Result<(), snow::Error> {
        let remote: [u8; 32] = pubkey
            .get(..32)
            .and_then(|k| k.try_into().ok())
            .ok_or(snow::Error::Dh)?;
        let shared = MontgomeryPoint(remote).mul_clamped(self.privkey).to_bytes();
        let n = out.len().min(32);
        out[..n].copy_from_slice(&shared[..n]);
        Ok(())
    }
}

struct SeededRandom(ChaCha20Rng);

impl Random for SeededRandom {
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), snow::Error> {
        self.0.fill_bytes(dest);
        Ok(())
    }
}

impl CryptoResolver for SeededResolver {
    fn resolve_rng(&self) -> Option<Box<dyn Random>> {
        Some(Box::new(SeededRandom(ChaCha20Rng::from_seed(self.seed))))
    }
    fn resolve_dh(&self, choice: &DHChoice) -> Option<Box<dyn Dh>> {
        match choice {
            DHChoice::Curve25519 => Some(Box::new(X25519 {
                privkey: [0; 32],
                pubkey: [0; 32],
                known: self.identity.clone(),
            })),
            _ => DefaultResolver.resolve_dh(choice),
        }
    }
    fn resolve_hash(&self, choice: &HashChoice) -> Option<Box<dyn Hash>> {
        DefaultResolver.resolve_hash(choice)
    }
    fn resolve_cipher(&self, choice: &CipherChoice) -> Option<Box<dyn Cipher>> {
        DefaultResolver.resolve_cipher(choice)
    }
}

/// One side of an XX handshake in progress.
pub(crate) struct Handshake {
    state: snow::HandshakeState,
}

impl core::fmt::Debug for Handshake {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Handshake")
            .field("initiator", &self.state.is_initiator())
            .field("finished", &self.state.is_handshake_finished())
            .finish()
    }
}

/// The two transport keys a finished handshake yields, from this side's point of view.
pub(crate) struct Keys {
    pub(crate) send: [u8; 32],
    pub(crate) recv: [u8; 32],
}

impl Handshake {
    /// Starts a handshake: `initiator` is the side that dialed; `seed` is fresh entropy for the
    /// ephemeral key.
    pub(crate) fn new(
        initiator: bool,
        suite: Suite,
        identity: &Identity,
        seed: [u8; 32],
    ) -> Result<Self, HandshakeFailure> {
        let params = suite
            .noise_name()
            .parse()
            .map_err(|_| HandshakeFailure::Malformed)?;
        let resolver = SeededResolver {
            seed,
            identity: identity.clone(),
        };
        let builder = snow::Builder::with_resolver(params, Box::new(resolver))
            .prologue(PROLOGUE)
            .and_then(|b| b.local_private_key(identity.secret()))
            .map_err(|_| HandshakeFailure::Malformed)?;
        let state = if initiator {
            builder.build_initiator()
        } else {
            builder.build_responder()
        }
        .map_err(|_| HandshakeFailure::Malformed)?;
        Ok(Handshake { state })
    }

    /// Whether this side writes the next message.
    pub(crate) fn my_turn(&self) -> bool {
        !self.state.is_handshake_finished() && self.state.is_my_turn()
    }

    pub(crate) fn is_finished(&self) -> bool {
        self.state.is_handshake_finished()
    }

    /// Appends this side's next message (2-byte big-endian length, then the message, with an
    /// empty payload) to `out`.
    pub(crate) fn write(&mut self, out: &mut Vec<u8>) -> Result<(), HandshakeFailure> {
        let mut message = [0u8; MAX_MESSAGE];
        let n = self
            .state
            .write_message(&[], &mut message)
            .map_err(|_| HandshakeFailure::Malformed)?;
        let len = u16::try_from(n).map_err(|_| HandshakeFailure::Malformed)?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&message[..n]);
        Ok(())
    }

    /// Reads the remote's next message (without its length prefix); a payload is ignored.
    pub(crate) fn read(&mut self, message: &[u8]) -> Result<(), HandshakeFailure> {
        if message.len() > MAX_MESSAGE {
            return Err(HandshakeFailure::Malformed);
        }
        let mut payload = [0u8; MAX_MESSAGE];
        self.state
            .read_message(message, &mut payload)
            .map(|_| ())
            .map_err(|e| match e {
                snow::Error::Decrypt => HandshakeFailure::Decrypt,
                _ => HandshakeFailure::Malformed,
            })
    }

    /// The remote's static key, once a message carrying it was read.
    pub(crate) fn remote(&self) -> Option<PeerKey> {
        let bytes = self.state.get_remote_static()?;
        let key: [u8; 32] = bytes.try_into().ok()?;
        Some(PeerKey(key))
    }

    /// The transport keys of a finished handshake.
    pub(crate) fn into_keys(mut self) -> Result<Keys, HandshakeFailure> {
        if self.remote().is_none() || !self.state.is_handshake_finished() {
            return Err(HandshakeFailure::Malformed);
        }
        // (initiator -> responder, responder -> initiator)
        let (i2r, r2i) = self.state.dangerously_get_raw_split();
        let (send, recv) = if self.state.is_initiator() {
            (i2r, r2i)
        } else {
            (r2i, i2r)
        };
        Ok(Keys { send, recv })
    }
}
