//! Cutting a received byte stream into messages, and framing messages for sending.
//!
//! The decoder works in place on the peer's lent segment: complete messages are split off its
//! front as `Bytes` (no copy). A message that cannot fit one segment is gathered in a buffer of
//! its own ("spilled"), bounded by the maximum frame size.

use crate::pool::Segment;
use crate::Framing;
use bytes::{Buf, Bytes, BytesMut};

/// The framing header of a length-prefixed message.
pub(crate) const LENGTH_PREFIX: usize = 4;

/// A received message exceeded the maximum frame size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FrameTooLarge {
    pub(crate) len: u64,
}

/// A message being gathered outside the pool. Its buffer grows with the bytes that actually
/// arrive (never to an announced length up front), so memory follows what a remote sent.
#[derive(Debug)]
struct Spill {
    buf: BytesMut,
    /// Length-prefixed: payload bytes still to come, or `None` while `buf` holds an incomplete
    /// length prefix. Delimited: unused.
    need: Option<usize>,
}

/// First capacity of a spill buffer that will hold `expected` bytes and has `have` now.
fn spill_capacity(expected: usize, have: usize) -> usize {
    expected.min(have.saturating_mul(2).max(64 * 1024))
}

/// Per-connection receive state.
#[derive(Debug)]
pub(crate) struct Decoder {
    framing: Framing,
    max: usize,
    /// Delimited: how many unparsed bytes at the segment's front were already scanned.
    scanned: usize,
    /// Boxed: a peer holds a partial message outside the pool rarely, and every peer carries
    /// the field.
    spill: Option<Box<Spill>>,
}

impl Decoder {
    pub(crate) fn new(framing: Framing, max: usize) -> Self {
        Decoder {
            framing,
            max,
            scanned: 0,
            spill: None,
        }
    }

    /// Bytes held in the spill buffer (for memory accounting).
    pub(crate) fn spilled_bytes(&self) -> usize {
        self.spill.as_ref().map_or(0, |s| s.buf.capacity())
    }

    /// Splits every complete message off the front of `segment[..*filled]` and hands it to `out`.
    /// `segment_size` decides when a length-prefixed message must spill.
    pub(crate) fn decode(
        &mut self,
        segment: &mut Segment,
        filled: &mut usize,
        segment_size: usize,
        out: &mut impl FnMut(Bytes),
    ) -> Result<(), FrameTooLarge> {
        match self.framing {
            Framing::Raw => {
                if *filled > 0 {
                    out(segment.split_to(*filled).freeze());
                    *filled = 0;
                }
                Ok(())
            }
            Framing::LengthPrefixed => self.decode_prefixed(segment, filled, segment_size, out),
            Framing::Delimited(delimiter) => self.decode_delimited(segment, filled, delimiter, out),
        }
    }

    fn decode_prefixed(
        &mut self,
        segment: &mut Segment,
        filled: &mut usize,
        segment_size: usize,
        out: &mut impl FnMut(Bytes),
    ) -> Result<(), FrameTooLarge> {
        loop {
            if let Some(spill) = &mut self.spill {
                let need = match spill.need {
                    Some(need) => need,
                    None => {
                        // Complete the length prefix first.
                        let k = (LENGTH_PREFIX - spill.buf.len()).min(*filled);
                        spill.buf.extend_from_slice(&segment[..k]);
                        segment.advance(k);
                        *filled -= k;
                        if spill.buf.len() < LENGTH_PREFIX {
                            return Ok(());
                        }
                        let mut header = [0u8; LENGTH_PREFIX];
                        header.copy_from_slice(&spill.buf[..LENGTH_PREFIX]);
                        let len = u32::from_be_bytes(header) as usize;
                        if len > self.max {
                            return Err(FrameTooLarge { len: len as u64 });
                        }
                        spill.buf.clear();
                        spill.buf.reserve(spill_capacity(len, *filled));
                        spill.need = Some(len);
                        len
                    }
                };
                let k = need.min(*filled);
                spill.buf.extend_from_slice(&segment[..k]);
                segment.advance(k);
                *filled -= k;
                if need > k {
                    spill.need = Some(need - k);
                    return Ok(());
                }
                out(spill.buf.split().freeze());
                self.spill = None;
                continue;
            }
            if *filled < LENGTH_PREFIX {
                return Ok(());
            }
            let mut header = [0u8; LENGTH_PREFIX];
            header.copy_from_slice(&segment[..LENGTH_PREFIX]);
            let len = u32::from_be_bytes(header) as usize;
            if len > self.max {
                return Err(FrameTooLarge { len: len as u64 });
            }
            if *filled >= LENGTH_PREFIX + len {
                segment.advance(LENGTH_PREFIX);
                out(segment.split_to(len).freeze());
                *filled -= LENGTH_PREFIX + len;
                continue;
            }
            if LENGTH_PREFIX + len + min_tail(segment_size) <= segment_size {
                // Fits a segment: wait for the rest (the engine compacts when room runs out).
                return Ok(());
            }
            segment.advance(LENGTH_PREFIX);
            *filled -= LENGTH_PREFIX;
            let buf = BytesMut::with_capacity(spill_capacity(len, *filled));
            self.spill = Some(Box::new(Spill {
                buf,
                need: Some(len),
            }));
        }
    }

