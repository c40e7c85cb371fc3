//! The receive-buffer pool: segments allocated up front, lent to peers for reads.
//!
//! Received data leaves a segment as `Bytes` that share its memory (no copy). A segment whose
//! usable tail has shrunk is retired to the reclaim queue; once the application has dropped every
//! `Bytes` cut from it, it is reclaimed in place (no allocation) and lent again. So the pool never
//! grows: when every segment is lent or still referenced, reading pauses (back-pressure) until
//! memory comes back.

use bytes::BytesMut;
use std::collections::VecDeque;

/// How many retired segments one `take` examines before giving up (bounded work per call).
const RECLAIM_TRIES: usize = 4;
/// How many of the most recently retired segments one `take` tries first (cache-hot reuse).
const HOT_TRIES: usize = 8;
/// How many free segments one `take` examines for one large enough.
const FREE_SEARCH: usize = 16;

/// A segment as lent to a peer. Its bytes are, in order: unparsed received data (the peer's
/// `filled`), room already initialised by earlier use (up to `len()`), and spare capacity (up to
/// `capacity()`). Readers that fill uninitialised memory (`Engine::read_buf_from`) use the spare
/// capacity as it is; readers that need a `&mut [u8]` (`Engine::read_from`) initialise only the
/// part of the room that is not yet. So a segment is never zeroed as a whole on reuse.
pub(crate) type Segment = BytesMut;

/// Counts describing the pool, for queries and invariant checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PoolUsage {
    /// Size of one segment in bytes.
    pub segment_size: usize,
    /// Segments allocated up front.
    pub total: usize,
    /// Segments ready to lend.
    pub free: usize,
    /// Segments lent to peers for reading or holding a partial message.
    pub lent: usize,
    /// Segments waiting for the application to drop data that still points into them.
    pub reclaiming: usize,
}

impl PoolUsage {
    /// Bytes of pool memory not ready to lend (lent or still referenced by received data).
    pub fn bytes_in_use(&self) -> usize {
        (self.lent + self.reclaiming) * self.segment_size
    }
}

#[derive(Debug)]
pub(crate) struct Pool {
    segment_size: usize,
    min_room: usize,
    total: usize,
    /// Segments given back, the most recently returned last (their memory is the warmest).
    free: Vec<Segment>,
    /// Segments never lent yet (cold: lent only when nothing used before can be).
    untouched: Vec<Segment>,
    reclaiming: VecDeque<Segment>,
    lent: usize,
}

impl Pool {
    pub(crate) fn new(segment_size: usize, count: usize) -> Self {
        let untouched = (0..count).map(|_| new_segment(segment_size)).collect();
        Pool {
            segment_size,
            min_room: min_room(segment_size),
            total: count,
            free: Vec::with_capacity(count),
            untouched,
            reclaiming: VecDeque::with_capacity(count),
            lent: 0,
        }
    }

    pub(crate) fn segment_size(&self) -> usize {
        self.segment_size
    }

    /// The least room worth reading into; a segment with less is retired.
    pub(crate) fn min_room(&self) -> usize {
        self.min_room
    }

    /// Lends a segment with at least `room` usable bytes (`room` is capped at the segment size).
    ///
    /// Order matters for speed: the pool's working set should stay as small as the
    /// application's hold on received data allows, so that reads land in memory still in the
    /// CPU cache. So: a recently retired segment whose data the application has already dropped;
    /// then the most recently given back free segment that is large enough (small messages keep
    /// filling the segment already carved instead of spreading over many); then the oldest
    /// retired segments (under bulk traffic every segment of the previous batch is retired and,
    /// once the application has taken its data, reclaimable: reusing them keeps the cycle to a
    /// few segments instead of walking the whole pool); only then a segment never used, and
    /// free tails made whole.
    pub(crate) fn take(&mut self, room: usize) -> Option<Segment> {
        let room = room.clamp(1, self.segment_size);
        let newest = self.reclaiming.len();
        for i in (newest.saturating_sub(HOT_TRIES)..newest).rev() {
            if self.reclaiming[i].try_reclaim(self.segment_size) {
                self.lent += 1;
                return self.reclaiming.remove(i);
            }
        }
        // Bounded search; smaller segments stay free for readers that need less.
        let n = self.free.len();
        if let Some(i) = (n.saturating_sub(FREE_SEARCH)..n)
            .rev()
            .find(|&i| self.free[i].capacity() >= room)
        {
            self.lent += 1;
            return Some(self.free.remove(i));
        }
        for _ in 0..RECLAIM_TRIES.min(self.reclaiming.len()) {
            let mut segment = self.reclaiming.pop_front()?;
            if segment.try_reclaim(self.segment_size) {
                self.lent += 1;
                return Some(segment);
            }
            self.reclaiming.push_back(segment);
        }
        if let Some(segment) = self.untouched.pop() {
            self.lent += 1;
            return Some(segment);
        }
        // None is large enough: a free tail whose earlier data the application has dropped can
        // be made whole again in place. Tails still shared stay free for smaller requests.
        for i in (n.saturating_sub(FREE_SEARCH)..n).rev() {
            let tail = &mut self.free[i];
            tail.clear();
            if tail.try_reclaim(self.segment_size) {
                self.lent += 1;
                return Some(self.free.remove(i));
            }
        }
        None
    }

