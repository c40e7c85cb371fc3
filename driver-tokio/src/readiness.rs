//! The ready queue: per-socket wakers that name the socket that became ready.
//!
//! Every peer socket has one waker for reading and one for writing, and every listener one for
//! accepting. The driver passes them to `poll_read_ready` / `poll_write_ready` / `poll_accept`.
//! When Tokio's reactor fires one, it pushes its [`Token`] onto a shared queue (once: a flag
//! suppresses duplicates until the driver takes the token) and wakes the driver task. The driver
//! therefore only ever touches sockets that reported readiness: no scan over all peers.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Wake, Waker};

/// What a readiness token asks the driver to try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    /// Read from a peer socket.
    Read,
    /// Write to a peer socket.
    Write,
    /// Accept on a listener.
    Accept,
}

/// A socket (slot plus the serial of its id, so a stale token never reaches a reused slot) and
/// what to try on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Token {
    pub(crate) slot: usize,
    pub(crate) serial: u64,
    pub(crate) action: Action,
}

#[derive(Debug, Default)]
struct Queue {
    tokens: Vec<Token>,
    driver: Option<Waker>,
}

/// The queue shared by the driver and all socket wakers.
#[derive(Debug, Default)]
pub(crate) struct ReadyQueue {
    inner: Mutex<Queue>,
}

impl ReadyQueue {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // A panic while holding this lock cannot leave the queue inconsistent (push/swap only).
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Remembers the driver task's waker and moves every queued token into `into`.
    pub(crate) fn take(&self, driver: &Waker, into: &mut Vec<Token>) {
        let mut queue = self.lock();
        match &queue.driver {
            Some(w) if w.will_wake(driver) => {}
            _ => queue.driver = Some(driver.clone()),
        }
        if into.is_empty() {
            std::mem::swap(&mut queue.tokens, into);
        } else {
            into.append(&mut queue.tokens);
        }
    }

    fn push(&self, token: Token) {
        let mut queue = self.lock();
        queue.tokens.push(token);
        // Only the first token since the driver last took the queue needs a wake-up.
        if queue.tokens.len() == 1 {
            if let Some(driver) = &queue.driver {
                driver.wake_by_ref();
            }
        }
    }
}

/// The waker of one socket direction.
#[derive(Debug)]
pub(crate) struct SocketWaker {
    token: Token,
    queued: AtomicBool,
    queue: Arc<ReadyQueue>,
}

impl SocketWaker {
    pub(crate) fn new(token: Token, queue: &Arc<ReadyQueue>) -> Arc<SocketWaker> {
        Arc::new(SocketWaker {
            token,
            queued: AtomicBool::new(false),
            queue: queue.clone(),
        })
    }

    /// Called by the driver when it takes this socket's token: later readiness queues it again.
    pub(crate) fn rearm(&self) {
        self.queued.store(false, Ordering::Release);
    }
}

impl Wake for SocketWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.queued.swap(true, Ordering::AcqRel) {
            self.queue.push(self.token);
        }
    }
}

/// A socket direction's waker, kept in both forms the driver needs.
#[derive(Debug)]
pub(crate) struct Source {
    pub(crate) state: Arc<SocketWaker>,
    pub(crate) waker: Waker,
}

impl Source {
    pub(crate) fn new(token: Token, queue: &Arc<ReadyQueue>) -> Source {
        let state = SocketWaker::new(token, queue);
        let waker = Waker::from(state.clone());
        Source { state, waker }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    struct Counter(AtomicUsize);
    impl Wake for Counter {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_socket_is_queued_once_until_the_driver_takes_it_and_the_driver_is_woken_once() {
        let queue = Arc::new(ReadyQueue::default());
        let counter = Arc::new(Counter(AtomicUsize::new(0)));
        let driver = Waker::from(counter.clone());
        let mut taken = Vec::new();
        queue.take(&driver, &mut taken);
        let a = Source::new(
            Token {
                slot: 1,
                serial: 7,
                action: Action::Read,
            },
            &queue,
        );
        let b = Source::new(
            Token {
                slot: 2,
                serial: 8,
                action: Action::Write,
            },
            &queue,
        );
        a.waker.wake_by_ref();
        a.waker.wake_by_ref();
        b.waker.wake_by_ref();
        assert_eq!(
            counter.0.load(Ordering::SeqCst),
            1,
            "one wake for a burst of readiness"
        );
        queue.take(&driver, &mut taken);
        assert_eq!(taken.len(), 2);
        assert_eq!(taken[0].slot, 1);
        assert_eq!(taken[1].action, Action::Write);
        // Not re-armed yet: a repeated wake is suppressed.
        a.waker.wake_by_ref();
        taken.clear();
        queue.take(&driver, &mut taken);
        assert!(taken.is_empty());
        a.state.rearm();
        a.waker.wake_by_ref();
        queue.take(&driver, &mut taken);
        assert_eq!(taken.len(), 1);
    }
}
