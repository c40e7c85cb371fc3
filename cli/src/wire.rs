//! The file-transfer messages, each carried in one length-prefixed frame
//! (`Framing::LengthPrefixed` of the core):
//!
//! 1. sender → receiver: a [`Header`] (magic, version, size, SHA-256, name);
//! 2. sender → receiver: the file's bytes, in data messages of at most [`CHUNK`] bytes;
//! 3. receiver → sender: an [`Ack`] once the file is verified (or not).
//!
//! Header layout (big-endian): `b"OP2PFILE"`, version `u8` (= 1), size `u64`, checksum
//! `[u8; 32]`, name length `u16`, name (UTF-8).
//! Ack layout: `b"OP2PACK"`, status `u8` (0 verified, 1 checksum mismatch, 2 refused).

use std::fmt;

/// Bytes of file data per message.
pub const CHUNK: usize = 64 * 1024;
/// Longest file name carried in a header.
pub const MAX_NAME: usize = 255;
/// The largest message either side accepts (a header with the longest name, or a data chunk).
pub const MAX_MESSAGE: usize = CHUNK;

const MAGIC: &[u8; 8] = b"OP2PFILE";
const VERSION: u8 = 1;
const FIXED: usize = MAGIC.len() + 1 + 8 + 32 + 2;
const ACK_MAGIC: &[u8; 7] = b"OP2PACK";
// The longest header fits in one message.
const _: () = assert!(FIXED + MAX_NAME <= MAX_MESSAGE);

/// A SHA-256 digest.
pub type Checksum = [u8; 32];

/// What the sender announces before the data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The file's name, without any directory (checked by [`check_name`]).
    pub name: String,
    /// Bytes of data that follow.
    pub size: u64,
    /// SHA-256 of those bytes.
    pub checksum: Checksum,
}

/// Why a message was not a valid header or ack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireError {
    /// Shorter than the fixed part.
    TooShort(usize),
    /// Does not start with the magic: not an openp2p transfer.
    BadMagic,
    /// A version this program does not speak.
    UnsupportedVersion(u8),
    /// The name length disagrees with the message length.
    BadLength {
        /// Length the fields announce.
        expected: usize,
        /// Length of the message.
        actual: usize,
    },
    /// The name is not UTF-8.
    NameNotUtf8,
    /// The name is empty, too long, a path, or otherwise unsafe as a file name.
    UnsafeName(String),
    /// An ack with an unknown status byte.
    BadStatus(u8),
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::TooShort(n) => write!(f, "message of {n} bytes is too short"),
            WireError::BadMagic => f.write_str("bad magic (not an openp2p file transfer)"),
            WireError::UnsupportedVersion(v) => write!(f, "unsupported protocol version {v}"),
            WireError::BadLength { expected, actual } => {
                write!(f, "header says {expected} bytes but has {actual}")
            }
            WireError::NameNotUtf8 => f.write_str("file name is not UTF-8"),
            WireError::UnsafeName(name) => write!(f, "refusing unsafe file name {name:?}"),
            WireError::BadStatus(s) => write!(f, "unknown acknowledgement status {s}"),
        }
    }
}

impl std::error::Error for WireError {}

/// Accepts a plain file name: not empty, at most [`MAX_NAME`] bytes, no `/`, `\`, NUL or control
/// characters, not `.` or `..`. This is what keeps a sender from writing outside the output
/// directory.
pub fn check_name(name: &str) -> Result<(), WireError> {
    let unsafe_name = name.is_empty()
        || name.len() > MAX_NAME
        || name == "."
        || name == ".."
        || name
            .chars()
            .any(|c| c == '/' || c == '\\' || c.is_control());
    if unsafe_name {
        Err(WireError::UnsafeName(name.chars().take(80).collect()))
    } else {
        Ok(())
    }
}

impl Header {
    /// The header as one message.
    pub fn encode(&self) -> Result<Vec<u8>, WireError> {
        check_name(&self.name)?;
        let mut out = Vec::with_capacity(FIXED + self.name.len());
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.extend_from_slice(&self.size.to_be_bytes());
        out.extend_from_slice(&self.checksum);
        out.extend_from_slice(&(self.name.len() as u16).to_be_bytes());
        out.extend_from_slice(self.name.as_bytes());
        Ok(out)
    }

    /// Parses one message; anything but a well-formed header with a safe name is an error.
    pub fn decode(msg: &[u8]) -> Result<Header, WireError> {
        if !msg.starts_with(&MAGIC[..msg.len().min(MAGIC.len())]) {
            return Err(WireError::BadMagic);
        }
        if msg.len() < FIXED {
            return Err(WireError::TooShort(msg.len()));
        }
        let (magic, rest) = msg.split_at(MAGIC.len());
        debug_assert_eq!(magic, MAGIC);
        let (version, rest) = rest.split_at(1);
        if version[0] != VERSION {
            return Err(WireError::UnsupportedVersion(version[0]));
        }
        let (size, rest) = rest.split_at(8);
        let (checksum, rest) = rest.split_at(32);
        let (len, name) = rest.split_at(2);
        let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
        if name.len() != len {
            return Err(WireError::BadLength {
                expected: FIXED + len,
                actual: msg.len(),
            });
        }
        let name = std::str::from_utf8(name).map_err(|_| WireError::NameNotUtf8)?;
        check_name(name)?;
        let mut size_bytes = [0; 8];
        size_bytes.copy_from_slice(size);
        let mut sum = [0; 32];
        sum.copy_from_slice(checksum);
        Ok(Header {
            name: name.to_string(),
            size: u64::from_be_bytes(size_bytes),
            checksum: sum,
        })
    }
}

