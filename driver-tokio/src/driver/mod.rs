//! The driver task: owns the engine, the sockets and the timer.
//!
//! One call of [`Driver::poll`] runs rounds of: drain the command channel (applying every
//! command, then draining the engine's `Io` and events), deliver connect results, fire the
//! engine's deadline if it has passed, then service the sockets whose wakers queued them (and the
//! ones whose interest just turned on). It stops when a round finds nothing to do, re-arms the one
//! `Sleep` to the engine's `poll_timeout` and returns `Pending`; after a bounded number of busy
//! rounds it yields to let other tasks run.

mod events;
mod sockets;

use crate::channel::PeerLink;
use crate::command::{Command, Reply};
use crate::error::BindError;
use crate::readiness::{ReadyQueue, Source, Token};
use crate::shared::Shared;
use bytes::Bytes;
use openp2p_core::{Config, Engine, Interest, ListenerId, PeerId, PeerState, SendError};
use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tokio::task::AbortHandle;
use tokio::time::Sleep;

/// Busy rounds in one poll before the driver yields to the scheduler.
const MAX_ROUNDS: usize = 16;
/// Commands applied per round (the rest wait for the next round, keeping rounds short).
const COMMANDS_PER_ROUND: usize = 4096;

/// Counters of the driver task's own work, for tests and tuning
/// ([`Node::driver_stats`](crate::Node::driver_stats)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DriverStats {
    /// Times the driver task was polled (woken).
    pub polls: u64,
    /// Socket turns: one readiness token serviced (a read, write or accept attempt sequence).
    pub socket_turns: u64,
    /// Commands applied.
    pub commands: u64,
    /// Engine deadlines handled.
    pub timeouts: u64,
}

/// Why one poll of the driver ended without waiting.
enum Step {
    /// Let the runtime run other tasks (and poll its IO driver), then poll again.
    Yield,
    /// The engine has shut down.
    Finished,
}

/// A connect attempt's outcome, reported by the task that performed it.
type ConnectResult = (PeerId, io::Result<TcpStream>);

/// A connected socket with its wakers and the interest the engine last announced.
#[derive(Debug)]
struct PeerSocket {
    stream: TcpStream,
    read: Source,
    write: Source,
    interest: Interest,
}

/// Everything the driver keeps per live peer, indexed by the peer's slot.
#[derive(Debug)]
struct PeerSlot {
    id: PeerId,
    link: Arc<PeerLink>,
    socket: Option<PeerSocket>,
    connecting: Option<AbortHandle>,
    /// Admitted messages the engine refused with `QueueFull`. The send mirror makes this
    /// impossible; kept so that a mirror error delays data instead of dropping it.
    backlog: VecDeque<Bytes>,
    /// The stream was closed while `backlog` was not empty: disconnect once it is.
    close_after_backlog: bool,
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        if let Some(task) = self.connecting.take() {
            task.abort();
        }
    }
}

#[derive(Debug)]
struct ListenerSlot {
    id: ListenerId,
    listener: TcpListener,
    accept: Source,
}