    fn decode_delimited(
        &mut self,
        segment: &mut Segment,
        filled: &mut usize,
        delimiter: u8,
        out: &mut impl FnMut(Bytes),
    ) -> Result<(), FrameTooLarge> {
        loop {
            let found = segment[self.scanned..*filled]
                .iter()
                .position(|&b| b == delimiter);
            let Some(offset) = found else {
                self.scanned = *filled;
                let spilled = self.spill.as_ref().map_or(0, |s| s.buf.len());
                if spilled + *filled > self.max {
                    return Err(FrameTooLarge {
                        len: (spilled + *filled) as u64,
                    });
                }
                return Ok(());
            };
            let end = self.scanned + offset;
            self.scanned = 0;
            let message = match self.spill.take() {
                Some(mut spill) => {
                    spill.buf.extend_from_slice(&segment[..end]);
                    segment.advance(end);
                    spill.buf.freeze()
                }
                None => segment.split_to(end).freeze(),
            };
            segment.advance(1);
            *filled -= end + 1;
            if message.len() > self.max {
                return Err(FrameTooLarge {
                    len: message.len() as u64,
                });
            }
            out(message);
        }
    }

    /// Moves the partial message at the front of the segment into the spill buffer, so the
    /// segment can be returned to the pool: when a partial message fills a segment, or when the
    /// pool needs an idle peer's segment back. Afterwards `*filled` is 0 unless (never after a
    /// `decode`) complete messages followed it.
    pub(crate) fn spill(&mut self, segment: &mut Segment, filled: &mut usize) {
        let data = &segment[..*filled];
        match (&mut self.spill, self.framing) {
            (Some(spill), _) => spill.buf.extend_from_slice(data),
            (None, Framing::LengthPrefixed) if data.len() >= LENGTH_PREFIX => {
                let mut header = [0u8; LENGTH_PREFIX];
                header.copy_from_slice(&data[..LENGTH_PREFIX]);
                let len = u32::from_be_bytes(header) as usize;
                if len > self.max {
                    // Keep just the prefix: the next decode rejects it.
                    self.spill = Some(Box::new(Spill {
                        buf: BytesMut::from(&header[..]),
                        need: None,
                    }));
                    segment.advance(*filled);
                    *filled = 0;
                    return;
                }
                // Only this message's bytes move; the caller keeps any that follow it.
                let payload = &data[LENGTH_PREFIX..];
                let k = payload.len().min(len);
                let mut buf = BytesMut::with_capacity(spill_capacity(len, k));
                buf.extend_from_slice(&payload[..k]);
                self.spill = Some(Box::new(Spill {
                    buf,
                    need: Some(len - k),
                }));
                segment.advance(LENGTH_PREFIX + k);
                *filled -= LENGTH_PREFIX + k;
                self.scanned = 0;
                return;
            }
            (None, Framing::LengthPrefixed) => {
                let mut buf = BytesMut::with_capacity(LENGTH_PREFIX);
                buf.extend_from_slice(data);
                self.spill = Some(Box::new(Spill { buf, need: None }));
            }
            (None, _) => {
                let mut buf = BytesMut::with_capacity(data.len().saturating_mul(2).max(256));
                buf.extend_from_slice(data);
                self.spill = Some(Box::new(Spill { buf, need: None }));
            }
        }
        segment.advance(*filled);
        *filled = 0;
        self.scanned = 0;
    }
}

