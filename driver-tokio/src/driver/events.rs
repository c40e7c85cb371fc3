//! Handing the engine's events to the application: a peer's data to its stream once it is
//! taken, everything else to the event queue.

use super::Driver;
use crate::channel::PeerLink;
use crate::error::BindError;
use openp2p_core::{Event, PeerId};
use std::sync::Arc;
use std::time::Instant;

impl Driver {
    /// The link of a peer: the driver's own record first (no hashing), then the shared table
    /// (for a peer whose slot was already reused).
    fn link_of<'a>(
        &'a self,
        links: &'a std::collections::HashMap<PeerId, Arc<PeerLink>>,
        peer: PeerId,
    ) -> Option<&'a Arc<PeerLink>> {
        match self.peers.get(peer.slot()).and_then(Option::as_ref) {
            Some(slot) if slot.id == peer => Some(&slot.link),
            _ => links.get(&peer),
        }
    }

    /// Delivers every pending engine event (and `Writable` events the send mirror made due);
    /// true if there was any.
    pub(super) fn deliver_events(&mut self, now: Instant) -> bool {
        let first = self.engine.poll_event();
        if first.is_none() && self.writable_due.is_empty() {
            return false;
        }
        let shared = self.shared.clone();
        let mut state = shared.lock();
        let mut queued = false;
        let mut pause = Vec::new();
        let mut next = first;
        while let Some(event) = next.take() {
            match event {
                Event::Received { peer, data } => {
                    let link = self.link_of(&state.links, peer).cloned();
                    let mut link_state = link.as_ref().map(|l| (l, l.lock()));
                    match link_state.as_mut() {
                        Some((link, ls)) if ls.taken => {
                            if link.push_received(ls, data) {
                                pause.push(peer);
                            }
                        }
                        Some((link, ls)) => {
                            // Back-pressure on the event queue: an application that takes
                            // events slower than the socket delivers stops the reads, so
                            // received data (and the pool memory under it) stays bounded.
                            ls.event_bytes += data.len();
                            if !ls.events_paused
                                && !ls.read_paused
                                && ls.event_bytes > link.inbound_high
                            {
                                ls.events_paused = true;
                                pause.push(peer);
                            }
                            drop(link_state);
                            state.events.push_back(Event::Received { peer, data });
                            queued = true;
                        }
                        None => {
                            drop(link_state);
                            state.events.push_back(Event::Received { peer, data });
                            queued = true;
                        }
                    }
                }
                Event::ReadClosed { peer } => {
                    let link = self.link_of(&state.links, peer).cloned();
                    let mut to_stream = false;
                    if let Some(link) = link {
                        let mut ls = link.lock();
                        if ls.taken {
                            PeerLink::read_closed(&mut ls);
                            to_stream = true;
                        }
                    }
                    if !to_stream {
                        state.events.push_back(Event::ReadClosed { peer });
                        queued = true;
                    }
                }
                Event::Sent { peer, bytes } => {
                    // The send mirror followed the engine's queue during the write turn; a taken stream stands
                    // for its peer's `Sent` events (its `poll_flush` reports the progress).
                    let taken = self
                        .slot_mut(peer)
                        .is_some_and(|slot| slot.link.lock().taken);
                    if !taken {
                        state.events.push_back(Event::Sent { peer, bytes });
                        queued = true;
                    }
                }
                event => {
                    match &event {
                        Event::Writable { peer } => self.flush_backlog(*peer, now),
                        Event::SendRefused { peer, error, data } => {
                            if let Some(link) = self.link_of(&state.links, *peer) {
                                link.refund(data.len(), *error);
                            }
                        }
                        Event::Disconnected { peer, reason, .. } => {
                            if let Some(link) = state.links.get(peer) {
                                link.disconnected(*reason);
                            }
                        }
                        Event::ConnectFailed { peer, reason, .. } => {
                            if let Some(link) = state.links.get(peer) {
                                link.connect_failed(*reason);
                            }
                        }
                        Event::Listening { listener, addr } => {
                            self.reply_listen(*listener, Ok(*addr));
                        }
                        Event::ListenFailed {
                            listener, error, ..
                        } => {
                            self.reply_listen(*listener, Err(BindError::Io(*error)));
                        }
                        Event::ShutdownComplete => {
                            // Delivered last, by `finish`, after the commands still queued.
                            self.finished = true;
                            next = self.engine.poll_event();
                            continue;
                        }
                        _ => {}
                    }
                    state.events.push_back(event);
                    queued = true;
                }
            }
            next = self.engine.poll_event();
        }
        let mut writable_due = std::mem::take(&mut self.writable_due);
        for peer in writable_due.drain(..) {
            // The write turn that made it due may have ended the peer: `Disconnected` (just
            // delivered) is then its last event.
            let live = self
                .link_of(&state.links, peer)
                .is_some_and(|link| link.lock().end.is_none());
            if live {
                state.events.push_back(Event::Writable { peer });
                queued = true;
            }
        }
        self.writable_due = writable_due;
        if queued {
            state.wake_waiters();
        }
        drop(state);
        for peer in pause {
            let _ = self.engine.pause_reading(peer, true);
        }
        true
    }

    fn reply_listen(
        &mut self,
        listener: openp2p_core::ListenerId,
        result: Result<std::net::SocketAddr, BindError>,
    ) {
        if let Some(i) = self
            .pending_listens
            .iter()
            .position(|(id, _)| *id == listener)
        {
            let (_, reply) = self.pending_listens.swap_remove(i);
            let _ = reply.send(result);
        }
    }
}
