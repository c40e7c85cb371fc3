//! Draining the engine after every input: events go to the application (or to a peer's
//! stream), `Io` is performed on the sockets.

use crate::driver::Driver;
use crate::error::BindError;
use crate::wake::Token;
use async_io::Async;
use openp2p_core::{ConnectFailure, DisconnectReason, Event, Io};
use std::io;
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::time::Instant;

impl Driver {
    /// Drains `poll_event` and `poll_io` until both are empty. Events go first so that a peer's
    /// record is still there when its `Disconnected` is routed; its `Io::Close` follows.
    pub(crate) fn flush(&mut self) {
        loop {
            let mut any = false;
            while let Some(event) = self.engine.poll_event() {
                self.route(event);
                any = true;
            }
            while let Some(io) = self.engine.poll_io() {
                self.perform(io);
                any = true;
            }
            if !any {
                return;
            }
        }
    }

    fn route(&mut self, event: Event) {
        let limits = self.limits;
        let event = match event {
            Event::Received { peer, data } => {
                let Some(p) = self.peer_mut(peer) else {
                    return self.emit(Event::Received { peer, data });
                };
                let len = data.len() as u64;
                let Some(stream) = &p.stream else {
                    // Back-pressure on the event queue too: an application that takes events
                    // slower than the socket delivers stops this peer's reads until it catches
                    // up, so received data (and the pool memory under it) stays bounded.
                    if p.shared.routed(len) {
                        let shared = Arc::clone(&p.shared);
                        let _ = self.engine.pause_reading(peer, true);
                        if shared.paused() {
                            let _ = self.engine.pause_reading(peer, false);
                        }
                    }
                    return self.emit(Event::Received { peer, data });
                };
                match stream.try_send(data) {
                    Ok(()) => {
                        if p.shared.routed(len) {
                            // The stream fell behind: stop reading this peer until it catches up.
                            let shared = Arc::clone(&p.shared);
                            let _ = self.engine.pause_reading(peer, true);
                            if shared.paused() {
                                let _ = self.engine.pause_reading(peer, false);
                            }
                        }
                        return;
                    }
                    Err(e) => {
                        // The stream was dropped: its peer's data goes back to the events.
                        p.stream = None;
                        if p.shared.abandoned() {
                            let _ = self.engine.pause_reading(peer, false);
                        }
                        Event::Received {
                            peer,
                            data: e.into_inner(),
                        }
                    }
                }
            }
            Event::ReadClosed { peer } => {
                // Half-close: the stream reads EOF; writing to the peer goes on.
                if let Some(p) = self.peer_mut(peer) {
                    p.stream = None;
                    p.read_closed = true;
                }
                Event::ReadClosed { peer }
            }
            Event::Sent { peer, bytes } => {
                let writable = self
                    .peer_mut(peer)
                    .is_some_and(|p| p.shared.release(bytes as u64, limits));
                if self.forward_sent {
                    self.emit(Event::Sent { peer, bytes });
                }
                if writable {
                    self.emit(Event::Writable { peer });
                }
                return;
            }
            Event::ConnectFailed {
                peer,
                addr,
                reason,
                unsent,
            } => {
                // A stream of the peer reads why the connect failed (an abandoned connect
                // reads as a plain end).
                let as_disconnect = match reason {
                    ConnectFailure::Refused => {
                        Some(DisconnectReason::Io(io::ErrorKind::ConnectionRefused))
                    }
                    ConnectFailure::TimedOut => Some(DisconnectReason::Io(io::ErrorKind::TimedOut)),
                    ConnectFailure::Io(kind) => Some(DisconnectReason::Io(kind)),
                    _ => None,
                };
                let dropped = self.peer_mut(peer).map_or(0, |p| {
                    p.shared.mark_closed(as_disconnect);
                    p.dropped
                });
                Event::ConnectFailed {
                    peer,
                    addr,
                    reason,
                    unsent: unsent + dropped,
                }
            }
            Event::Disconnected {
                peer,
                reason,
                unsent,
            } => {
                let dropped = self.peer_mut(peer).map_or(0, |p| {
                    p.shared.mark_closed(Some(reason));
                    p.dropped
                });
                Event::Disconnected {
                    peer,
                    reason,
                    unsent: unsent + dropped,
                }
            }
            Event::Listening { listener, addr } => {
                let l = self
                    .listeners
                    .get_mut(listener.slot())
                    .and_then(Option::as_mut);
                if let Some(reply) = l.filter(|l| l.id == listener).and_then(|l| l.reply.take()) {
                    let _ = reply.try_send(Ok(addr));
                }
                Event::Listening { listener, addr }
            }
            Event::ListenFailed {
                listener,
                addr,
                error,
            } => {
                if let Some(entry) = self.listeners.get_mut(listener.slot()) {
                    if entry.as_ref().is_some_and(|l| l.id == listener) {
                        if let Some(reply) = entry.take().and_then(|l| l.reply) {
                            let _ = reply.try_send(Err(BindError::Io(error)));
                        }
                    }
                }
                Event::ListenFailed {
                    listener,
                    addr,
                    error,
                }
            }
            Event::ShutdownComplete => {
                // Held back until the driver finishes: sends still being applied or queued are
                // handed back first, so `ShutdownComplete` is the last event.
                self.finished = true;
                return;
            }
            other => other,
        };
        self.emit(event);
    }

