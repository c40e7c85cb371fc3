//! A peer's send queue: accepted messages, framing included, waiting for the socket.
//!
//! Messages are queued as the application's own `Bytes` (no copy); a length prefix is stored
//! inline and a delimiter is a static `Bytes`, so queueing never allocates once the queue's ring
//! buffer has grown to its working size.

use crate::frame::{delimiter_bytes, LENGTH_PREFIX};
use crate::Framing;
use bytes::{Buf, Bytes};
use std::collections::VecDeque;
use std::io::IoSlice;

/// Most slices handed to one vectored write.
pub(crate) const MAX_SLICES: usize = 64;

#[derive(Debug)]
enum Chunk {
    /// Payload bytes; `last` marks the final chunk of a message.
    Data { bytes: Bytes, last: bool },
    /// A length prefix, `at` bytes of it already written.
    Prefix {
        header: [u8; LENGTH_PREFIX],
        at: u8,
        last: bool,
    },
}

impl Chunk {
    fn remaining(&self) -> &[u8] {
        match self {
            Chunk::Data { bytes, .. } => bytes,
            Chunk::Prefix { header, at, .. } => &header[usize::from(*at)..],
        }
    }

    fn is_last(&self) -> bool {
        match self {
            Chunk::Data { last, .. } | Chunk::Prefix { last, .. } => *last,
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct SendQueue {
    chunks: VecDeque<Chunk>,
    queued: u64,
}

impl SendQueue {
    /// Bytes accepted and not yet written, framing included.
    pub(crate) fn queued(&self) -> u64 {
        self.queued
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.queued == 0
    }

    /// Queues one message with its framing. The caller has validated it.
    pub(crate) fn push(&mut self, framing: Framing, payload: Bytes) {
        self.queued += framing.framed_len(payload.len());
        match framing {
            Framing::Raw => {
                if !payload.is_empty() {
                    self.chunks.push_back(Chunk::Data {
                        bytes: payload,
                        last: true,
                    });
                }
            }
            Framing::LengthPrefixed => {
                // The caller checked the length against the frame limit, which fits a u32.
                let header = u32::try_from(payload.len())
                    .unwrap_or(u32::MAX)
                    .to_be_bytes();
                let empty = payload.is_empty();
                self.chunks.push_back(Chunk::Prefix {
                    header,
                    at: 0,
                    last: empty,
                });
                if !empty {
                    self.chunks.push_back(Chunk::Data {
                        bytes: payload,
                        last: true,
                    });
                }
            }
            Framing::Delimited(delimiter) => {
                if !payload.is_empty() {
                    self.chunks.push_back(Chunk::Data {
                        bytes: payload,
                        last: false,
                    });
                }
                self.chunks.push_back(Chunk::Data {
                    bytes: delimiter_bytes(delimiter),
                    last: true,
                });
            }
        }
    }

    /// Fills `out` with the front of the queue, at most `budget` bytes; returns the slice count.
    pub(crate) fn slices<'a>(&'a self, budget: usize, out: &mut [IoSlice<'a>]) -> usize {
        let mut left = budget;
        let mut n = 0;
        for chunk in &self.chunks {
            if left == 0 || n == out.len() {
                break;
            }
            let bytes = chunk.remaining();
            let take = bytes.len().min(left);
            out[n] = IoSlice::new(&bytes[..take]);
            n += 1;
            left -= take;
        }
        n
    }

    /// Drops `written` bytes from the front; returns how many messages were completed.
    pub(crate) fn advance(&mut self, written: usize) -> u64 {
        let mut left = written;
        let mut completed = 0;
        while left > 0 {
            let Some(front) = self.chunks.front_mut() else {
                break;
            };
            let len = front.remaining().len();
            if left < len {
                match front {
                    Chunk::Data { bytes, .. } => bytes.advance(left),
                    // left < len <= 4, so this fits a u8.
                    Chunk::Prefix { at, .. } => *at += left as u8,
                }
                self.queued -= left as u64;
                break;
            }
            left -= len;
            self.queued -= len as u64;
            if front.is_last() {
                completed += 1;
            }
            self.chunks.pop_front();
        }
        completed
    }

    /// Empties the queue; returns the bytes dropped.
    pub(crate) fn clear(&mut self) -> u64 {
        self.chunks.clear();
        std::mem::take(&mut self.queued)
    }

    /// Capacity of the ring buffer, for memory accounting.
    pub(crate) fn ring_bytes(&self) -> usize {
        self.chunks.capacity() * std::mem::size_of::<Chunk>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(queue: &mut SendQueue, step: usize) -> Vec<u8> {
        let mut wire = Vec::new();
        while !queue.is_empty() {
            let mut slices = [IoSlice::new(&[]); MAX_SLICES];
            let n = queue.slices(step, &mut slices);
            let mut took = 0;
            for s in &slices[..n] {
                wire.extend_from_slice(s);
                took += s.len();
            }
            queue.advance(took);
        }
        wire
    }

    #[test]
    fn framing_is_written_in_front_of_or_after_each_payload() {
        let mut q = SendQueue::default();
        q.push(Framing::LengthPrefixed, Bytes::from_static(b"abc"));
        q.push(Framing::LengthPrefixed, Bytes::new());
        assert_eq!(q.queued(), 11);
        assert_eq!(drain(&mut q, 3), [0, 0, 0, 3, b'a', b'b', b'c', 0, 0, 0, 0]);

        q.push(Framing::Delimited(b'\n'), Bytes::from_static(b"hi"));
        assert_eq!(drain(&mut q, 1), b"hi\n");
    }

    #[test]
    fn completed_messages_are_counted_when_their_last_byte_is_written() {
        let mut q = SendQueue::default();
        q.push(Framing::LengthPrefixed, Bytes::from_static(b"abcd"));
        q.push(Framing::Raw, Bytes::from_static(b"xy"));
        assert_eq!(q.advance(7), 0);
        assert_eq!(q.advance(1), 1);
        assert_eq!(q.advance(2), 1);
        assert!(q.is_empty());
    }

    #[test]
    fn clearing_reports_every_unwritten_byte() {
        let mut q = SendQueue::default();
        q.push(Framing::Raw, Bytes::from_static(b"0123456789"));
        q.advance(4);
        assert_eq!(q.clear(), 6);
        assert_eq!(q.queued(), 0);
    }
}