/// Room a segment must keep free after a partial message for a read to be worthwhile.
pub(crate) fn min_tail(segment_size: usize) -> usize {
    (segment_size / 4).min(4096)
}

/// `0..=255`, so a delimiter can be queued as a static `Bytes` without allocating.
static BYTE_VALUES: [u8; 256] = {
    let mut all = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        all[i] = i as u8;
        i += 1;
    }
    all
};

/// The delimiter byte as a static `Bytes`.
pub(crate) fn delimiter_bytes(delimiter: u8) -> Bytes {
    let at = delimiter as usize;
    Bytes::from_static(&BYTE_VALUES[at..at + 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(framing: Framing, max: usize, segment_size: usize, wire: &[u8]) -> Vec<Bytes> {
        let mut decoder = Decoder::new(framing, max);
        let mut segment = BytesMut::zeroed(segment_size);
        let mut filled = 0;
        let mut out = Vec::new();
        for byte in wire {
            if filled == segment.len() {
                // What the engine does: compact into a fresh segment, or spill when that cannot
                // leave a useful tail.
                let mut fresh = BytesMut::zeroed(segment_size);
                if filled + min_tail(segment_size) <= segment_size {
                    fresh[..filled].copy_from_slice(&segment[..filled]);
                } else {
                    decoder.spill(&mut segment, &mut filled);
                }
                segment = fresh;
            }
            segment[filled] = *byte;
            filled += 1;
            decoder
                .decode(&mut segment, &mut filled, segment_size, &mut |m| {
                    out.push(m)
                })
                .unwrap();
            if segment.is_empty() {
                segment = BytesMut::zeroed(segment_size);
            }
        }
        out
    }

    #[test]
    fn length_prefixed_messages_reassemble_byte_by_byte() {
        let mut wire = Vec::new();
        for m in [&b"hello"[..], b"", b"world!"] {
            wire.extend_from_slice(&(m.len() as u32).to_be_bytes());
            wire.extend_from_slice(m);
        }
        let got = decode_all(Framing::LengthPrefixed, 100, 512, &wire);
        assert_eq!(got, vec![&b"hello"[..], b"", b"world!"]);
    }

    #[test]
    fn a_length_over_the_maximum_is_rejected_from_the_header_alone() {
        let mut decoder = Decoder::new(Framing::LengthPrefixed, 10);
        let mut segment = BytesMut::zeroed(512);
        segment[..4].copy_from_slice(&11u32.to_be_bytes());
        let mut filled = 4;
        let r = decoder.decode(&mut segment, &mut filled, 512, &mut |_| {});
        assert_eq!(r, Err(FrameTooLarge { len: 11 }));
    }

    #[test]
    fn delimited_messages_longer_than_a_segment_spill_and_still_arrive_whole() {
        let mut wire = vec![b'x'; 2000];
        wire.push(0);
        wire.extend_from_slice(b"ab\0");
        let got = decode_all(Framing::Delimited(0), 4096, 512, &wire);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].len(), 2000);
        assert_eq!(&got[1][..], b"ab");
    }

    #[test]
    fn a_delimited_message_without_end_past_the_maximum_is_rejected() {
        let mut decoder = Decoder::new(Framing::Delimited(b'\n'), 8);
        let mut segment = BytesMut::zeroed(512);
        let mut filled = 9;
        let r = decoder.decode(&mut segment, &mut filled, 512, &mut |_| {});
        assert_eq!(r, Err(FrameTooLarge { len: 9 }));
    }

    #[test]
    fn delimiter_bytes_are_static_single_bytes() {
        assert_eq!(&delimiter_bytes(4)[..], &[4]);
        assert_eq!(&delimiter_bytes(255)[..], &[255]);
    }
}