pub(crate) struct Driver {
    engine: Engine,
    stats: DriverStats,
    config: Arc<Config>,
    /// Peers whose send mirror drained to the low-water mark after a refused send.
    writable_due: Vec<PeerId>,
    commands: UnboundedReceiver<Command>,
    connects_tx: UnboundedSender<ConnectResult>,
    connects_rx: UnboundedReceiver<ConnectResult>,
    shared: Arc<Shared>,
    ready: Arc<ReadyQueue>,
    peers: Vec<Option<PeerSlot>>,
    listeners: Vec<Option<ListenerSlot>>,
    /// Sockets to service this round.
    work: Vec<Token>,
    /// Sockets to service next round (interest turned on, or a socket used its share of a round).
    next: Vec<Token>,
    /// Sockets that used up their turn while still ready: serviced on the next poll, after the
    /// runtime has run the application's tasks (see `sockets::WRITE_BYTES_PER_TURN`).
    deferred: Vec<Token>,
    /// The runtime runs every task on this thread (`current_thread`): a socket's write turn is
    /// capped and a socket that had its turn waits for the next poll, so that readers on the
    /// same thread keep up (see `sockets::WRITE_BYTES_PER_TURN`). On a multi-threaded runtime
    /// the readers run in parallel, and the cap only adds wake-ups: turns are as before.
    one_thread: bool,
    sleep: Pin<Box<Sleep>>,
    sleep_at: Option<Instant>,
    /// Listeners whose accept failed with a resource error, retried at `accept_retry_at`.
    accept_retry: Vec<Token>,
    accept_retry_at: Option<Instant>,
    pending_listens: Vec<(ListenerId, Reply<Result<SocketAddr, BindError>>)>,
    shutdown_waiters: Vec<Reply<()>>,
    handles_gone: bool,
    finished: bool,
}

impl Drop for Driver {
    /// Also when the task is dropped early (the runtime shut down, or a bug panicked): handles
    /// waiting for events or stream data must not wait forever.
    fn drop(&mut self) {
        self.end_shared(false);
    }
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("peers", &self.engine.peer_count())
            .finish_non_exhaustive()
    }
}

impl Driver {
    pub(crate) fn new(
        engine: Engine,
        config: Arc<Config>,
        commands: UnboundedReceiver<Command>,
        shared: Arc<Shared>,
    ) -> Driver {
        let (connects_tx, connects_rx) = unbounded_channel();
        let one_thread = tokio::runtime::Handle::try_current().is_ok_and(|runtime| {
            runtime.runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread
        });
        Driver {
            engine,
            one_thread,
            stats: DriverStats::default(),
            config,
            writable_due: Vec::new(),
            commands,
            connects_tx,
            connects_rx,
            shared,
            ready: Arc::new(ReadyQueue::default()),
            peers: Vec::new(),
            listeners: Vec::new(),
            work: Vec::new(),
            next: Vec::new(),
            deferred: Vec::new(),
            // Re-armed to the engine's deadline before it is ever polled.
            sleep: Box::pin(tokio::time::sleep(Duration::from_secs(3600))),
            sleep_at: None,
            accept_retry: Vec::new(),
            accept_retry_at: None,
            pending_listens: Vec::new(),
            shutdown_waiters: Vec::new(),
            handles_gone: false,
            finished: false,
        }
    }

