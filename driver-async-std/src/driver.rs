//! The driver task: it owns the engine and every socket, and nothing else touches either.

use crate::command::Command;
use crate::error::BindError;
use crate::queue::Queue;
use crate::shared::{PeerShared, PeerTable, QueueLimits};
use crate::socket::{ListenerIo, PeerIo, SocketOptions};
use crate::wake::{ReadyQueue, Token};
use async_channel::Sender;
use async_io::Timer;
use bytes::Bytes;
use openp2p_core::{Engine, Event, Framing, PeerId, SendError};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

/// Loop rounds one `poll` may run before yielding to the executor.
const ROUNDS_PER_POLL: usize = 8;
/// Commands applied per round, so a flood of sends cannot starve the sockets.
const COMMANDS_PER_ROUND: usize = 512;

/// The future that runs a [`Node`](crate::Node): it owns the [`Engine`] and every socket.
///
/// Spawn it once on any executor (async-std, smol, or [`async_io::block_on`] on a thread of its
/// own, which is what [`Node::start`](crate::Node::start) does). Socket readiness and the timer
/// come from `async-io`'s reactor, which works under every executor. It completes after
/// [`Node::shutdown`](crate::Node::shutdown), or once every handle is dropped and the peers have
/// closed gracefully. Dropping it early stops the node: handles then see every peer as unknown
/// and the node as shutting down.
///
/// One wake-up costs O(commands + ready sockets): each socket direction has its own waker that
/// queues just that socket, no lock is held across a socket call, and a single timer is armed at
/// the engine's next deadline.
#[must_use = "the node does nothing unless its driver is spawned or awaited"]
#[derive(Debug)]
pub struct Driver {
    pub(crate) engine: Engine,
    pub(crate) peers: Vec<Option<PeerIo>>,
    pub(crate) listeners: Vec<Option<ListenerIo>>,
    commands: Arc<Queue<Command>>,
    commands_open: bool,
    pub(crate) events: Arc<Queue<Event>>,
    /// Events of the current round, handed over at its end.
    pub(crate) outbox: Vec<Event>,
    pub(crate) table: Arc<PeerTable>,
    pub(crate) ready: Arc<ReadyQueue>,
    /// Tokens serviced in this round.
    work: Vec<Token>,
    /// Tokens to service next round: sockets whose interest just turned on, or that used up
    /// their turn while still ready.
    pub(crate) again: Vec<Token>,
    /// Sockets that used up their turn while still ready: serviced on the next poll, after the
    /// executor has run the application's tasks (see `service::WRITE_BYTES_PER_TURN`).
    pub(crate) deferred: Vec<Token>,
    /// Listeners that failed to accept (out of descriptors): retried when a peer closes or at
    /// `accept_retry_at`, whichever comes first.
    pub(crate) stalled: Vec<Token>,
    pub(crate) accept_retry_at: Option<Instant>,
    timer: Timer,
    armed: Option<Instant>,
    pub(crate) limits: QueueLimits,
    /// `Config::sent_events` as the application set it.
    pub(crate) forward_sent: bool,
    pub(crate) options: SocketOptions,
    default_framing: Framing,
    send_many_ids: Vec<PeerId>,
    shutdown_replies: Vec<Sender<()>>,
    pub(crate) finished: bool,
}

impl Driver {
    pub(crate) fn new(
        engine: Engine,
        commands: Arc<Queue<Command>>,
        events: Arc<Queue<Event>>,
        table: Arc<PeerTable>,
        limits: QueueLimits,
        forward_sent: bool,
    ) -> Driver {
        let config = engine.config();
        let options = SocketOptions {
            nodelay: config.nodelay,
            keepalive: config.keepalive,
            backlog: config.listen_backlog,
        };
        let default_framing = config.framing;
        Driver {
            engine,
            peers: Vec::new(),
            listeners: Vec::new(),
            commands,
            commands_open: true,
            events,
            outbox: Vec::new(),
            table,
            ready: Arc::new(ReadyQueue::default()),
            work: Vec::new(),
            again: Vec::new(),
            deferred: Vec::new(),
            stalled: Vec::new(),
            accept_retry_at: None,
            timer: Timer::never(),
            armed: None,
            limits,
            forward_sent,
            options,
            default_framing,
            send_many_ids: Vec::new(),
            shutdown_replies: Vec::new(),
            finished: false,
        }
    }

    // ----- the loop ----------------------------------------------------------------------------

    /// Applies queued commands without waiting. True if there were any.
    fn run_commands(&mut self) -> bool {
        let mut any = false;
        for _ in 0..COMMANDS_PER_ROUND {
            let Ok(command) = self.commands.try_pop() else {
                break;
            };
            self.apply(command);
            any = true;
        }
        any
    }