    /// Queues an event for the application. Events are handed over once per loop round
    /// ([`deliver`](Self::deliver)), so a busy round wakes the application once, not per event.
    pub(crate) fn emit(&mut self, event: Event) {
        self.outbox.push(event);
    }

    /// Hands the round's events to the application; nobody listening is not an error.
    pub(crate) fn deliver(&mut self) {
        // One lock for the round's events; a closed queue (the node stopped) drops them.
        self.events.push_all(&mut self.outbox);
    }

    fn perform(&mut self, io: Io) {
        let now = Instant::now();
        match io {
            Io::Listen { listener, addr } => match self.options.bind(addr) {
                Ok((socket, local)) => {
                    let entry = self
                        .listeners
                        .get_mut(listener.slot())
                        .and_then(Option::as_mut);
                    if let Some(l) = entry.filter(|l| l.id == listener) {
                        l.socket = Some(socket.into());
                        self.again.push(Token::Accept {
                            slot: listener.slot(),
                            serial: listener.serial(),
                        });
                    }
                    self.engine.handle_listening(listener, local, now);
                }
                Err(e) => self.engine.handle_listen_failed(listener, e.kind(), now),
            },
            Io::CloseListener { listener } => {
                if let Some(entry) = self.listeners.get_mut(listener.slot()) {
                    if entry.as_ref().is_some_and(|l| l.id == listener) {
                        *entry = None;
                    }
                }
            }
            Io::Connect { peer, addr } => {
                if let Some(p) = self.peer_mut(peer) {
                    p.connecting = Some(Box::pin(Async::<TcpStream>::connect(addr)));
                    self.again.push(Token::Write {
                        slot: peer.slot(),
                        serial: peer.serial(),
                    });
                }
            }
            Io::Interest { peer, interest } => {
                let Some(p) = self.peer_mut(peer) else { return };
                let before = std::mem::replace(&mut p.interest, interest);
                let (slot, serial) = (peer.slot(), peer.serial());
                // A direction that turns on is tried at once: readiness may have come while it
                // was off, and the reactor reports it only once.
                if interest.read && !before.read {
                    self.again.push(Token::Read { slot, serial });
                }
                if interest.write && !before.write {
                    self.again.push(Token::Write { slot, serial });
                }
            }
            Io::ShutdownWrite { peer } => {
                let socket = self.peer_mut(peer).and_then(|p| p.socket.clone());
                if let Some(socket) = socket {
                    if let Err(e) = socket.get_ref().shutdown(Shutdown::Write) {
                        self.engine.handle_error(peer, e.kind(), now);
                    }
                }
            }
            Io::Close { peer, .. } => {
                if let Some(entry) = self.peers.get_mut(peer.slot()) {
                    if entry.as_ref().is_some_and(|p| p.id == peer) {
                        // Dropping the record closes the socket and the stream's data channel.
                        if let Some(p) = entry.take() {
                            if !p.shared.is_closed() {
                                p.shared.mark_closed(None);
                            }
                        }
                    }
                }
                self.table.remove(peer);
                // A descriptor came free: listeners that ran out may accept again.
                self.again.append(&mut self.stalled);
            }
            _ => {}
        }
    }
}
