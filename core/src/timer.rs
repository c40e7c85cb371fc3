//! Deadlines for peers, in one heap with lazy deletion.
//!
//! Entries are never removed early: each peer remembers the deadline it currently wants per kind,
//! and an entry that no longer matches is discarded when it surfaces. So arming and re-arming is
//! O(log n) without searching, and the heap's memory is reused in steady state.

use crate::clock::Nanos;
use crate::PeerId;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// What a deadline is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum TimerKind {
    /// The outbound connect must complete.
    Connect,
    /// Check whether the peer has been idle too long.
    Idle,
    /// A graceful close must complete.
    Linger,
    /// The peer's download budget returns.
    ReadBudget,
    /// The peer's upload budget returns.
    WriteBudget,
    /// The secure handshake must finish.
    Handshake,
    /// Check whether a secure peer has gone quiet (its expanded keys can be dropped).
    Cold,
}

impl TimerKind {
    pub(crate) const COUNT: usize = 7;

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Entry {
    at: Nanos,
    peer: PeerId,
    kind: TimerKind,
}

#[derive(Debug, Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<Entry>>,
}

impl Timers {
    pub(crate) fn push(&mut self, at: Nanos, peer: PeerId, kind: TimerKind) {
        self.heap.push(Reverse(Entry { at, peer, kind }));
    }

    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }

    /// Keeps only the entries `valid` accepts (used to drop entries of peers that are gone).
    pub(crate) fn retain(&mut self, mut valid: impl FnMut(PeerId, TimerKind, Nanos) -> bool) {
        self.heap.retain(|Reverse(e)| valid(e.peer, e.kind, e.at));
    }

    /// The earliest entry's deadline (possibly stale: waking for it is harmless).
    pub(crate) fn next(&self) -> Option<Nanos> {
        self.heap.peek().map(|Reverse(e)| e.at)
    }

    /// Removes and returns one entry due at `now`.
    pub(crate) fn pop_due(&mut self, now: Nanos) -> Option<(PeerId, TimerKind, Nanos)> {
        match self.heap.peek() {
            Some(Reverse(e)) if e.at <= now => {
                let Reverse(e) = self.heap.pop()?;
                Some((e.peer, e.kind, e.at))
            }
            _ => None,
        }
    }
}

/// The deadlines one peer currently wants, by kind (`None`: not armed). Stored as plain
/// instants with `Nanos::MAX` for "not armed" (half the size of `Option`s, in every peer): a
/// deadline that far away would never fire anyway.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PeerDeadlines([Nanos; TimerKind::COUNT]);

impl Default for PeerDeadlines {
    fn default() -> Self {
        PeerDeadlines([Nanos::MAX; TimerKind::COUNT])
    }
}

impl PeerDeadlines {
    pub(crate) fn get(&self, kind: TimerKind) -> Option<Nanos> {
        Some(self.0[kind.index()]).filter(|&at| at != Nanos::MAX)
    }

    pub(crate) fn set(&mut self, kind: TimerKind, at: Option<Nanos>) {
        self.0[kind.index()] = at.unwrap_or(Nanos::MAX);
    }
}