/// The receiver's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ack {
    /// The file arrived whole and its checksum matches; it is stored under its name.
    Verified,
    /// All bytes arrived but the checksum differs; nothing was kept.
    Mismatch,
    /// The receiver could not store the file.
    Refused,
}

impl Ack {
    /// The ack as one message.
    pub fn encode(self) -> Vec<u8> {
        let mut out = ACK_MAGIC.to_vec();
        out.push(match self {
            Ack::Verified => 0,
            Ack::Mismatch => 1,
            Ack::Refused => 2,
        });
        out
    }

    /// Parses one message.
    pub fn decode(msg: &[u8]) -> Result<Ack, WireError> {
        match msg {
            [magic @ .., status] if magic == ACK_MAGIC => match status {
                0 => Ok(Ack::Verified),
                1 => Ok(Ack::Mismatch),
                2 => Ok(Ack::Refused),
                other => Err(WireError::BadStatus(*other)),
            },
            _ if msg.len() <= ACK_MAGIC.len() && ACK_MAGIC.starts_with(msg) => {
                Err(WireError::TooShort(msg.len()))
            }
            _ => Err(WireError::BadMagic),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn header(name: &str) -> Header {
        Header {
            name: name.into(),
            size: 10 << 20,
            checksum: [7; 32],
        }
    }

    #[test]
    fn a_header_round_trips() {
        let h = header("report.pdf");
        assert_eq!(Header::decode(&h.encode().unwrap()), Ok(h));
        let long = header(&"é".repeat(MAX_NAME / 2));
        assert_eq!(Header::decode(&long.encode().unwrap()), Ok(long));
    }

    #[test]
    fn garbage_is_a_typed_error() {
        assert_eq!(
            Header::decode(b"GET / HTTP/1.1\r\n"),
            Err(WireError::BadMagic)
        );
        assert_eq!(Header::decode(b"OP2P"), Err(WireError::TooShort(4)));
        let mut bytes = header("a").encode().unwrap();
        bytes[8] = 9;
        assert_eq!(
            Header::decode(&bytes),
            Err(WireError::UnsupportedVersion(9))
        );
        let mut bytes = header("abc").encode().unwrap();
        bytes.pop();
        assert!(matches!(
            Header::decode(&bytes),
            Err(WireError::BadLength { .. })
        ));
        let mut bytes = header("ab").encode().unwrap();
        let n = bytes.len();
        bytes[n - 2..].copy_from_slice(&[0xff, 0xfe]);
        assert_eq!(Header::decode(&bytes), Err(WireError::NameNotUtf8));
    }

    #[test]
    fn path_traversal_and_odd_names_are_refused() {
        for name in [
            "",
            ".",
            "..",
            "../etc/passwd",
            "a/b",
            "..\\x",
            "/abs",
            "nul\0",
            "tab\t",
        ] {
            assert!(check_name(name).is_err(), "{name:?}");
            // Also when a hostile sender builds the bytes itself.
            let mut bytes = header("x").encode().unwrap();
            bytes.truncate(FIXED - 2);
            bytes.extend_from_slice(&(name.len() as u16).to_be_bytes());
            bytes.extend_from_slice(name.as_bytes());
            assert!(matches!(
                Header::decode(&bytes),
                Err(WireError::UnsafeName(_))
            ));
        }
        assert!(check_name(&"a".repeat(MAX_NAME + 1)).is_err());
        assert!(check_name("..hidden").is_ok());
        assert!(check_name("my file (1).tar.gz").is_ok());
    }

    #[test]
    fn acks_round_trip_and_reject_garbage() {
        for ack in [Ack::Verified, Ack::Mismatch, Ack::Refused] {
            assert_eq!(Ack::decode(&ack.encode()), Ok(ack));
        }
        assert_eq!(Ack::decode(b"OP2PACK\x09"), Err(WireError::BadStatus(9)));
        assert_eq!(Ack::decode(b"OP2P"), Err(WireError::TooShort(4)));
        assert_eq!(Ack::decode(b"hello there"), Err(WireError::BadMagic));
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
            let _ = Header::decode(&bytes);
            let _ = Ack::decode(&bytes);
        }

        #[test]
        fn valid_headers_round_trip(name in "[a-zA-Z0-9 ._-]{1,100}", size in any::<u64>(), sum in any::<[u8; 32]>()) {
            prop_assume!(name != "." && name != "..");
            let h = Header { name, size, checksum: sum };
            prop_assert_eq!(Header::decode(&h.encode().unwrap()), Ok(h));
        }
    }
}