    /// Runs the driver until the engine has shut down.
    pub(crate) async fn run(mut self) {
        while let Step::Yield = std::future::poll_fn(|cx| self.poll(cx)).await {
            // Tokio runs the other ready tasks and polls the IO driver before it resumes this
            // one, so the readers of what this turn wrote get their readiness first.
            tokio::task::yield_now().await;
        }
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Step> {
        self.stats.polls += 1;
        // Sockets deferred by the previous poll go first.
        self.next.append(&mut self.deferred);
        for _ in 0..MAX_ROUNDS {
            let now = Instant::now();
            let busy = self.round(cx, now);
            if self.finished {
                self.finish();
                return Poll::Ready(Step::Finished);
            }
            if !busy {
                if !self.deferred.is_empty() {
                    // Sockets wait for their next turn, after the other tasks.
                    return Poll::Ready(Step::Yield);
                }
                return self.sleep_until_deadline(cx).map(|()| Step::Yield);
            }
        }
        // Still busy: let other tasks run, then continue.
        if self.one_thread {
            return Poll::Ready(Step::Yield);
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// One round; true if it did anything (another round may find more).
    fn round(&mut self, cx: &mut Context<'_>, now: Instant) -> bool {
        let mut busy = false;
        for _ in 0..COMMANDS_PER_ROUND {
            match self.commands.poll_recv(cx) {
                Poll::Ready(Some(command)) => {
                    self.stats.commands += 1;
                    self.apply(command, now);
                    self.drain(now);
                    busy = true;
                }
                Poll::Ready(None) => {
                    if !self.handles_gone {
                        // Every handle and stream is gone: nobody can see events any more.
                        self.handles_gone = true;
                        self.engine.shutdown(now);
                        self.drain(now);
                        busy = true;
                    }
                    break;
                }
                Poll::Pending => break,
            }
        }
        while let Poll::Ready(Some((peer, result))) = self.connects_rx.poll_recv(cx) {
            self.connect_finished(peer, result, now);
            self.drain(now);
            busy = true;
        }
        if self.engine.poll_timeout().is_some_and(|at| at <= now) {
            self.stats.timeouts += 1;
            self.engine.handle_timeout(now);
            self.drain(now);
            busy = true;
        }
        if self.accept_retry_at.is_some_and(|at| at <= now) {
            self.accept_retry_at = None;
            self.next.append(&mut self.accept_retry);
        }
        let mut work = std::mem::take(&mut self.work);
        work.append(&mut self.next);
        self.ready.take(cx.waker(), &mut work);
        if !work.is_empty() {
            busy = true;
            self.stats.socket_turns += work.len() as u64;
            for token in work.drain(..) {
                self.service(token, now);
            }
            self.drain(now);
        }
        self.work = work;
        busy
    }

    /// Arms the timer for the earliest deadline; `Pending` either way (a past deadline wakes the
    /// task at once).
    fn sleep_until_deadline(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let deadline = match (self.engine.poll_timeout(), self.accept_retry_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let Some(deadline) = deadline else {
            return Poll::Pending;
        };
        if deadline <= Instant::now() {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        if self.sleep_at != Some(deadline) {
            self.sleep_at = Some(deadline);
            self.sleep
                .as_mut()
                .reset(tokio::time::Instant::from_std(deadline));
        }
        if self.sleep.as_mut().poll(cx).is_ready() {
            self.sleep_at = None;
            cx.waker().wake_by_ref();
        }
        Poll::Pending
    }

    /// After the engine's `ShutdownComplete`: apply the commands still queued (a send a handle
    /// accepted meanwhile comes back as `SendRefused`; later ones fail in the handle), deliver
    /// `ShutdownComplete` as the last event, answer the waiters and end the event stream.
    fn finish(&mut self) {
        self.commands.close();
        // `try_recv` takes no cooperative budget: every queued command is reached. After the
        // close it says `Empty` only while a send that began before it (on another thread) has
        // not landed yet, and `Disconnected` once nothing more can come: wait for that, or the
        // racing command would be dropped with the channel.
        loop {
            match self.commands.try_recv() {
                Ok(command) => {
                    let now = Instant::now();
                    self.stats.commands += 1;
                    self.apply(command, now);
                    self.drain(now);
                }
                Err(tokio::sync::mpsc::error::TryRecvError::Empty) => std::thread::yield_now(),
                Err(tokio::sync::mpsc::error::TryRecvError::Disconnected) => break,
            }
        }
        for reply in self.shutdown_waiters.drain(..) {
            let _ = reply.send(());
        }
        for (_, reply) in self.pending_listens.drain(..) {
            let _ = reply.send(Err(BindError::ShuttingDown));
        }
        self.peers.clear();
        self.listeners.clear();
        self.end_shared(true);
    }

    /// Ends the event stream (after `ShutdownComplete` if `complete`) and every peer's stream
    /// (idempotent).
    fn end_shared(&self, complete: bool) {
        let mut shared = self.shared.lock();
        if complete && !shared.ended {
            shared
                .events
                .push_back(openp2p_core::Event::ShutdownComplete);
        }
        shared.ended = true;
        for (_, link) in shared.links.drain() {
            link.disconnected(openp2p_core::DisconnectReason::Shutdown);
        }
        shared.wake_waiters();
        drop(shared);
        self.shared.notify_ended();
    }

    /// Performs the engine's `Io` and delivers its events until both queues are empty.
    fn drain(&mut self, now: Instant) {
        loop {
            let mut any = false;
            while let Some(io) = self.engine.poll_io() {
                self.perform(io, now);
                any = true;
            }
            any |= self.deliver_events(now);
            if !any {
                break;
            }
        }
    }

    fn apply(&mut self, command: Command, now: Instant) {
        let engine = &mut self.engine;
        match command {
            Command::Listen {
                addr,
                framing,
                reply,
            } => {
                let listener = match framing {
                    Some(framing) => engine.listen_with(addr, framing),
                    None => engine.listen(addr),
                };
                match listener {
                    Ok(listener) => self.pending_listens.push((listener, reply)),
                    Err(_) => {
                        let _ = reply.send(Err(BindError::ShuttingDown));
                    }
                }
            }
            Command::Connect {
                addr,
                framing,
                expect,
                reply,
            } => {
                let framing = framing.unwrap_or(engine.config().framing);
                let peer = engine.connect_full(addr, framing, expect, now);
                if let Ok(peer) = peer {
                    self.add_peer(peer);
                }
                let _ = reply.send(peer);
            }
            Command::Send {
                peer,
                data,
                from_stream: true,
            } => self.send_admitted(peer, data, now),
            // Refusals come back as `Event::SendRefused` (the mirror is refunded on delivery).
            Command::Send { peer, data, .. } => engine.send_or_report(peer, data, now),
            Command::SendMany { peers, data } => {
                for peer in peers {
                    engine.send_or_report(peer, data.clone(), now);
                }
            }
            Command::PauseReading { peer } => {
                let _ = engine.pause_reading(peer, true);
            }
            Command::ResumeReading { peer } => {
                let _ = engine.pause_reading(peer, false);
            }
            Command::Disconnect { peer, reply } => {
                let _ = reply.send(engine.disconnect(peer, now));
            }
            Command::Abort { peer, reply } => {
                let _ = reply.send(engine.abort(peer, now));
            }
            Command::SetLimits {
                peer,
                limits,
                reply,
            } => {
                let _ = reply.send(engine.set_limits(peer, limits, now));
            }
            Command::SetGlobalLimits { limits, reply } => {
                engine.set_global_limits(limits, now);
                let _ = reply.send(());
            }
            Command::Stats { peer, reply } => {
                let _ = reply.send(engine.stats(peer));
            }
            Command::Info { peer, reply } => {
                let _ = reply.send(engine.peer(peer));
            }
            Command::GlobalStats { reply } => {
                let _ = reply.send(engine.global_stats());
            }
            Command::DriverStats { reply } => {
                let _ = reply.send(self.stats);
            }
            Command::Shutdown { reply } => {
                self.shutdown_waiters.push(reply);
                engine.shutdown(now);
                // The engine takes no more sends: handles and streams refuse them at once.
                for slot in self.peers.iter().flatten() {
                    slot.link.close_writes();
                }
            }
            Command::StreamClosed { peer } => {
                let Some(slot) = self.slot_mut(peer) else {
                    return;
                };
                let dropped = slot.link.lock().discard;
                if !slot.backlog.is_empty() {
                    slot.close_after_backlog = true;
                } else {
                    let _ = self.engine.disconnect(peer, now);
                }
                if dropped {
                    // A paused peer must read on to see the remote's EOF.
                    let _ = self.engine.pause_reading(peer, false);
                }
            }
        }
    }

    /// Creates the driver's record (and the shared link) of a new peer.
    fn add_peer(&mut self, peer: PeerId) {
        let framing = self
            .engine
            .peer(peer)
            .map_or(self.config.framing, |info| info.framing);
        let link = Arc::new(PeerLink::new(peer, framing, self.config.clone()));
        self.shared.lock().links.insert(peer, link.clone());
        let slot = peer.slot();
        if self.peers.len() <= slot {
            self.peers.resize_with(slot + 1, || None);
        }
        // A previous occupant of the slot is dead already (the engine reused its slot); its
        // close is still queued and is ignored for the new id.
        self.peers[slot] = Some(PeerSlot {
            id: peer,
            link,
            socket: None,
            connecting: None,
            backlog: VecDeque::new(),
            close_after_backlog: false,
        });
    }

    fn slot_mut(&mut self, peer: PeerId) -> Option<&mut PeerSlot> {
        self.peers
            .get_mut(peer.slot())?
            .as_mut()
            .filter(|slot| slot.id == peer)
    }

    /// Queues a message a stream wrote (the send mirror admitted it).
    fn send_admitted(&mut self, peer: PeerId, data: Bytes, now: Instant) {
        if self
            .slot_mut(peer)
            .is_some_and(|slot| !slot.backlog.is_empty())
        {
            if let Some(slot) = self.slot_mut(peer) {
                slot.backlog.push_back(data);
            }
            return;
        }
        if let Err(error) = self.engine.send(peer, data.clone(), now) {
            self.send_refused(peer, data, error);
        }
    }

    /// The engine refused an admitted message: keep it for later (queue space) or give its
    /// count back and close the peer's sending side (the peer is closing or gone).
    fn send_refused(&mut self, peer: PeerId, data: Bytes, error: SendError) {
        let Some(slot) = self.slot_mut(peer) else {
            return;
        };
        match error {
            SendError::QueueFull { .. } => slot.backlog.push_back(data),
            _ => slot.link.refused(data.len(), true),
        }
    }

    /// Moves backlogged messages into the engine while it takes them.
    fn flush_backlog(&mut self, peer: PeerId, now: Instant) {
        let engine = &mut self.engine;
        let Some(slot) = self.peers.get_mut(peer.slot()).and_then(Option::as_mut) else {
            return;
        };
        if slot.id != peer {
            return;
        }
        while let Some(data) = slot.backlog.pop_front() {
            match engine.send(peer, data.clone(), now) {
                Ok(()) => {}
                Err(SendError::QueueFull { .. }) => {
                    slot.backlog.push_front(data);
                    return;
                }
                Err(_) => {
                    slot.link.refused(data.len(), true);
                    for data in slot.backlog.drain(..) {
                        slot.link.refused(data.len(), true);
                    }
                }
            }
        }
        if slot.close_after_backlog {
            slot.close_after_backlog = false;
            let _ = engine.disconnect(peer, now);
        }
    }

    /// A connect task finished.
    fn connect_finished(&mut self, peer: PeerId, result: io::Result<TcpStream>, now: Instant) {
        let still_connecting = self
            .engine
            .peer(peer)
            .is_some_and(|info| info.state == PeerState::Connecting);
        if !still_connecting {
            return;
        }
        match result {
            Ok(stream) => {
                if let Some(slot) = self.slot_mut(peer) {
                    slot.connecting = None;
                }
                self.attach(peer, stream);
                self.engine.handle_connected(peer, now);
            }
            Err(e) => self.engine.handle_connect_failed(peer, e.kind(), now),
        }
    }

    /// Gives a connected socket to its peer record.
    fn attach(&mut self, peer: PeerId, stream: TcpStream) {
        crate::socket::configure(&stream, self.engine.config());
        let token = |action| Token {
            slot: peer.slot(),
            serial: peer.serial(),
            action,
        };
        let socket = PeerSocket {
            stream,
            read: Source::new(token(crate::readiness::Action::Read), &self.ready),
            write: Source::new(token(crate::readiness::Action::Write), &self.ready),
            interest: Interest::default(),
        };
        if let Some(slot) = self.slot_mut(peer) {
            slot.socket = Some(socket);
        }
    }
}
