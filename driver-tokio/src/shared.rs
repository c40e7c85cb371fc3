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
    /// Tasks waiting in `next_event` or on the event stream.
    waiters: Vec<Waker>,
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

    /// Wakes every task waiting for an event.
    pub(crate) fn wake_waiters(&mut self) {
        for waker in self.waiters.drain(..) {
            waker.wake();
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

    /// The next event, `None` once the driver has stopped and every event was taken.
    pub(crate) fn poll_event(&self, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        let mut state = self.lock();
        if let Some(event) = state.pop() {
            return Poll::Ready(Some(event));
        }
        if state.ended {
            return Poll::Ready(None);
        }
        if !state.waiters.iter().any(|w| w.will_wake(cx.waker())) {
            state.waiters.push(cx.waker().clone());
        }
        Poll::Pending
    }

    /// Like `poll_event` without waiting.
    pub(crate) fn try_event(&self) -> Option<Event> {
        self.lock().pop()
    }
}
