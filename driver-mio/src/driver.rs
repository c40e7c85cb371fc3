//! The IO thread: one `mio::Poll`, the engine, every socket, and the loop that joins them.
//!
//! Each pass: wait for readiness or the engine's deadline, note readiness per socket, take the
//! queued commands, fire due timeouts, then *settle*: perform the engine's `Io`, service the
//! sockets it wants served (read until `WouldBlock` or `Paused`, write likewise), and repeat until
//! nothing is left to do; finally hand the pass's events to the application in one batch.
//!
//! Sockets are registered once, edge-triggered, for both directions. A per-socket readiness flag
//! remembers what the poller reported until an operation answers `WouldBlock`, so when the engine
//! turns a direction back on (budget refilled, pool freed, data queued) that operation is tried
//! at once: with edge-triggered registration no new event would come. Work per wake-up is
//! proportional to the sockets that are ready or whose interest changed, never to all peers.

use crate::command::{Command, Outcome};
use crate::conn::{Conn, Conns};
use crate::events::{Batch, SendFailure};
use crate::handoff::{drain_into, Batch as _, Handoff, Taken};
use crate::lan::{LanDiscovery, DISCOVERY};
use crate::listeners::{Accepted, Listeners};
use crate::stats::DriverStats;
use crate::{Engine, Event, Io, PeerId, Transfer};
use mio::{Events, Poll, Token};
use std::collections::HashMap;
use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The waker's token.
pub(crate) const WAKER: Token = Token(usize::MAX);
/// Listener tokens carry this bit; peer tokens are the peer's slot.
pub(crate) const LISTENER_BIT: usize = 1 << (usize::BITS - 2);

/// Reads or writes per socket per pass before the socket yields to the others (it is carried to
/// the next pass, which polls without sleeping).
const OPS_PER_PASS: usize = 16;
/// Commands taken per pass before the sockets get a turn.
const COMMANDS_PER_PASS: usize = 4096;

/// The IO thread's end of the event queue: closed when the thread ends, so the application's
/// `Events` reports `Stopped` once it has taken every event.
#[derive(Debug)]
pub(crate) struct EventSink(pub(crate) Arc<Handoff<Batch>>);

impl Drop for EventSink {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// The IO thread's end of the command queue: closed when the thread ends, so later commands
/// report `Stopped`.
#[derive(Debug)]
pub(crate) struct CommandSource(pub(crate) Arc<Handoff<Vec<Command>>>);

impl Drop for CommandSource {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// The IO thread's state.
pub(crate) struct Driver {
    pub(crate) poll: Poll,
    pub(crate) engine: Engine,
    pub(crate) commands: CommandSource,
    /// Commands taken from the queue and not yet applied (at most `COMMANDS_PER_PASS` a pass).
    pub(crate) inbox: VecDeque<Command>,
    /// The buffer the command queue is swapped into.
    pub(crate) taken: Vec<Command>,
    pub(crate) wake_pending: Arc<AtomicBool>,
    /// Kept open while the thread polls (see `Node`).
    pub(crate) _waker: Arc<mio::Waker>,
    pub(crate) out: EventSink,
    pub(crate) batch: Batch,
    pub(crate) conns: Conns,
    pub(crate) listeners: Listeners,
    /// Peers to serve in this pass.
    pub(crate) ready: std::collections::VecDeque<PeerId>,
    /// Peers that used up their share of a pass; served next pass.
    pub(crate) carry: Vec<PeerId>,
    pub(crate) more_commands: bool,
    /// Connects whose caller waits for the outcome.
    pub(crate) watched: HashMap<PeerId, SyncSender<Outcome>>,
    /// Outcomes to answer once the batch holding their event has been handed over.
    pub(crate) resolved: Vec<(SyncSender<Outcome>, Outcome)>,
    pub(crate) stats: DriverStats,
    pub(crate) stopping: bool,
    /// LAN discovery, when enabled.
    pub(crate) discovery: Option<LanDiscovery>,
    /// The discovery socket has datagrams waiting.
    pub(crate) discovery_ready: bool,
    /// Received data handed to the application and not yet taken (see `Backlog`).
    pub(crate) backlog: Arc<crate::events::Backlog>,
    /// Peers paused because the backlog passed its high mark.
    pub(crate) backlog_paused: Vec<PeerId>,
}

impl Driver {
    /// Runs until the engine reports its shutdown complete (or the poller fails).
    pub(crate) fn run(mut self) {
        let mut events = Events::with_capacity(1024);
        loop {
            let timeout = self.timeout(Instant::now());
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() != io::ErrorKind::Interrupted {
                    // The poller itself failed (it never does in practice): nothing can be
                    // waited for any more, so stop, closing every socket with the error.
                    self.fail(e.kind());
                    return;
                }
            }
            self.stats.wakeups += 1;
            let now = Instant::now();
            for event in events.iter() {
                let token = event.token();
                if token == WAKER {
                    continue;
                } else if token == DISCOVERY {
                    self.discovery_ready = true;
                } else if token.0 & LISTENER_BIT != 0 {
                    self.accept(token.0 & !LISTENER_BIT, now);
                } else {
                    self.on_socket_event(token.0, event, now);
                }
            }
            self.take_commands(now);
            self.resume_backlog();
            if self.engine.poll_timeout().is_some_and(|at| at <= now) {
                self.engine.handle_timeout(now);
            }
            self.retry_listeners(now);
            self.discover(now);
            self.ready.extend(self.carry.drain(..));
            self.settle(now);
            self.flush();
            if self.stopping && self.engine.is_shut_down() {
                return;
            }
        }
    }

