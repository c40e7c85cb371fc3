//! Both ends of one file transfer over a length-prefixed peer: [`Outgoing`] queues the header and
//! the data with back-pressure, [`Incoming`] checks what arrives against the header.

use crate::error::{Failure, Result};
use crate::wire::{Checksum, Header, WireError, CHUNK};
use bytes::Bytes;
use openp2p_tokio::{Node, PeerId, SendError};
use sha2::{Digest, Sha256};
use std::fmt;
use std::io::{self, Read};

/// Where the bytes of an outgoing file come from.
pub trait Source: Send {
    /// The next bytes, at most `max`; empty at the end.
    fn read_chunk(&mut self, max: usize) -> io::Result<Bytes>;
}

/// A file on disk.
#[derive(Debug)]
pub struct FileSource(pub std::fs::File);

impl Source for FileSource {
    fn read_chunk(&mut self, max: usize) -> io::Result<Bytes> {
        let mut buf = vec![0; max];
        let mut filled = 0;
        while filled < max {
            match self.0.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        buf.truncate(filled);
        Ok(Bytes::from(buf))
    }
}

/// Generated content: `size` bytes of a pattern chosen by `seed` (the demo's files).
#[derive(Debug, Clone)]
pub struct PatternSource {
    seed: u64,
    offset: u64,
    size: u64,
}

impl PatternSource {
    /// `size` bytes of the pattern of `seed`.
    pub fn new(seed: u64, size: u64) -> PatternSource {
        PatternSource {
            seed,
            offset: 0,
            size,
        }
    }
}

impl Source for PatternSource {
    fn read_chunk(&mut self, max: usize) -> io::Result<Bytes> {
        let n = (self.size - self.offset).min(max as u64);
        let data: Vec<u8> = (self.offset..self.offset + n)
            .map(|i| {
                let x = (i ^ self.seed.rotate_left(17)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
                (x >> 56) as u8
            })
            .collect();
        self.offset += n;
        Ok(Bytes::from(data))
    }
}

/// SHA-256 of the first `size` bytes of `source`; fails if it has fewer.
pub fn checksum_of(source: &mut dyn Source, size: u64) -> io::Result<Checksum> {
    let mut hasher = Sha256::new();
    let mut left = size;
    while left > 0 {
        let chunk = source.read_chunk(CHUNK.min(left as usize))?;
        if chunk.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file is shorter than its size",
            ));
        }
        hasher.update(&chunk);
        left -= chunk.len() as u64;
    }
    Ok(hasher.finalize().into())
}

/// What [`Outgoing::pump`] got done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pump {
    /// The peer's send queue is full: call `pump` again after its `Event::Writable`.
    Blocked,
    /// The header and every byte are queued.
    AllQueued,
    /// The peer no longer takes data: its `Disconnected` event says why.
    PeerGone,
}

/// The sending side: the header, then the data, queued on the peer as fast as its send queue
/// takes them (the engine's rate limits pace the socket).
pub struct Outgoing {
    header: Option<Bytes>,
    header_wire: u64,
    source: Box<dyn Source>,
    size: u64,
    queued: u64,
    pending: Option<Bytes>,
    wire_sent: u64,
}

impl fmt::Debug for Outgoing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Outgoing")
            .field("size", &self.size)
            .field("queued", &self.queued)
            .field("wire_sent", &self.wire_sent)
            .finish_non_exhaustive()
    }
}

impl Outgoing {
    /// A transfer of `header.size` bytes of `source` (whose checksum is `header.checksum`).
    pub fn new(header: &Header, source: Box<dyn Source>) -> Result<Outgoing> {
        let encoded = header
            .encode()
            .map_err(|e| Failure::new(format!("cannot send this file: {e}")))?;
        Ok(Outgoing {
            header_wire: encoded.len() as u64 + 4,
            header: Some(Bytes::from(encoded)),
            source,
            size: header.size,
            queued: 0,
            pending: None,
            wire_sent: 0,
        })
    }

    /// Queues as much as the peer's send queue takes.
    pub fn pump(&mut self, node: &Node, peer: PeerId) -> Result<Pump> {
        loop {
            let message = if let Some(refused) = self.pending.take() {
                refused
            } else if let Some(header) = self.header.take() {
                header
            } else if self.queued < self.size {
                let want = CHUNK.min((self.size - self.queued) as usize);
                let chunk = self
                    .source
                    .read_chunk(want)
                    .map_err(|e| Failure::new(format!("reading the file failed: {e}")))?;
                if chunk.is_empty() {
                    return Err(Failure::new("the file shrank while it was being sent"));
                }
                self.queued += chunk.len() as u64;
                chunk
            } else {
                return Ok(Pump::AllQueued);
            };
            match node.send_now(peer, message.clone()) {
                Ok(()) => {}
                Err(SendError::QueueFull { .. }) => {
                    self.pending = Some(message);
                    return Ok(Pump::Blocked);
                }
                Err(_) => return Ok(Pump::PeerGone),
            }
        }
    }

