//! The LAN discovery beacon: a small, bounded UDP payload announcing a node.
//!
//! Layout (big-endian): magic `OP2P` (4) | version (1) | flags (1, zero) | node id (16) |
//! TCP port (2) | name length (1) | name (UTF-8, at most [`MAX_NAME`] bytes). Nothing else: the
//! node's IP address is never carried, receivers take it from the datagram's source.

use core::fmt;

/// The beacon's magic bytes.
pub const MAGIC: [u8; 4] = *b"OP2P";
/// The only version understood.
pub const VERSION: u8 = 1;
/// Longest node name, in bytes.
pub const MAX_NAME: usize = 64;
/// Longest encoded beacon.
pub const MAX_BEACON: usize = 4 + 1 + 1 + 16 + 2 + 1 + MAX_NAME;

/// A node's identity on the LAN (random per node, chosen by the application).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeKey(pub [u8; 16]);

/// What one beacon says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Beacon {
    /// Who announces.
    pub node: NodeKey,
    /// The TCP port it listens on.
    pub tcp_port: u16,
    /// A human-readable name.
    pub name: String,
}

/// Why a datagram is not a beacon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BeaconError {
    /// Shorter than its fixed header or its declared name.
    Truncated,
    /// Not our magic: another protocol on the port.
    BadMagic,
    /// A version this code does not speak.
    UnsupportedVersion(u8),
    /// Reserved flags set.
    UnknownFlags(u8),
    /// The declared name is longer than [`MAX_NAME`].
    NameTooLong(usize),
    /// The name is not UTF-8.
    NameNotUtf8,
    /// Bytes after the name.
    TrailingBytes(usize),
}

impl fmt::Display for BeaconError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BeaconError::Truncated => f.write_str("truncated beacon"),
            BeaconError::BadMagic => f.write_str("not an openp2p beacon"),
            BeaconError::UnsupportedVersion(v) => write!(f, "unsupported beacon version {v}"),
            BeaconError::UnknownFlags(x) => write!(f, "unknown beacon flags {x:#04x}"),
            BeaconError::NameTooLong(n) => write!(f, "name of {n} bytes exceeds {MAX_NAME}"),
            BeaconError::NameNotUtf8 => f.write_str("name is not UTF-8"),
            BeaconError::TrailingBytes(n) => write!(f, "{n} bytes after the beacon"),
        }
    }
}

impl std::error::Error for BeaconError {}

const HEADER: usize = 4 + 1 + 1 + 16 + 2 + 1;

impl Beacon {
    /// Encodes into `out` (which must hold [`MAX_BEACON`] bytes); returns the length. A name
    /// longer than [`MAX_NAME`] is cut at a character boundary.
    ///
    /// ```
    /// use openp2p_core::discovery::{Beacon, NodeKey, MAX_BEACON};
    /// let beacon = Beacon { node: NodeKey([7; 16]), tcp_port: 9988, name: "alice".into() };
    /// let mut buf = [0u8; MAX_BEACON];
    /// let n = beacon.encode(&mut buf);
    /// assert_eq!(Beacon::decode(&buf[..n]), Ok(beacon));
    /// ```
    pub fn encode(&self, out: &mut [u8; MAX_BEACON]) -> usize {
        let name = truncate_name(&self.name);
        out[..4].copy_from_slice(&MAGIC);
        out[4] = VERSION;
        out[5] = 0;
        out[6..22].copy_from_slice(&self.node.0);
        out[22..24].copy_from_slice(&self.tcp_port.to_be_bytes());
        out[24] = name.len() as u8;
        out[HEADER..HEADER + name.len()].copy_from_slice(name.as_bytes());
        HEADER + name.len()
    }