    /// How long the poller may sleep: until the engine's deadline or a listener's back-off ends,
    /// not at all when work was carried over.
    fn timeout(&self, now: Instant) -> Option<Duration> {
        if !self.carry.is_empty()
            || self.backlog_resumable()
            || self.more_commands
            || self.listeners.has_carry()
            || self.discovery_ready
        {
            return Some(Duration::ZERO);
        }
        let deadlines = [
            self.engine.poll_timeout(),
            self.listeners.retry_at(),
            self.discovery.as_ref().and_then(LanDiscovery::deadline),
        ];
        let at = deadlines.into_iter().flatten().min();
        at.map(|at| at.saturating_duration_since(now))
    }

    fn take_commands(&mut self, now: Instant) {
        // Clear the flag *before* draining (an RMW, so the handles' sends are visible): a command
        // queued after this point wakes the poller again.
        self.wake_pending.swap(false, Ordering::AcqRel);
        self.more_commands = false;
        // (The last handle's drop queues a shutdown, so the queue never just goes quiet.)
        if self.commands.0.take_all(&mut self.taken) == Taken::Some {
            drain_into(&mut self.taken, &mut self.inbox);
        }
        for _ in 0..COMMANDS_PER_PASS {
            let Some(command) = self.inbox.pop_front() else {
                return;
            };
            self.stats.commands += 1;
            self.command(command, now);
        }
        self.more_commands = !self.inbox.is_empty();
    }

