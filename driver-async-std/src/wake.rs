//! Readiness routing without scans: every socket direction gets its own [`Waker`], which queues
//! that socket's token and wakes the driver task. The driver then services exactly the sockets
//! that became ready, so a wake-up costs O(ready sockets), not O(peers).

use atomic_waker::AtomicWaker;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Wake, Waker};

/// What became ready: a peer's read or write side (connect completion counts as write), or a
/// listener. Slots are reused, so the serial tells a live socket from a stale wake-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Token {
    Read { slot: usize, serial: u64 },
    Write { slot: usize, serial: u64 },
    Accept { slot: usize, serial: u64 },
}

/// Tokens of sockets that woke since the driver last looked, and the driver's own waker.
#[derive(Debug, Default)]
pub(crate) struct ReadyQueue {
    tokens: Mutex<Vec<Token>>,
    driver: AtomicWaker,
}

impl ReadyQueue {
    /// Remembers the waker of the task that runs the driver.
    pub(crate) fn register(&self, waker: &Waker) {
        self.driver.register(waker);
    }

    fn push(&self, token: Token) {
        self.tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(token);
        self.driver.wake();
    }

    /// True when no socket has woken since the last drain.
    pub(crate) fn is_empty(&self) -> bool {
        self.tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_empty()
    }

    /// Moves every queued token into `out` (which the caller reuses, so no allocation).
    pub(crate) fn drain_into(&self, out: &mut Vec<Token>) {
        let mut tokens = self.tokens.lock().unwrap_or_else(PoisonError::into_inner);
        out.append(&mut tokens);
    }

    /// A waker that queues `token` when the reactor fires it.
    pub(crate) fn waker(self: &Arc<Self>, token: Token) -> Waker {
        Waker::from(Arc::new(TokenWaker {
            token,
            queue: Arc::clone(self),
        }))
    }
}

#[derive(Debug)]
struct TokenWaker {
    token: Token,
    queue: Arc<ReadyQueue>,
}

impl Wake for TokenWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.queue.push(self.token);
    }
}