    /// Parses a datagram; never panics, whatever the bytes.
    pub fn decode(data: &[u8]) -> Result<Beacon, BeaconError> {
        let header = data.get(..HEADER).ok_or(BeaconError::Truncated)?;
        if header[..4] != MAGIC {
            return Err(BeaconError::BadMagic);
        }
        if header[4] != VERSION {
            return Err(BeaconError::UnsupportedVersion(header[4]));
        }
        if header[5] != 0 {
            return Err(BeaconError::UnknownFlags(header[5]));
        }
        let mut node = [0u8; 16];
        node.copy_from_slice(&header[6..22]);
        let tcp_port = u16::from_be_bytes([header[22], header[23]]);
        let name_len = usize::from(header[24]);
        if name_len > MAX_NAME {
            return Err(BeaconError::NameTooLong(name_len));
        }
        let rest = &data[HEADER..];
        let name = rest.get(..name_len).ok_or(BeaconError::Truncated)?;
        if rest.len() > name_len {
            return Err(BeaconError::TrailingBytes(rest.len() - name_len));
        }
        let name = std::str::from_utf8(name).map_err(|_| BeaconError::NameNotUtf8)?;
        Ok(Beacon {
            node: NodeKey(node),
            tcp_port,
            name: name.to_owned(),
        })
    }
}

fn truncate_name(name: &str) -> &str {
    if name.len() <= MAX_NAME {
        return name;
    }
    let mut end = MAX_NAME;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn long_names_are_cut_at_a_character_boundary() {
        let beacon = Beacon {
            node: NodeKey([1; 16]),
            tcp_port: 1,
            name: "é".repeat(40),
        };
        let mut buf = [0u8; MAX_BEACON];
        let n = beacon.encode(&mut buf);
        let decoded = Beacon::decode(&buf[..n]).unwrap();
        assert_eq!(decoded.name, "é".repeat(32));
    }

    #[test]
    fn each_malformation_has_its_own_error() {
        let beacon = Beacon {
            node: NodeKey([1; 16]),
            tcp_port: 1,
            name: "ab".into(),
        };
        let mut buf = [0u8; MAX_BEACON];
        let n = beacon.encode(&mut buf);
        let good = buf[..n].to_vec();
        assert_eq!(Beacon::decode(&good[..10]), Err(BeaconError::Truncated));
        assert_eq!(Beacon::decode(&good[..n - 1]), Err(BeaconError::Truncated));
        let mut bad = good.clone();
        bad[0] = b'X';
        assert_eq!(Beacon::decode(&bad), Err(BeaconError::BadMagic));
        let mut bad = good.clone();
        bad[4] = 9;
        assert_eq!(
            Beacon::decode(&bad),
            Err(BeaconError::UnsupportedVersion(9))
        );
        let mut bad = good.clone();
        bad[5] = 1;
        assert_eq!(Beacon::decode(&bad), Err(BeaconError::UnknownFlags(1)));
        let mut bad = good.clone();
        bad[24] = 200;
        assert_eq!(Beacon::decode(&bad), Err(BeaconError::NameTooLong(200)));
        let mut bad = good.clone();
        bad[HEADER] = 0xff;
        assert_eq!(Beacon::decode(&bad), Err(BeaconError::NameNotUtf8));
        let mut bad = good;
        bad.push(0);
        assert_eq!(Beacon::decode(&bad), Err(BeaconError::TrailingBytes(1)));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        /// Garbage never panics, and whatever decodes re-encodes to the same bytes.
        #[test]
        fn decoding_garbage_never_panics_and_round_trips(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(beacon) = Beacon::decode(&data) {
                let mut buf = [0u8; MAX_BEACON];
                let n = beacon.encode(&mut buf);
                prop_assert_eq!(&buf[..n], &data[..]);
            }
        }

        /// Every beacon survives encoding.
        #[test]
        fn every_beacon_round_trips(node in any::<[u8; 16]>(), port in any::<u16>(), name in "\\PC{0,30}") {
            let beacon = Beacon { node: NodeKey(node), tcp_port: port, name: truncate_name(&name).to_owned() };
            let mut buf = [0u8; MAX_BEACON];
            let n = beacon.encode(&mut buf);
            prop_assert_eq!(Beacon::decode(&buf[..n]), Ok(beacon));
        }
    }
}