    fn command(&mut self, command: Command, now: Instant) {
        match command {
            Command::Send { peer, data } => {
                if let Err(error) = self.engine.send(peer, data.clone(), now) {
                    self.batch.failures.push(SendFailure { peer, error, data });
                }
            }
            Command::SendWait { peer, data, reply } => {
                let _ = reply.try_send(self.engine.send(peer, data, now));
            }
            Command::SendManyWait { peers, data, reply } => {
                let _ = reply.try_send(self.engine.send_many(&peers, data, now));
            }
            Command::SendMany { peers, data } => {
                for (peer, error) in self.engine.send_many(&peers, data.clone(), now) {
                    self.batch.failures.push(SendFailure {
                        peer,
                        error,
                        data: data.clone(),
                    });
                }
            }
            Command::Listen {
                addr,
                framing,
                reply,
            } => {
                let framing = framing.unwrap_or(self.engine.config().framing);
                match self.engine.listen_with(addr, framing) {
                    Ok(listener) => self.listeners.await_bind(listener, reply),
                    Err(_) => {
                        let _ = reply.try_send(Err(crate::BindError::ShuttingDown));
                    }
                }
            }
            Command::Connect {
                addr,
                framing,
                expect,
                reply,
                outcome,
            } => {
                let framing = framing.unwrap_or(self.engine.config().framing);
                match self.engine.connect_full(addr, framing, expect, now) {
                    Ok(peer) => {
                        if let Some(outcome) = outcome {
                            self.watched.insert(peer, outcome);
                        }
                        let _ = reply.try_send(Ok(peer));
                    }
                    Err(e) => {
                        let _ = reply.try_send(Err(crate::DialError::Rejected(e)));
                    }
                }
            }
            Command::Disconnect(peer) => {
                let _ = self.engine.disconnect(peer, now);
            }
            Command::Abort(peer) => {
                if let Some(conn) = self.conns.get_mut(peer) {
                    conn.reset_on_close = true;
                }
                let _ = self.engine.abort(peer, now);
            }
            Command::SetLimits(peer, limits) => {
                let _ = self.engine.set_limits(peer, limits, now);
            }
            Command::SetGlobalLimits(limits) => self.engine.set_global_limits(limits, now),
            Command::Inspect(inspect) => inspect(&self.engine, &self.stats),
            Command::EnableDiscovery { options, reply } => {
                if let Some(old) = self.discovery.take() {
                    old.close(&self.poll);
                }
                let seed = {
                    use std::hash::{BuildHasher, Hasher};
                    std::collections::hash_map::RandomState::new()
                        .build_hasher()
                        .finish()
                };
                let result = match LanDiscovery::start(&self.poll, options, seed) {
                    Ok((discovery, bound)) => {
                        self.discovery = Some(discovery);
                        Ok(bound)
                    }
                    Err(e) => Err(crate::DiscoveryError::Io(e.kind())),
                };
                let _ = reply.try_send(result);
            }
            Command::DisableDiscovery => {
                if let Some(old) = self.discovery.take() {
                    old.close(&self.poll);
                }
                self.discovery_ready = false;
            }
            Command::Shutdown => {
                self.stopping = true;
                self.engine.shutdown(now);
                if let Some(old) = self.discovery.take() {
                    old.close(&self.poll);
                }
            }
        }
    }

    /// Records what the poller reported for a peer's socket and queues it for service.
    fn on_socket_event(&mut self, slot: usize, event: &mio::event::Event, now: Instant) {
        let Some(conn) = self.conns.by_slot(slot) else {
            return;
        };
        let peer = conn.id;
        conn.read_closed |= event.is_read_closed() || event.is_error();
        conn.readable |= event.is_readable() || event.is_read_closed();
        conn.writable |= event.is_writable() || event.is_write_closed();
        if conn.connecting {
            let hang_up = event.is_error() || event.is_read_closed() || event.is_write_closed();
            match crate::socket::connect_outcome(&conn.stream, hang_up) {
                None => {}
                Some(Ok(())) => {
                    conn.connecting = false;
                    self.conns.configure(peer);
                    self.engine.handle_connected(peer, now);
                }
                Some(Err(kind)) => self.engine.handle_connect_failed(peer, kind, now),
            }
            return;
        }
        if event.is_error() {
            if let Ok(Some(e)) | Err(e) = conn.stream.take_error() {
                self.engine.handle_error(peer, e.kind(), now);
                return;
            }
        }
        if !conn.queued {
            conn.queued = true;
            self.ready.push_back(peer);
        }
    }

    /// Performs the engine's `Io` and serves the queued sockets until neither has anything left.
    fn settle(&mut self, now: Instant) {
        loop {
            while let Some(io) = self.engine.poll_io() {
                self.perform(io, now);
            }
            self.take_events();
            let Some(peer) = self.ready.pop_front() else {
                return;
            };
            self.serve(peer, now);
        }
    }