    /// Takes back a lent segment holding no data (what was received was split off and handed
    /// on). One with too little room left is retired for reclaiming.
    pub(crate) fn give_back(&mut self, segment: Segment) {
        debug_assert!(self.lent > 0, "give_back without take");
        self.lent = self.lent.saturating_sub(1);
        if segment.capacity() >= self.min_room {
            self.free.push(segment);
        } else {
            self.retire(segment);
        }
    }

    fn retire(&mut self, mut segment: Segment) {
        segment.clear();
        self.reclaiming.push_back(segment);
    }

    pub(crate) fn usage(&self) -> PoolUsage {
        PoolUsage {
            segment_size: self.segment_size,
            total: self.total,
            free: self.free.len() + self.untouched.len(),
            lent: self.lent,
            reclaiming: self.reclaiming.len(),
        }
    }

    /// Whether a `take` could succeed without waiting for the application.
    pub(crate) fn has_free(&self) -> bool {
        !self.free.is_empty() || !self.untouched.is_empty()
    }
}

/// Allocates a segment in its shared form up front: the first `split_to` of a fresh `BytesMut`
/// allocates its reference count, which would otherwise happen on the hot path.
fn new_segment(segment_size: usize) -> Segment {
    let mut segment = BytesMut::with_capacity(segment_size);
    drop(segment.split_to(0));
    segment
}

