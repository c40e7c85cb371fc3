//! The queues between the application's threads and the IO thread, without an allocation per
//! item: each side keeps a buffer, and a hand-over swaps the whole buffer (an empty one with its
//! capacity goes back the other way). `std::sync::mpsc` allocates a block every 31 messages,
//! which made commands and events the driver's only steady-state allocations.

use std::collections::VecDeque;
use std::mem;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

/// Something a [`Handoff`] carries: items appended in order, taken all at once.
pub(crate) trait Batch: Default {
    fn is_empty(&self) -> bool;
    /// Moves everything of `other` to the end of `self`; `other` keeps its capacity.
    fn append(&mut self, other: &mut Self);
}

impl<T> Batch for Vec<T> {
    fn is_empty(&self) -> bool {
        Vec::is_empty(self)
    }

    fn append(&mut self, other: &mut Self) {
        Vec::append(self, other);
    }
}

/// What a take found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Taken {
    /// Items were moved out.
    Some,
    /// Nothing queued (and, for a timed wait, the time ran out).
    Empty,
    /// Nothing queued, and nothing ever will be: the other side is gone.
    Closed,
}

#[derive(Debug, Default)]
struct State<B> {
    batch: B,
    closed: bool,
    /// A consumer sleeps on the condition variable (notify only then: a notify is a system call).
    waiting: bool,
}

/// A many-producer, one-consumer queue of `B`'s items that hands them over in batches.
#[derive(Debug, Default)]
pub(crate) struct Handoff<B> {
    state: Mutex<State<B>>,
    ready: Condvar,
}

impl<B: Batch> Handoff<B> {
    fn lock(&self) -> MutexGuard<'_, State<B>> {
        // Every critical section leaves the state consistent: a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends everything of `items` (left empty, with its capacity). False, with `items`
    /// cleared, once the queue is closed.
    pub(crate) fn push_all(&self, items: &mut B) -> bool {
        let mut state = self.lock();
        if state.closed {
            *items = B::default();
            return false;
        }
        if state.batch.is_empty() {
            mem::swap(&mut state.batch, items);
        } else {
            state.batch.append(items);
        }
        if state.waiting {
            state.waiting = false;
            self.ready.notify_one();
        }
        true
    }

    /// Adds items through `add` (e.g. one push). False, without calling it, once closed.
    pub(crate) fn push_with(&self, add: impl FnOnce(&mut B)) -> bool {
        let mut state = self.lock();
        if state.closed {
            return false;
        }
        add(&mut state.batch);
        if state.waiting {
            state.waiting = false;
            self.ready.notify_one();
        }
        true
    }

    /// Swaps everything queued into `out`, which must be empty (its capacity goes to the queue).
    pub(crate) fn take_all(&self, out: &mut B) -> Taken {
        let mut state = self.lock();
        Self::take_locked(&mut state, out)
    }

    fn take_locked(state: &mut State<B>, out: &mut B) -> Taken {
        if !state.batch.is_empty() {
            mem::swap(&mut state.batch, out);
            Taken::Some
        } else if state.closed {
            Taken::Closed
        } else {
            Taken::Empty
        }
    }

    /// Like [`take_all`](Self::take_all), sleeping until something arrives, the queue closes
    /// or `deadline` (if any) passes.
    pub(crate) fn wait_take(&self, out: &mut B, deadline: Option<Instant>) -> Taken {
        let mut state = self.lock();
        loop {
            match Self::take_locked(&mut state, out) {
                Taken::Empty => {}
                taken => return taken,
            }
            state.waiting = true;
            state = match deadline {
                None => self
                    .ready
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner),
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        state.waiting = false;
                        return Taken::Empty;
                    }
                    self.ready
                        .wait_timeout(state, left)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
            };
        }
    }

    /// No more items will be taken or pushed: pushes fail from now on, and a consumer gets
    /// [`Taken::Closed`] once it has taken what was queued.
    pub(crate) fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        self.ready.notify_all();
    }
}

/// Moves every item of `from` to the back of `to`, keeping both allocations.
pub(crate) fn drain_into<T>(from: &mut Vec<T>, to: &mut VecDeque<T>) {
    to.extend(from.drain(..));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn batches_arrive_in_order_and_buffers_are_swapped_not_reallocated() {
        let q: Handoff<Vec<u32>> = Handoff::default();
        let mut producer = Vec::with_capacity(8);
        producer.extend([1, 2, 3]);
        assert!(q.push_all(&mut producer));
        assert!(producer.is_empty());
        producer.extend([4, 5]);
        assert!(q.push_all(&mut producer));
        assert!(q.push_with(|b| b.push(6)));
        let mut got = Vec::new();
        assert_eq!(q.take_all(&mut got), Taken::Some);
        assert_eq!(got, [1, 2, 3, 4, 5, 6]);
        assert!(got.capacity() >= 8, "the producer's buffer came over whole");
        got.clear();
        assert_eq!(q.take_all(&mut got), Taken::Empty);
        q.close();
        assert!(!q.push_with(|b| b.push(7)));
        assert_eq!(q.take_all(&mut got), Taken::Closed);
    }

    #[test]
    fn a_waiting_consumer_wakes_for_a_push_a_close_or_its_deadline() {
        let q: Arc<Handoff<Vec<u32>>> = Arc::default();
        let producer = {
            let q = Arc::clone(&q);
            std::thread::spawn(move || {
                assert!(q.push_with(|b| b.push(9)));
                q.close();
            })
        };
        let mut got = Vec::new();
        let mut items = Vec::new();
        loop {
            match q.wait_take(&mut got, None) {
                Taken::Some => items.append(&mut got),
                Taken::Closed => break,
                Taken::Empty => panic!("no deadline was given"),
            }
        }
        producer.join().expect("producer");
        assert_eq!(items, [9]);
        let idle: Handoff<Vec<u32>> = Handoff::default();
        let deadline = Instant::now() + Duration::from_millis(20);
        assert_eq!(idle.wait_take(&mut got, Some(deadline)), Taken::Empty);
        assert!(Instant::now() >= deadline);
    }
}
