//! The command and event queues between the handles and the driver task, without an allocation
//! per item: a `VecDeque` behind a short lock keeps its capacity, and waiting tasks park their
//! `Waker` in a list that keeps its capacity too. (`async-channel` allocates a block every 31
//! items and an event listener for each wait, which made it the driver's only steady-state
//! allocations.)

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

#[derive(Debug)]
struct State<T> {
    items: VecDeque<T>,
    /// Nothing more will be pushed (or taken): pops report the end once `items` is empty.
    closed: bool,
    /// The producers' side let go (every handle dropped): see [`Queue::producers_gone`].
    producers_gone: bool,
    /// Tasks waiting for an item.
    waiters: Vec<Waker>,
    /// Tasks waiting for the close.
    close_waiters: Vec<Waker>,
}

/// An unbounded many-producer, many-consumer queue (each item goes to one consumer).
#[derive(Debug)]
pub(crate) struct Queue<T> {
    state: Mutex<State<T>>,
}

impl<T> Default for Queue<T> {
    fn default() -> Self {
        Queue {
            state: Mutex::new(State {
                items: VecDeque::new(),
                closed: false,
                producers_gone: false,
                waiters: Vec::new(),
                close_waiters: Vec::new(),
            }),
        }
    }
}

/// Why nothing was popped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Empty {
    /// Nothing queued now.
    Now,
    /// Nothing queued, and nothing ever will be.
    Closed,
}

fn wake_all(wakers: &mut Vec<Waker>) {
    for waker in wakers.drain(..) {
        waker.wake();
    }
}

fn register(wakers: &mut Vec<Waker>, cx: &Context<'_>) {
    if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
        wakers.push(cx.waker().clone());
    }
}

impl<T> Queue<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // Every critical section leaves the state consistent: a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `item`; gives it back once the queue is closed.
    pub(crate) fn push(&self, item: T) -> Result<(), T> {
        let mut state = self.lock();
        if state.closed {
            return Err(item);
        }
        state.items.push_back(item);
        wake_all(&mut state.waiters);
        Ok(())
    }

    /// Queues every item of `items` (left empty, with its capacity) under one lock; false, with
    /// `items` cleared, once the queue is closed.
    pub(crate) fn push_all(&self, items: &mut Vec<T>) -> bool {
        if items.is_empty() {
            return true;
        }
        let mut state = self.lock();
        if state.closed {
            items.clear();
            return false;
        }
        state.items.extend(items.drain(..));
        wake_all(&mut state.waiters);
        true
    }

    /// Queues `items` (left empty) and closes the queue under one lock, so no other producer's
    /// item can follow them. A queue already closed drops them.
    pub(crate) fn push_all_and_close(&self, items: &mut Vec<T>) {
        let mut state = self.lock();
        if state.closed {
            items.clear();
        } else {
            state.items.extend(items.drain(..));
        }
        state.closed = true;
        wake_all(&mut state.waiters);
        wake_all(&mut state.close_waiters);
    }

    /// The next item if one is queued.
    pub(crate) fn try_pop(&self) -> Result<T, Empty> {
        let mut state = self.lock();
        match state.items.pop_front() {
            Some(item) => Ok(item),
            None if state.closed => Err(Empty::Closed),
            None => Err(Empty::Now),
        }
    }

    /// The next item, or `Ready(None)` once the queue is closed and empty; otherwise the task
    /// is woken by the next push or the close.
    pub(crate) fn poll_pop(&self, cx: &Context<'_>) -> Poll<Option<T>> {
        let mut state = self.lock();
        if let Some(item) = state.items.pop_front() {
            return Poll::Ready(Some(item));
        }
        if state.closed {
            return Poll::Ready(None);
        }
        register(&mut state.waiters, cx);
        Poll::Pending
    }

    /// [`poll_pop`](Self::poll_pop) as a future.
    pub(crate) async fn pop(&self) -> Option<T> {
        poll_fn(|cx| self.poll_pop(cx)).await
    }

    /// Closes the queue: pushes fail, and consumers get the end once the queue is drained.
    pub(crate) fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        wake_all(&mut state.waiters);
        wake_all(&mut state.close_waiters);
    }

    /// Whether the queue was closed.
    pub(crate) fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Completes once the queue is closed.
    pub(crate) async fn closed(&self) {
        poll_fn(|cx| {
            let mut state = self.lock();
            if state.closed {
                return Poll::Ready(());
            }
            register(&mut state.close_waiters, cx);
            Poll::Pending
        })
        .await;
    }

    /// The producers are gone (the last handle was dropped): the consumer is woken, and
    /// [`producers_gone`](Self::producers_gone) says so once the queue is drained.
    pub(crate) fn release_producers(&self) {
        let mut state = self.lock();
        state.producers_gone = true;
        wake_all(&mut state.waiters);
    }

    /// True once [`release_producers`](Self::release_producers) was called and every item
    /// pushed before it has been taken.
    pub(crate) fn producers_gone(&self) -> bool {
        let state = self.lock();
        state.producers_gone && state.items.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::future;
    use std::sync::Arc;

    #[test]
    fn items_come_out_in_order_and_the_end_after_the_last() {
        let q: Queue<u32> = Queue::default();
        q.push(1).unwrap();
        let mut batch = vec![2, 3];
        assert!(q.push_all(&mut batch));
        assert!(batch.is_empty());
        assert_eq!(q.try_pop(), Ok(1));
        q.close();
        assert_eq!(q.push(4), Err(4));
        assert_eq!(future::block_on(q.pop()), Some(2));
        assert_eq!(q.try_pop(), Ok(3));
        assert_eq!(q.try_pop(), Err(Empty::Closed));
        assert_eq!(future::block_on(q.pop()), None);
        future::block_on(q.closed());
    }

    #[test]
    fn a_waiting_consumer_is_woken_by_a_push_from_another_thread() {
        let q: Arc<Queue<u32>> = Arc::default();
        let producer = {
            let q = Arc::clone(&q);
            std::thread::spawn(move || {
                for i in 0..1000 {
                    q.push(i).unwrap();
                }
                q.close();
            })
        };
        let mut got = Vec::new();
        while let Some(i) = future::block_on(q.pop()) {
            got.push(i);
        }
        producer.join().unwrap();
        assert_eq!(got, (0..1000).collect::<Vec<_>>());
    }

    #[test]
    fn producers_gone_waits_for_the_queue_to_drain() {
        let q: Queue<u32> = Queue::default();
        q.push(7).unwrap();
        q.release_producers();
        assert!(!q.producers_gone());
        assert_eq!(q.try_pop(), Ok(7));
        assert!(q.producers_gone());
    }
}