fn min_room(segment_size: usize) -> usize {
    (segment_size / 4).min(4096)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use proptest::prelude::*;

    fn conserved(pool: &Pool) -> bool {
        let u = pool.usage();
        u.free + u.lent + u.reclaiming == u.total
    }

    #[test]
    fn a_segment_comes_back_once_the_application_drops_its_data() {
        let mut pool = Pool::new(1024, 1);
        let mut seg = pool.take(1).unwrap();
        seg.resize(1024, 7);
        let held: Bytes = seg.split_to(1000).freeze();
        pool.give_back(seg);
        assert!(pool.take(1).is_none(), "all memory is still referenced");
        drop(held);
        let seg = pool.take(1).expect("reclaimed in place");
        assert_eq!(seg.capacity(), 1024);
        assert!(conserved(&pool));
    }

    #[test]
    fn exhaustion_answers_none_rather_than_allocating() {
        let mut pool = Pool::new(512, 2);
        let a = pool.take(512).unwrap();
        let b = pool.take(512).unwrap();
        assert!(pool.take(1).is_none());
        assert_eq!(pool.usage().bytes_in_use(), 1024);
        pool.give_back(a);
        pool.give_back(b);
        assert_eq!(pool.usage().free, 2);
    }

    /// Bulk traffic: every read fills a whole segment, and the application drops a batch of
    /// received data only after the next batch was read (a driver hands events over once per
    /// turn). The pool must keep cycling through about two batches of segments, not walk the
    /// whole pool (which leaves every read landing in memory long out of the CPU cache).
    #[test]
    fn bulk_reads_cycle_through_few_segments_when_the_application_keeps_up() {
        const BATCH: usize = 16;
        let mut pool = Pool::new(1024, 256);
        let mut used = std::collections::HashSet::new();
        let mut previous: Vec<Bytes> = Vec::new();
        for _ in 0..50 {
            let mut batch = Vec::new();
            for _ in 0..BATCH {
                let mut seg = pool.take(1024).expect("the pool has room");
                used.insert(seg.as_ptr() as usize);
                seg.resize(1024, 7);
                batch.push(seg.split_to(1024).freeze());
                pool.give_back(seg);
            }
            previous = std::mem::replace(&mut previous, batch);
            previous.clear(); // the application takes the batch before last
            assert!(conserved(&pool));
        }
        assert!(
            used.len() <= 2 * BATCH + HOT_TRIES,
            "{} distinct segments used for batches of {BATCH}",
            used.len()
        );
    }

    /// Small messages keep filling the segment already carved instead of each taking a
    /// reclaimed whole one (which would spread them over many segments).
    #[test]
    fn a_carved_free_segment_is_lent_before_a_reclaimed_retired_one() {
        let mut pool = Pool::new(1024, 4);
        // Retire one segment whose data is already dropped.
        let mut seg = pool.take(1024).unwrap();
        seg.resize(1024, 1);
        drop(seg.split_to(1024));
        pool.give_back(seg);
        // Carve 64 bytes off another and give it back.
        let mut carved = pool.take(64).unwrap();
        carved.resize(64, 2);
        let held = carved.split_to(64).freeze();
        let carved_at = carved.as_ptr() as usize;
        pool.give_back(carved);
        let next = pool.take(64).unwrap();
        assert_eq!(next.as_ptr() as usize, carved_at);
        drop(held);
    }

    /// A segment given back whole (the read found nothing) is warmer than a retired segment
    /// outside the hot window: it is lent first.
    #[test]
    fn a_segment_given_back_whole_is_lent_before_an_older_retired_one() {
        let mut pool = Pool::new(1024, 16);
        let retire = |pool: &mut Pool| {
            let mut seg = pool.take(1024).unwrap();
            seg.resize(1024, 1);
            let held = seg.split_to(1024).freeze();
            pool.give_back(seg);
            held
        };
        drop(retire(&mut pool)); // the oldest retired segment, reclaimable
        let held: Vec<Bytes> = (0..HOT_TRIES).map(|_| retire(&mut pool)).collect();
        let whole = pool.take(1024).unwrap();
        let whole_at = whole.as_ptr() as usize;
        pool.give_back(whole);
        let next = pool.take(1024).unwrap();
        assert_eq!(next.as_ptr() as usize, whole_at);
        drop(held);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Take(usize),
        Cut(usize, usize),
        GiveBack(usize),
        DropHeld(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (1usize..2048).prop_map(Op::Take),
            (0usize..8, 0usize..2048).prop_map(|(i, n)| Op::Cut(i, n)),
            (0usize..8).prop_map(Op::GiveBack),
            (0usize..64).prop_map(Op::DropHeld),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        /// Whatever lending, cutting, returning and dropping happens, every segment is exactly one
        /// of free, lent or reclaiming, and the pool never lends more than it has.
        #[test]
        fn pool_segments_are_conserved(ops in proptest::collection::vec(op(), 1..200)) {
            let mut pool = Pool::new(1024, 4);
            let mut lent: Vec<Segment> = Vec::new();
            let mut held: Vec<Bytes> = Vec::new();
            for op in ops {
                match op {
                    Op::Take(room) => {
                        if let Some(mut seg) = pool.take(room) {
                            prop_assert!(seg.capacity() >= room.min(1024));
                            let cap = seg.capacity();
                            seg.resize(cap, 1);
                            lent.push(seg);
                        }
                    }
                    Op::Cut(i, n) => {
                        if let Some(seg) = lent.get_mut(i) {
                            let n = n.min(seg.len());
                            held.push(seg.split_to(n).freeze());
                        }
                    }
                    Op::GiveBack(i) => {
                        if i < lent.len() {
                            pool.give_back(lent.swap_remove(i));
                        }
                    }
                    Op::DropHeld(i) => {
                        if i < held.len() {
                            held.swap_remove(i);
                        }
                    }
                }
                prop_assert!(conserved(&pool));
                prop_assert_eq!(pool.usage().lent, lent.len());
            }
            for seg in lent.drain(..) {
                pool.give_back(seg);
            }
            held.clear();
            // With nothing referenced, every segment can be lent again.
            let mut again = Vec::new();
            while let Some(seg) = pool.take(1) {
                again.push(seg);
            }
            prop_assert_eq!(again.len(), 4);
        }
    }
}