    /// Services every socket that woke or asked to be retried. True if there were any.
    fn run_ready(&mut self) -> bool {
        let mut work = std::mem::take(&mut self.work);
        std::mem::swap(&mut work, &mut self.again);
        self.ready.drain_into(&mut work);
        let any = !work.is_empty();
        for token in work.drain(..) {
            match token {
                Token::Read { slot, serial } => self.service_read(slot, serial),
                Token::Write { slot, serial } => self.service_write(slot, serial),
                Token::Accept { slot, serial } => self.service_accept(slot, serial),
            }
        }
        self.work = work;
        any
    }

    /// The next instant the driver must act without readiness: the engine's deadline, or a
    /// stalled listener's retry.
    fn deadline(&self) -> Option<Instant> {
        match (self.engine.poll_timeout(), self.accept_retry_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Fires the deadline if it has passed. True if it did.
    fn run_due_timeout(&mut self) -> bool {
        let now = Instant::now();
        match self.deadline() {
            Some(at) if at <= now => {
                self.fire_timeout(now);
                true
            }
            _ => false,
        }
    }

    fn fire_timeout(&mut self, now: Instant) {
        self.armed = None;
        // Early or repeated calls are harmless to the engine.
        self.engine.handle_timeout(now);
        if self.accept_retry_at.is_some_and(|at| at <= now) {
            self.accept_retry_at = None;
            self.again.append(&mut self.stalled);
        }
        self.flush();
    }

    /// Registers for the next command. True if one was (or the channel closed) after all.
    fn wait_for_command(&mut self, cx: &mut Context<'_>) -> bool {
        if !self.commands_open {
            return false;
        }
        match self.commands.poll_pop(cx) {
            Poll::Ready(Some(command)) => {
                self.apply(command);
                true
            }
            Poll::Ready(None) => false,
            Poll::Pending if self.commands.producers_gone() => {
                // Every handle is gone: close gracefully, then finish.
                self.commands_open = false;
                self.engine.shutdown(Instant::now());
                self.flush();
                true
            }
            Poll::Pending => false,
        }
    }

    /// Arms the single timer at the deadline. True if that deadline has passed.
    fn wait_for_deadline(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(at) = self.deadline() else {
            return false;
        };
        if self.armed != Some(at) {
            self.timer.set_at(at);
            self.armed = Some(at);
        }
        match Pin::new(&mut self.timer).poll(cx) {
            Poll::Ready(_) => {
                self.fire_timeout(Instant::now());
                true
            }
            Poll::Pending => false,
        }
    }

    /// The driver is done: every handle learns that its peers are gone.
    fn finish(&mut self) {
        // Refuse commands from now on. Of those already queued, sends a handle accepted come
        // back as `SendRefused` (their peers are gone, and a send that returned `Ok` is never
        // dropped silently); the rest are dropped, so that whoever waits for a reply learns
        // that the node has stopped.
        self.commands.close();
        while let Ok(command) = self.commands.try_pop() {
            match command {
                Command::Send { peer, data, .. } => self.emit(Event::SendRefused {
                    peer,
                    error: SendError::UnknownPeer,
                    data,
                }),
                Command::SendMany { peers, data } => {
                    for (peer, _) in peers {
                        self.emit(Event::SendRefused {
                            peer,
                            error: SendError::UnknownPeer,
                            data: data.clone(),
                        });
                    }
                }
                _ => {}
            }
        }
        if self.finished {
            // The engine completed its shutdown (held back by `route` until now).
            self.emit(Event::ShutdownComplete);
        }
        self.table.clear();
        self.peers.clear();
        self.listeners.clear();
        // One lock for the last events and the close: nothing (discovery) slips in after them.
        self.events.push_all_and_close(&mut self.outbox);
        for reply in self.shutdown_replies.drain(..) {
            let _ = reply.try_send(());
        }
    }

    // ----- commands ----------------------------------------------------------------------------

    fn apply(&mut self, command: Command) {
        let now = Instant::now();
        match command {
            Command::Listen {
                addr,
                framing,
                reply,
            } => {
                let framing = framing.unwrap_or(self.default_framing);
                match self.engine.listen_with(addr, framing) {
                    Ok(id) => self.insert_listener(ListenerIo::new(id, reply, &self.ready)),
                    Err(_) => {
                        let _ = reply.try_send(Err(BindError::ShuttingDown));
                    }
                }
            }
            Command::Connect {
                addr,
                framing,
                expect,
                reply,
            } => {
                let framing = framing.unwrap_or(self.default_framing);
                match self.engine.connect_full(addr, framing, expect, now) {
                    Ok(peer) => {
                        let io = PeerIo::new(PeerShared::new(peer, framing), None, &self.ready);
                        self.insert_peer(io);
                        let _ = reply.try_send(Ok(peer));
                    }
                    Err(e) => {
                        let _ = reply.try_send(Err(e));
                    }
                }
            }
            Command::Send { peer, data, credit } => {
                if self.engine.send(peer, data.clone(), now).is_err() {
                    self.refused(peer, credit, data);
                }
            }
            Command::SendMany { peers, data } => {
                let mut ids = std::mem::take(&mut self.send_many_ids);
                ids.clear();
                ids.extend(peers.iter().map(|(id, _)| *id));
                let failures = self.engine.send_many(&ids, data.clone(), now);
                for (peer, _) in failures {
                    let credit = peers
                        .iter()
                        .find(|(id, _)| *id == peer)
                        .map_or(0, |(_, c)| *c);
                    self.refused(peer, credit, data.clone());
                }
                self.send_many_ids = ids;
            }
            Command::Disconnect { peer } => {
                let _ = self.engine.disconnect(peer, now);
            }
            Command::Abort { peer } => {
                let _ = self.engine.abort(peer, now);
            }
            Command::SetLimits { peer, limits } => {
                let _ = self.engine.set_limits(peer, limits, now);
            }
            Command::SetGlobalLimits { limits } => self.engine.set_global_limits(limits, now),
            Command::ResumeReading { peer } => {
                let _ = self.engine.pause_reading(peer, false);
            }
            Command::Attach { peer, data } => {
                // After the remote's EOF, dropping `data` ends the stream's reading at once.
                if let Some(p) = self.peer_mut(peer).filter(|p| !p.read_closed) {
                    p.stream = Some(data);
                }
            }
            Command::Stats { peer, reply } => {
                let _ = reply.try_send(self.engine.stats(peer));
            }
            Command::Info { peer, reply } => {
                let _ = reply.try_send(self.engine.peer(peer));
            }
            Command::GlobalStats { reply } => {
                let _ = reply.try_send(self.engine.global_stats());
            }
            Command::Shutdown { reply } => {
                self.shutdown_replies.push(reply);
                self.engine.shutdown(now);
            }
        }
        self.flush();
    }

    /// A send the handle admitted was refused by the engine (the peer closed meanwhile): give
    /// the credit back and count the bytes in the peer's `Disconnected::unsent`.
    /// The engine refused a message a handle had admitted (`credit` framed bytes). While the
    /// peer's last event is still to come, the bytes are added to its `unsent`; once that event
    /// has been routed (the handle admitted the message just before it), the message comes back
    /// as `SendRefused { UnknownPeer }`, so nothing a handle accepted vanishes.
    fn refused(&mut self, peer: PeerId, credit: u64, data: Bytes) {
        let ended = self.peer_mut(peer).is_none_or(|p| p.shared.is_closed());
        if ended {
            self.emit(Event::SendRefused {
                peer,
                error: SendError::UnknownPeer,
                data,
            });
        } else {
            self.drop_credit(peer, credit);
        }
    }

    fn drop_credit(&mut self, peer: PeerId, credit: u64) {
        let limits = self.limits;
        let Some(p) = self.peer_mut(peer) else { return };
        p.dropped += credit;
        if p.shared.release(credit, limits) {
            self.emit(Event::Writable { peer });
        }
    }

    // ----- tables ------------------------------------------------------------------------------

    pub(crate) fn insert_peer(&mut self, io: PeerIo) {
        let slot = io.id.slot();
        self.table.insert(Arc::clone(&io.shared));
        if self.peers.len() <= slot {
            self.peers.resize_with(slot + 1, || None);
        }
        self.peers[slot] = Some(io);
    }

    fn insert_listener(&mut self, io: ListenerIo) {
        let slot = io.id.slot();
        if self.listeners.len() <= slot {
            self.listeners.resize_with(slot + 1, || None);
        }
        self.listeners[slot] = Some(io);
    }

    pub(crate) fn peer_mut(&mut self, id: PeerId) -> Option<&mut PeerIo> {
        self.peers
            .get_mut(id.slot())
            .and_then(Option::as_mut)
            .filter(|p| p.id == id)
    }

    pub(crate) fn peer_at(&mut self, slot: usize, serial: u64) -> Option<&mut PeerIo> {
        self.peers
            .get_mut(slot)
            .and_then(Option::as_mut)
            .filter(|p| p.id.serial() == serial)
    }
}

impl Future for Driver {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if this.finished {
            return Poll::Ready(());
        }
        this.ready.register(cx.waker());
        this.again.append(&mut this.deferred);
        for _ in 0..ROUNDS_PER_POLL {
            let mut busy = this.run_commands();
            busy |= this.run_ready();
            busy |= this.run_due_timeout();
            this.deliver();
            if this.finished {
                this.finish();
                return Poll::Ready(());
            }
            let more = busy || this.wait_for_command(cx) || this.wait_for_deadline(cx);
            this.deliver();
            if more {
                continue;
            }
            if this.finished {
                this.finish();
                return Poll::Ready(());
            }
            if this.ready.is_empty() && this.again.is_empty() {
                if !this.deferred.is_empty() {
                    // Sockets wait for their next turn: come back after the other tasks.
                    cx.waker().wake_by_ref();
                }
                return Poll::Pending;
            }
        }
        // Still busy after a full turn: let the executor run other tasks, then come back.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if !self.finished {
            self.finish();
        }
    }
}