    /// The socket took `bytes` (framing included) of this peer's queue.
    pub fn on_sent(&mut self, bytes: usize) {
        self.wire_sent += bytes as u64;
    }

    /// File bytes the socket has taken so far.
    pub fn payload_sent(&self) -> u64 {
        let data_wire = self.wire_sent.saturating_sub(self.header_wire);
        let frame = CHUNK as u64 + 4;
        let frames_started = data_wire.div_ceil(frame);
        data_wire.saturating_sub(4 * frames_started).min(self.size)
    }

    /// Whether the socket has taken every byte.
    pub fn all_sent(&self) -> bool {
        self.payload_sent() == self.size && self.wire_sent >= self.header_wire
    }
}

/// What a message meant to [`Incoming`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The header arrived.
    Header(Header),
    /// File bytes arrived.
    Data(Bytes),
}

/// Why the incoming side gave up on its peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProtocolError {
    /// The first message was not a valid header.
    Header(WireError),
    /// More bytes arrived than the header announced.
    Overrun {
        /// The announced size.
        size: u64,
    },
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::Header(e) => write!(f, "bad header: {e}"),
            ProtocolError::Overrun { size } => {
                write!(f, "sent more than the {size} bytes it announced")
            }
        }
    }
}

/// The receiving side: checks the header, counts and hashes the data.
#[derive(Debug, Default)]
pub struct Incoming {
    header: Option<Header>,
    received: u64,
    hasher: Sha256,
}

impl Incoming {
    /// Takes one received message.
    pub fn on_message(&mut self, msg: Bytes) -> std::result::Result<Step, ProtocolError> {
        let Some(header) = &self.header else {
            let header = Header::decode(&msg).map_err(ProtocolError::Header)?;
            self.header = Some(header.clone());
            return Ok(Step::Header(header));
        };
        let total = self.received + msg.len() as u64;
        if total > header.size {
            return Err(ProtocolError::Overrun { size: header.size });
        }
        self.received = total;
        self.hasher.update(&msg);
        Ok(Step::Data(msg))
    }

    /// The header, once it arrived.
    pub fn header(&self) -> Option<&Header> {
        self.header.as_ref()
    }

    /// File bytes received so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Whether every announced byte arrived.
    pub fn is_complete(&self) -> bool {
        self.header
            .as_ref()
            .is_some_and(|h| h.size == self.received)
    }

    /// Whether the bytes received hash to the announced checksum.
    pub fn verified(&self) -> bool {
        let sum: Checksum = self.hasher.clone().finalize().into();
        self.header.as_ref().is_some_and(|h| h.checksum == sum)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header_for(source: &PatternSource, name: &str) -> Header {
        let mut copy = source.clone();
        Header {
            name: name.into(),
            size: source.size,
            checksum: checksum_of(&mut copy, source.size).unwrap(),
        }
    }

    #[test]
    fn incoming_verifies_what_a_source_produces() {
        let mut source = PatternSource::new(3, 200_000);
        let header = header_for(&source, "f");
        let mut incoming = Incoming::default();
        let step = incoming.on_message(Bytes::from(header.encode().unwrap()));
        assert_eq!(step, Ok(Step::Header(header)));
        loop {
            let chunk = source.read_chunk(CHUNK).unwrap();
            if chunk.is_empty() {
                break;
            }
            assert!(matches!(incoming.on_message(chunk), Ok(Step::Data(_))));
        }
        assert!(incoming.is_complete());
        assert!(incoming.verified());
        assert_eq!(
            incoming.on_message(Bytes::from_static(b"x")),
            Err(ProtocolError::Overrun { size: 200_000 })
        );
    }

    #[test]
    fn a_corrupted_byte_fails_verification_and_garbage_fails_the_header() {
        let mut source = PatternSource::new(5, 1000);
        let header = header_for(&source, "f");
        let mut incoming = Incoming::default();
        incoming
            .on_message(Bytes::from(header.encode().unwrap()))
            .unwrap();
        let mut data = source.read_chunk(1000).unwrap().to_vec();
        data[500] ^= 1;
        incoming.on_message(Bytes::from(data)).unwrap();
        assert!(incoming.is_complete());
        assert!(!incoming.verified());

        let mut fresh = Incoming::default();
        assert_eq!(
            fresh.on_message(Bytes::from_static(
                b"garbage garbage garbage garbage garbage garbage garbage"
            )),
            Err(ProtocolError::Header(WireError::BadMagic))
        );
    }

    #[test]
    fn patterns_differ_by_seed_and_short_sources_are_detected() {
        let a = PatternSource::new(1, 64).read_chunk(64).unwrap();
        let b = PatternSource::new(2, 64).read_chunk(64).unwrap();
        assert_ne!(a, b);
        let mut short = PatternSource::new(1, 10);
        assert!(checksum_of(&mut short, 11).is_err());
    }
}
