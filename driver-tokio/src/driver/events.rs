//! Handing the engine's events to the application: to a peer's stream once it is taken,
//! otherwise to the event queue.

use super::Driver;
use crate::error::BindError;
use crate::stream::PeerChannel;
use openp2p_core::Event;
use std::time::Instant;

impl Driver {
    /// Delivers every pending engine event; true if there was any.
    pub(super) fn deliver_events(&mut self, now: Instant) -> bool {
        let Some(first) = self.engine.poll_event() else { return false };
        let shared = self.shared.clone();
        let mut state = shared.lock();
        let mut queued = false;
        let mut next = Some(first);
        while let Some(event) = next.take() {
            match event {
                Event::Received { peer, data } => {
                    // The driver's own record first (no hashing); the table for a peer whose
                    // slot was already reused.
                    let channel = match self.peers.get(peer.slot()).and_then(Option::as_ref) {
                        Some(slot) if slot.id == peer => Some(&slot.channel),
                        _ => state.channels.get(&peer),
                    };
                    let mut channel_state = channel.map(|c| c.lock());
                    match channel_state.as_deref_mut() {
                        Some(cs) if cs.taken => PeerChannel::push_received(cs, data),
                        _ => {
                            drop(channel_state);
                            state.events.push_back(Event::Received { peer, data });
                            queued = true;
                        }
                    }
                }
                event => {
                    match &event {
                        Event::Sent { peer, bytes } => {
                            if let Some(slot) = self.slot_mut(*peer) {
                                slot.channel.sent(*bytes);
                                if !slot.backlog.is_empty() {
                                    self.flush_backlog(*peer, now);
                                }
                            }
                        }
                        Event::Writable { peer } => self.flush_backlog(*peer, now),
                        Event::Disconnected { peer, reason, .. } => {
                            if let Some(channel) = state.channels.get(peer) {
                                channel.disconnected(*reason);
                            }
                        }
                        Event::ConnectFailed { peer, reason, .. } => {
                            if let Some(channel) = state.channels.get(peer) {
                                channel.connect_failed(*reason);
                            }
                        }
                        Event::Listening { listener, addr } => {
                            self.reply_listen(*listener, Ok(*addr));
                        }
                        Event::ListenFailed { listener, error, .. } => {
                            self.reply_listen(*listener, Err(BindError::Io(*error)));
                        }
                        Event::ShutdownComplete => self.finished = true,
                        _ => {}
                    }
                    state.events.push_back(event);
                    queued = true;
                }
            }
            next = self.engine.poll_event();
        }
        if queued {
            state.wake_waiters();
        }
        true
    }

    fn reply_listen(
        &mut self,
        listener: openp2p_core::ListenerId,
        result: Result<std::net::SocketAddr, BindError>,
    ) {
        if let Some(i) = self.pending_listens.iter().position(|(id, _)| *id == listener) {
            let (_, reply) = self.pending_listens.swap_remove(i);
            let _ = reply.send(result);
        }
    }
}
