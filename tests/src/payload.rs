//! Seeded payloads and checksums for integrity checks.

use openp2p_core::{Bytes, SimRng};

/// FNV-1a, 64 bits: a checksum that folds a message in any number of pieces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checksum(u64);

impl Default for Checksum {
    fn default() -> Self {
        Checksum(0xcbf2_9ce4_8422_2325)
    }
}

impl Checksum {
    /// The checksum of `data`.
    pub fn of(data: &[u8]) -> Checksum {
        let mut c = Checksum::default();
        c.update(data);
        c
    }

    /// Folds `data` in.
    pub fn update(&mut self, data: &[u8]) {
        for &b in data {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }

    /// The value so far.
    pub fn value(self) -> u64 {
        self.0
    }
}

/// `len` pseudo-random bytes from `rng`, never equal to `avoid` (a delimiter) when given.
pub fn random(rng: &mut SimRng, len: usize, avoid: Option<u8>) -> Bytes {
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        let word = rng.next_u64().to_le_bytes();
        for b in word {
            if out.len() == len {
                break;
            }
            out.push(match avoid {
                Some(d) if b == d => b.wrapping_add(1),
                _ => b,
            });
        }
    }
    Bytes::from(out)
}