    fn perform(&mut self, io: Io, now: Instant) {
        match io {
            Io::Interest { peer, interest } => {
                let Some(conn) = self.conns.get_mut(peer) else {
                    return;
                };
                let turned_on = (interest.read && !conn.want.read && conn.readable)
                    || (interest.write && !conn.want.write && conn.writable);
                conn.want = interest;
                if turned_on && !conn.queued {
                    conn.queued = true;
                    self.ready.push_back(peer);
                }
            }
            Io::Connect { peer, addr } => {
                if let Err(kind) = self.conns.connect(&self.poll, peer, addr) {
                    self.engine.handle_connect_failed(peer, kind, now);
                }
            }
            Io::ShutdownWrite { peer } => {
                if let Some(conn) = self.conns.get_mut(peer) {
                    // An error here (already reset) shows up on the next read.
                    let _ = conn.stream.shutdown(std::net::Shutdown::Write);
                }
            }
            Io::Close { peer, .. } => self.conns.close(&self.poll, peer),
            Io::Listen { listener, addr } => {
                let backlog = self.engine.config().listen_backlog;
                match self.listeners.open(&self.poll, listener, addr, backlog) {
                    Ok(bound) => self.engine.handle_listening(listener, bound, now),
                    Err(kind) => self.engine.handle_listen_failed(listener, kind, now),
                }
            }
            Io::CloseListener { listener } => self.listeners.close(&self.poll, listener),
            _ => {}
        }
    }

    /// One turn for one socket: read while the engine wants and the socket gives, then write.
    /// A socket that used its whole turn is carried to the next pass.
    fn serve(&mut self, peer: PeerId, now: Instant) {
        let Some(conn) = self.conns.get_mut(peer) else {
            return;
        };
        conn.queued = false;
        if conn.connecting {
            return;
        }
        let mut unfinished = false;
        if conn.want.read && conn.readable {
            unfinished |= !read_turn(&mut self.engine, conn, peer, now);
        }
        if conn.want.write && conn.writable {
            unfinished |= !write_turn(&mut self.engine, conn, peer, now);
        }
        if unfinished {
            conn.queued = true;
            self.carry.push(peer);
        }
    }

    /// Accepts on a ready listener, handing each connection to the engine.
    fn accept(&mut self, slot: usize, now: Instant) {
        let Driver {
            listeners,
            engine,
            conns,
            poll,
            stats,
            ..
        } = self;
        listeners.accept(slot, now, stats, |listener, accepted| match accepted {
            Accepted::Connection(stream, remote) => {
                match engine.handle_accepted(listener, remote, now) {
                    Ok(peer) => {
                        if let Err(kind) = conns.adopt(poll, peer, stream) {
                            engine.handle_error(peer, kind, now);
                        }
                    }
                    // Refused by a limit: the engine queued `Event::Refused`; dropping the
                    // stream closes it.
                    Err(_) => drop(stream),
                }
            }
            Accepted::Failed(kind) => engine.handle_accept_error(listener, kind, now),
        });
    }

    /// Reads beacons, announces, expires and auto-connects (nothing when discovery is off).
    fn discover(&mut self, now: Instant) {
        let Some(discovery) = self.discovery.as_mut() else {
            self.discovery_ready = false;
            return;
        };
        if self.discovery_ready {
            self.discovery_ready = discovery.receive(now, &mut self.stats);
        }
        discovery.step(
            &mut self.engine,
            &mut self.batch.events,
            now,
            &mut self.stats,
        );
    }

    fn retry_listeners(&mut self, now: Instant) {
        for slot in self.listeners.due(now) {
            self.accept(slot, now);
        }
    }

    /// Moves the engine's events into the batch, answering callers that wait for a connect.
    fn take_events(&mut self) {
        while let Some(event) = self.engine.poll_event() {
            if !self.watched.is_empty() {
                let outcome = match &event {
                    Event::Connected { peer, addr, .. } => Some((*peer, Ok(*addr))),
                    Event::ConnectFailed { peer, reason, .. } => Some((*peer, Err(*reason))),
                    _ => None,
                };
                if let Some((peer, outcome)) = outcome {
                    if let Some(waiter) = self.watched.remove(&peer) {
                        self.resolved.push((waiter, outcome));
                    }
                }
            }
            if let Event::Received { peer, data } = &event {
                self.hand_over(*peer, data.len() as u64);
            }
            self.batch.events.push(event);
        }
    }

