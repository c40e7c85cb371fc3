//! The application's side of the event queue.

use crate::error::{RecvTimeoutError, Stopped, TryRecvError};
use crate::handoff::{drain_into, Handoff, Taken};
use crate::{Bytes, Event, PeerId, SendError};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A message that [`Node::send`](crate::Node::send) or
/// [`Node::send_many`](crate::Node::send_many) handed to the IO thread and the engine refused.
/// Nothing of it was queued; the payload comes back so it can be sent again (for
/// [`SendError::QueueFull`], after [`Event::Writable`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendFailure {
    /// The peer the message was for.
    pub peer: PeerId,
    /// Why it was refused.
    pub error: SendError,
    /// The refused payload.
    pub data: Bytes,
}

/// What the IO thread hands over after one pass of its loop.
/// Received bytes handed to the application and not yet taken by it, shared by the IO thread
/// and the [`Events`] queue: back-pressure on the event queue. Past [`BACKLOG_HIGH`] the IO
/// thread stops reading the peers whose data it hands over; once the application has taken the
/// backlog down to [`BACKLOG_LOW`] it wakes the IO thread, which resumes them. So received data,
/// and the receive-pool memory under it, stays bounded (and cache-warm) however slowly the
/// application drains the queue.
#[derive(Debug)]
pub(crate) struct Backlog {
    pub(crate) unread: AtomicU64,
    /// The IO thread paused peers for the backlog: wake it when the backlog is down.
    pub(crate) paused: AtomicBool,
    pub(crate) waker: Arc<mio::Waker>,
}

/// Backlog past which the IO thread stops reading the peers it hands data for.
pub(crate) const BACKLOG_HIGH: u64 = 1 << 20;
/// Backlog at which paused peers are resumed.
pub(crate) const BACKLOG_LOW: u64 = BACKLOG_HIGH / 4;

impl Backlog {
    /// The application took `n` received bytes.
    fn taken(&self, n: u64) {
        let before = self
            .unread
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
                Some(u.saturating_sub(n))
            })
            .unwrap_or_else(|u| u);
        if before.saturating_sub(n) <= BACKLOG_LOW && self.paused.swap(false, Ordering::AcqRel) {
            // A failed wake means the IO thread is gone: nothing to resume.
            let _ = self.waker.wake();
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Batch {
    pub(crate) events: Vec<Event>,
    pub(crate) failures: Vec<SendFailure>,
}

impl crate::handoff::Batch for Batch {
    fn is_empty(&self) -> bool {
        self.events.is_empty() && self.failures.is_empty()
    }

    fn append(&mut self, other: &mut Self) {
        self.events.append(&mut other.events);
        self.failures.append(&mut other.failures);
    }
}

/// The node's event queue: everything the engine reports, in order, for the application to drain.
///
/// Independent of the [`Node`](crate::Node) handle (it may live on another thread). The IO thread
/// hands events over in batches, one per pass of its loop, so draining costs one lock per
/// batch, not per event, and no allocation: the batch buffers travel back and forth. Drop received data ([`Event::Received`]) when done with
/// it: it holds the engine's pooled memory, and reading pauses while the pool is exhausted.
///
/// The queue is unbounded: drain it. Received data is bounded by the engine's pool (reading
/// pauses while the application holds every segment), but other events (`Sent` after each
/// write unless `Config::sent_events` is off, connection events) accumulate while nobody reads.
///
/// After the node stops, the remaining events are still delivered; then every receive method
/// reports `Stopped`. Iterating (`for event in &mut events`) blocks for each event and ends when
/// the node has stopped.
#[derive(Debug)]
pub struct Events {
    queue: Arc<Handoff<Batch>>,
    /// The buffer a batch is swapped into (emptied into the two queues below at once).
    taken: Batch,
    events: VecDeque<Event>,
    failures: VecDeque<SendFailure>,
    backlog: Arc<Backlog>,
}

impl Drop for Events {
    fn drop(&mut self) {
        // Nobody will read: the IO thread discards its batches from now on.
        self.queue.close();
    }
}

impl Events {
    pub(crate) fn new(queue: Arc<Handoff<Batch>>, backlog: Arc<Backlog>) -> Events {
        Events {
            queue,
            taken: Batch::default(),
            events: VecDeque::new(),
            failures: VecDeque::new(),
            backlog,
        }
    }

    /// Takes the next buffered event, crediting received data back to the backlog.
    fn pop(&mut self) -> Option<Event> {
        let event = self.events.pop_front()?;
        if let Event::Received { data, .. } = &event {
            self.backlog.taken(data.len() as u64);
        }
        Some(event)
    }

    /// Moves what a take put in `taken` into the local queues.
    fn unpack(&mut self, taken: Taken) -> Taken {
        if taken == Taken::Some {
            drain_into(&mut self.taken.events, &mut self.events);
            drain_into(&mut self.taken.failures, &mut self.failures);
        }
        taken
    }

    /// Moves every batch already handed over into the local buffers, without blocking.
    /// Returns false when the node has stopped and nothing more will come.
    fn pull(&mut self) -> bool {
        let taken = self.queue.take_all(&mut self.taken);
        self.unpack(taken) != Taken::Closed
    }

    /// The next event, blocking until one arrives. `Err(Stopped)` once the node has stopped and
    /// every event was delivered.
    pub fn recv(&mut self) -> Result<Event, Stopped> {
        loop {
            if let Some(event) = self.pop() {
                return Ok(event);
            }
            let taken = self.queue.wait_take(&mut self.taken, None);
            if self.unpack(taken) == Taken::Closed {
                return Err(Stopped);
            }
        }
    }

    /// The next event, waiting at most `timeout`.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Event, RecvTimeoutError> {
        let deadline = Instant::now().checked_add(timeout);
        loop {
            if let Some(event) = self.pop() {
                return Ok(event);
            }
            let taken = self.queue.wait_take(&mut self.taken, deadline);
            match self.unpack(taken) {
                Taken::Some => {}
                Taken::Empty => return Err(RecvTimeoutError::Timeout),
                Taken::Closed => return Err(RecvTimeoutError::Stopped),
            }
        }
    }

    /// The next event if one is waiting, without blocking.
    pub fn try_recv(&mut self) -> Result<Event, TryRecvError> {
        if let Some(event) = self.pop() {
            return Ok(event);
        }
        let alive = self.pull();
        match self.pop() {
            Some(event) => Ok(event),
            None if alive => Err(TryRecvError::Empty),
            None => Err(TryRecvError::Stopped),
        }
    }

    /// Iterates over the events waiting now, without blocking.
    pub fn try_iter(&mut self) -> impl Iterator<Item = Event> + '_ {
        std::iter::from_fn(move || self.try_recv().ok())
    }

    /// The next refused fire-and-forget send, if any has been handed over (non-blocking). Refusals
    /// travel in the same batches as events, so one reported before a given event is available
    /// once that event has been received.
    pub fn send_failure(&mut self) -> Option<SendFailure> {
        if self.failures.is_empty() {
            self.pull();
        }
        self.failures.pop_front()
    }
}

impl Iterator for Events {
    type Item = Event;

    /// Blocks for the next event; `None` once the node has stopped and every event was delivered.
    fn next(&mut self) -> Option<Event> {
        self.recv().ok()
    }
}
