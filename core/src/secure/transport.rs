//! Noise transport messages after the handshake: AEAD with `ring`, nonces counted per direction.
//!
//! A transport message on the wire is a 2-byte big-endian length, then the ciphertext and its
//! 16-byte tag (Noise's `EncryptWithAd` with empty associated data). The nonce is Noise's: 32
//! zero bits, then the message counter, big-endian for AES-GCM and little-endian for ChaChaPoly.

use super::Suite;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, CHACHA20_POLY1305};

/// AEAD tag length.
pub(crate) const TAG: usize = 16;
/// Length prefix of every Noise message on the wire.
pub(crate) const HEADER: usize = 2;
/// Most plaintext bytes in one transport message (65,535 with the tag).
pub(crate) const MAX_PLAINTEXT: usize = u16::MAX as usize - TAG;

/// A transport message failed authentication, or the counter ran out (after 2^64 - 1 messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Unauthentic;

/// One direction's cipher state.
///
/// The expanded key (AES round keys and GHASH tables: 544 bytes in ring) is kept only while the
/// peer is busy: [`compact`](Self::compact) drops it and the next use expands it again from the
/// 32 raw bytes (about 170 ns), so an idle secure peer stays small.
pub(crate) struct CipherState {
    raw: [u8; 32],
    expanded: Option<Box<LessSafeKey>>,
    suite: Suite,
    counter: u64,
}

impl core::fmt::Debug for CipherState {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CipherState")
            .field("suite", &self.suite)
            .field("counter", &self.counter)
            .finish_non_exhaustive()
    }
}

impl CipherState {
    pub(crate) fn new(suite: Suite, key: &[u8; 32]) -> Option<Self> {
        let mut state = CipherState {
            raw: *key,
            expanded: None,
            suite,
            counter: 0,
        };
        state.key()?;
        Some(state)
    }

    /// The expanded key, expanding it first if it was compacted.
    fn key(&mut self) -> Option<&LessSafeKey> {
        if self.expanded.is_none() {
            let algorithm = match self.suite {
                Suite::AesGcm => &AES_256_GCM,
                Suite::ChaChaPoly => &CHACHA20_POLY1305,
            };
            let key = UnboundKey::new(algorithm, &self.raw).ok()?;
            self.expanded = Some(Box::new(LessSafeKey::new(key)));
        }
        self.expanded.as_deref()
    }

    /// Drops the expanded key (the peer went quiet); the next use expands it again.
    pub(crate) fn compact(&mut self) {
        self.expanded = None;
    }

    pub(crate) fn is_expanded(&self) -> bool {
        self.expanded.is_some()
    }

    fn next_nonce(&mut self) -> Result<Nonce, Unauthentic> {
        // Noise reserves 2^64 - 1; no connection lives to see it.
        if self.counter == u64::MAX {
            return Err(Unauthentic);
        }
        let n = self.counter;
        self.counter += 1;
        let mut nonce = [0u8; 12];
        match self.suite {
            Suite::AesGcm => nonce[4..].copy_from_slice(&n.to_be_bytes()),
            Suite::ChaChaPoly => nonce[4..].copy_from_slice(&n.to_le_bytes()),
        }
        Ok(Nonce::assume_unique_for_key(nonce))
    }

    /// Encrypts `buf[start..]` (at most [`MAX_PLAINTEXT`] bytes) in place and appends the tag;
    /// `buf[start - 2..start]` must be reserved for the length prefix, which this fills.
    pub(crate) fn seal_record(
        &mut self,
        buf: &mut Vec<u8>,
        start: usize,
    ) -> Result<(), Unauthentic> {
        let plain = buf.len().saturating_sub(start);
        if start < HEADER || plain > MAX_PLAINTEXT {
            return Err(Unauthentic);
        }
        let nonce = self.next_nonce()?;
        let key = self.key().ok_or(Unauthentic)?;
        let tag = key
            .seal_in_place_separate_tag(nonce, Aad::empty(), &mut buf[start..])
            .map_err(|_| Unauthentic)?;
        buf.extend_from_slice(tag.as_ref());
        let len = (plain + TAG) as u16;
        buf[start - HEADER..start].copy_from_slice(&len.to_be_bytes());
        Ok(())
    }

    /// Decrypts the ciphertext-and-tag at `in_out[from..]` and writes the plaintext to the front
    /// of `in_out`, returning its length. On failure `in_out` holds garbage.
    pub(crate) fn open_within(
        &mut self,
        in_out: &mut [u8],
        from: usize,
    ) -> Result<usize, Unauthentic> {
        let nonce = self.next_nonce()?;
        let key = self.key().ok_or(Unauthentic)?;
        key.open_within(nonce, Aad::empty(), in_out, from..)
            .map(|plain| plain.len())
            .map_err(|_| Unauthentic)
    }
}