    /// Counts received data handed to the application; past the backlog's high mark the peer
    /// stops being read until the application catches up.
    fn hand_over(&mut self, peer: PeerId, n: u64) {
        let unread = self.backlog.unread.fetch_add(n, Ordering::AcqRel) + n;
        if unread > crate::events::BACKLOG_HIGH && !self.backlog_paused.contains(&peer) {
            let _ = self.engine.pause_reading(peer, true);
            self.backlog_paused.push(peer);
            self.backlog.paused.store(true, Ordering::Release);
        }
    }

    /// Resumes the peers paused for the backlog once the application has taken it down.
    fn resume_backlog(&mut self) {
        if !self.backlog_resumable() {
            return;
        }
        self.backlog.paused.store(false, Ordering::Release);
        // Their reads resume in this pass: `settle` performs the interest changes.
        for peer in std::mem::take(&mut self.backlog_paused) {
            let _ = self.engine.pause_reading(peer, false);
        }
    }

    /// The application has taken the backlog down while peers are paused for it.
    fn backlog_resumable(&self) -> bool {
        !self.backlog_paused.is_empty()
            && self.backlog.unread.load(Ordering::Acquire) <= crate::events::BACKLOG_LOW
    }

    fn flush(&mut self) {
        if !self.batch.is_empty() {
            // The buffers are swapped, not reallocated; a closed queue (the application dropped
            // its `Events`) discards the batch.
            self.out.0.push_all(&mut self.batch);
        }
        for (waiter, outcome) in self.resolved.drain(..) {
            let _ = waiter.try_send(outcome);
        }
    }

    /// The poller failed: close every peer with the error and stop.
    fn fail(&mut self, kind: io::ErrorKind) {
        let now = Instant::now();
        self.engine.shutdown(now);
        for peer in self.engine.peer_ids() {
            self.engine.handle_error(peer, kind, now);
        }
        while let Some(io) = self.engine.poll_io() {
            if let Io::Close { peer, .. } = io {
                self.conns.close(&self.poll, peer);
            }
        }
        self.take_events();
        self.flush();
    }
}

/// Reads until `WouldBlock`, a short read, `Paused`, `Closed` or the per-pass cap; true unless
/// the cap ended it.
///
/// A short read emptied the receive queue (the engine treats it like `WouldBlock` and releases
/// an idle peer's segment), so later data arrives as a new edge: the read that would only answer
/// `WouldBlock` is skipped. An EOF the poller already reported has no edge left to come, so after
/// one, reads go on until they return it.
fn read_turn(engine: &mut Engine, conn: &mut Conn, peer: PeerId, now: Instant) -> bool {
    let stream = &conn.stream;
    for _ in 0..OPS_PER_PASS {
        let mut short = false;
        let moved = engine.read_buf_from(peer, now, |buf| {
            crate::socket::read_spare(stream, buf, &mut short)
        });
        match moved {
            Transfer::Moved(_) if short && !conn.read_closed => {
                conn.readable = false;
                return true;
            }
            Transfer::Moved(_) => {}
            Transfer::WouldBlock => {
                conn.readable = false;
                return true;
            }
            Transfer::Paused | Transfer::Closed => return true,
        }
    }
    false
}

/// Writes until `WouldBlock`, a short write (the send buffer is full), `Paused`, `Closed` or
/// the per-pass cap; true unless the cap ended it.
fn write_turn(engine: &mut Engine, conn: &mut Conn, peer: PeerId, now: Instant) -> bool {
    let stream = &conn.stream;
    for _ in 0..OPS_PER_PASS {
        let mut short = false;
        let moved = engine.write_to(peer, now, |slices| {
            let result = crate::socket::write(stream, slices);
            let offered: usize = slices.iter().map(|s| s.len()).sum();
            short = matches!(result, Ok(n) if n < offered);
            result
        });
        match moved {
            Transfer::Moved(_) if short => {
                conn.writable = false;
                return true;
            }
            Transfer::Moved(_) => {}
            Transfer::WouldBlock => {
                conn.writable = false;
                return true;
            }
            Transfer::Paused | Transfer::Closed => return true,
        }
    }
    false
}
