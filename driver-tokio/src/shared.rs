//! State shared by the driver task and the application's handles: the event queue and the
//! table of per-peer channels.
//!
//! One short-lived lock guards both, so that handing a peer's data to its stream (once the
//! application has taken it) or to the event queue (before) is decided atomically with
//! [`Node::stream`](crate::Node::stream) taking the stream. The driver takes the lock once per
//! batch of events, never across socket IO.

use crate::channel::PeerLink;
use openp2p_core::{Event, PeerId};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

#[derive(Debug, Default)]
pub(crate) struct SharedState {
    /// Events not yet taken by the application.
    pub(crate) events: VecDeque<Event>,
    /// Tasks waiting in `next_event` or on the event stream, each under the id of its wait
    /// (a wait given up removes its entry, so abandoned waits leave no waker behind).
    waiters: Vec<(u64, Waker)>,
    next_waiter: u64,
    /// The channel of every peer whose last event (`Disconnected` or `ConnectFailed`) the
    /// application has not taken yet, for `Node::stream`.
    pub(crate) links: HashMap<PeerId, Arc<PeerLink>>,
    /// The driver has stopped: once `events` is empty, the event stream ends.
    pub(crate) ended: bool,
    /// Reaches the driver to resume a peer paused for event back-pressure (weak, so the
    /// channel still closes when the application drops every handle).
    pub(crate) commands: Option<tokio::sync::mpsc::WeakUnboundedSender<crate::command::Command>>,
}

impl SharedState {
    /// Takes the next event. A peer's channel is forgotten when the application takes the
    /// peer's last event, so `Node::stream` works until then.
    fn pop(&mut self) -> Option<Event> {
        let event = self.events.pop_front()?;
        if let Event::Received { peer, data } = &event {
            self.taken_received(*peer, data.len());
        }
        if let Event::Disconnected { peer, .. } | Event::ConnectFailed { peer, .. } = &event {
            self.links.remove(peer);
        }
        Some(event)
    }

    /// The application took `len` bytes of `peer`'s data from the queue: resume reading the peer
    /// once its backlog is down to a quarter of the pause mark.
    fn taken_received(&mut self, peer: PeerId, len: usize) {
        let Some(link) = self.links.get(&peer) else {
            return;
        };
        let mut state = link.lock();
        state.event_bytes = state.event_bytes.saturating_sub(len);
        if state.events_paused && state.event_bytes <= link.inbound_high / 4 {
            state.events_paused = false;
            if !state.read_paused {
                if let Some(commands) = self.commands.as_ref().and_then(|c| c.upgrade()) {
                    let _ = commands.send(crate::command::Command::ResumeReading { peer });
                }
            }
        }
    }

    /// Tasks registered as waiting for an event.
    #[cfg(test)]
    pub(crate) fn waiting(&self) -> usize {
        self.waiters.len()
    }

    /// Wakes every task waiting for an event.
    pub(crate) fn wake_waiters(&mut self) {
        for (_, waker) in self.waiters.drain(..) {
            waker.wake();
        }
    }

    /// Removes a wait's waker, if it is still registered.
    fn forget(&mut self, wait: &mut Option<u64>) {
        if let Some(id) = wait.take() {
            self.waiters.retain(|(waiter, _)| *waiter != id);
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Shared {
    state: Mutex<SharedState>,
    /// Notified when the driver stops (helper tasks such as discovery end with it).
    ended: tokio::sync::Notify,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, SharedState> {
        // Every critical section leaves the state consistent, so a poisoned lock is still usable.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A future that completes when the driver stops (`enable` it before checking `ended`).
    pub(crate) fn ended_notify(&self) -> tokio::sync::futures::Notified<'_> {
        self.ended.notified()
    }

    /// Wakes every task waiting for the driver to stop.
    pub(crate) fn notify_ended(&self) {
        self.ended.notify_waiters();
    }

    /// The next event, `None` once the driver has stopped and every event was taken. `wait`
    /// identifies the caller's registration between polls; pass it to
    /// [`give_up`](Self::give_up) when the caller stops waiting.
    pub(crate) fn poll_event(
        &self,
        cx: &mut Context<'_>,
        wait: &mut Option<u64>,
    ) -> Poll<Option<Event>> {
        let mut state = self.lock();
        if let Some(event) = state.pop() {
            state.forget(wait);
            return Poll::Ready(Some(event));
        }
        if state.ended {
            state.forget(wait);
            return Poll::Ready(None);
        }
        let registered = wait.and_then(|id| state.waiters.iter_mut().find(|(w, _)| *w == id));
        match registered {
            Some((_, waker)) => {
                if !waker.will_wake(cx.waker()) {
                    *waker = cx.waker().clone();
                }
            }
            None => {
                let id = state.next_waiter;
                state.next_waiter += 1;
                state.waiters.push((id, cx.waker().clone()));
                *wait = Some(id);
            }
        }
        Poll::Pending
    }

    /// The caller of `poll_event` stopped waiting: forget its waker.
    pub(crate) fn give_up(&self, wait: &mut Option<u64>) {
        if wait.is_some() {
            self.lock().forget(wait);
        }
    }

    /// Like `poll_event` without waiting.
    pub(crate) fn try_event(&self) -> Option<Event> {
        self.lock().pop()
    }
}
