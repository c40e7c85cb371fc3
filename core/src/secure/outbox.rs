//! Sealed bytes on their way to the socket, and the free list their buffers come from.
//!
//! A secure peer's queued plaintext is sealed into an outbox just before it is written: at most
//! [`TARGET`] wire bytes at a time, in transport messages of at most 65,519 plaintext bytes. An
//! outbox is lent by the engine's free list while it holds unwritten bytes and given back when
//! it drains, so an idle peer holds none and steady-state sending allocates nothing.

use smallvec::SmallVec;

/// How many wire bytes one outbox is filled with before writing (two full transport messages).
pub(crate) const TARGET: usize = 2 * (u16::MAX as usize + 2);
/// How many drained outboxes the engine keeps for reuse.
const KEEP_FREE: usize = 64;

/// One Noise message in the outbox: where it ends and what it carries for the application.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Record {
    /// Offset just past the message in the outbox buffer.
    pub(crate) end: usize,
    /// Application bytes it carries (0 for handshake messages).
    pub(crate) plain: u64,
    /// Application messages completed by those bytes.
    pub(crate) messages: u64,
}

/// Wire bytes sealed for one peer and not yet taken by its socket.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    pub(crate) buf: Vec<u8>,
    /// How much of `buf` the socket has taken.
    pub(crate) pos: usize,
    /// Messages not yet wholly written, in order.
    pub(crate) records: SmallVec<[Record; 4]>,
}

/// What wholly written records carried.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Delivered {
    pub(crate) plain: u64,
    pub(crate) messages: u64,
}

impl Outbox {
    pub(crate) fn unwritten(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// The socket took `n` more bytes: returns what the records completed by them carried.
    pub(crate) fn advance(&mut self, n: usize) -> Delivered {
        self.pos = (self.pos + n).min(self.buf.len());
        let mut done = Delivered::default();
        let whole = self
            .records
            .iter()
            .take_while(|r| r.end <= self.pos)
            .count();
        for r in self.records.drain(..whole) {
            done.plain += r.plain;
            done.messages += r.messages;
        }
        done
    }

    /// Application bytes sealed here but not wholly written: unsent if the peer closes now.
    pub(crate) fn unsent(&self) -> u64 {
        self.records.iter().map(|r| r.plain).sum()
    }

    fn reset(&mut self) {
        self.buf.clear();
        self.pos = 0;
        self.records.clear();
    }
}

/// Drained outboxes kept for reuse (their buffers keep their capacity).
#[derive(Debug, Default)]
pub(crate) struct FreeOutboxes {
    // Boxed: a peer holds its outbox as a `Box` (a pointer in every channel), and moving the
    // box in and out of the free list allocates nothing.
    #[allow(clippy::vec_box)]
    free: Vec<Box<Outbox>>,
}

impl FreeOutboxes {
    pub(crate) fn take(&mut self) -> Box<Outbox> {
        self.free.pop().unwrap_or_default()
    }

    pub(crate) fn give_back(&mut self, mut outbox: Box<Outbox>) {
        if self.free.len() < KEEP_FREE {
            outbox.reset();
            self.free.push(outbox);
        }
    }

    /// Heap bytes the free list holds.
    pub(crate) fn bytes(&self) -> usize {
        self.free
            .iter()
            .map(|o| o.buf.capacity() + core::mem::size_of::<Outbox>())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_counts_as_written_only_when_its_last_byte_is() {
        let mut outbox = Outbox::default();
        outbox.buf.extend_from_slice(&[0; 30]);
        outbox.records.push(Record {
            end: 10,
            plain: 4,
            messages: 1,
        });
        outbox.records.push(Record {
            end: 30,
            plain: 12,
            messages: 2,
        });
        assert_eq!(outbox.advance(9), Delivered::default());
        assert_eq!(outbox.unsent(), 16);
        assert_eq!(
            outbox.advance(1),
            Delivered {
                plain: 4,
                messages: 1
            }
        );
        assert_eq!(
            outbox.advance(25),
            Delivered {
                plain: 12,
                messages: 2
            }
        );
        assert!(outbox.is_empty());
        assert_eq!(outbox.unsent(), 0);
    }
}
