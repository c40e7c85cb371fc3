//! The application's handle: start a node, send it commands.

use crate::command::{Command, Outcome};
use crate::conn::Conns;
use crate::driver::{CommandSource, Driver, EventSink, WAKER};
use crate::error::{BindError, DialError, SendWaitError, StartError, Stopped};
use crate::events::{Batch, Events};
use crate::handoff::Handoff;
use crate::listeners::Listeners;
use crate::{
    Bytes, Config, DriverStats, Engine, Framing, GlobalStats, Limits, PeerId, PeerInfo, PeerKey,
    PeerStats, PoolUsage, SendManyFailures,
};
use mio::{Poll, Waker};
use std::net::SocketAddr;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// A handle to a running node: one IO thread that owns the [`Engine`], the `mio::Poll`, every
/// listener and every socket.
///
/// Cheap to clone, `Send + Sync`. Commands travel to the IO thread through a queue and wake it
/// with a `mio::Waker` (one wake-up for a burst of commands, not one per command). Commands that
/// change state return as soon as they are queued; queries and `listen`/`connect` wait for the
/// IO thread's answer. What happens on the network arrives on the [`Events`] queue returned by
/// [`Node::start`].
///
/// The node stops after [`shutdown`](Self::shutdown), or when the last handle is dropped (then
/// the IO thread shuts down gracefully in the background). Commands to a stopped node return
/// [`Stopped`].
///
/// ```no_run
/// use openp2p_mio::{Config, Event, Node};
///
/// let (node, mut events) = Node::start(Config::default())?;
/// let addr = node.listen("127.0.0.1:0".parse()?)?;
/// println!("listening on {addr}");
/// for event in &mut events {
///     if let Event::Received { peer, data } = event {
///         node.send(peer, data)?; // echo
///     }
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Node {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    commands: Arc<Handoff<Vec<Command>>>,
    /// Shared with the IO thread: closing a waker's file descriptor while a wake is pending would
    /// lose the wake-up, so the IO thread keeps it open as long as it polls.
    waker: Arc<Waker>,
    /// Set by the first command after the IO thread last drained the queue; only that command
    /// pays for a wake-up.
    wake_pending: Arc<AtomicBool>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        // The last handle is gone: shut down gracefully in the background.
        if self
            .commands
            .push_with(|queue| queue.push(Command::Shutdown))
        {
            let _ = self.waker.wake();
        }
    }
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Command")
    }
}

impl Node {
    /// Validates `config`, creates the poller and spawns the IO thread (named `openp2p-mio`).
    ///
    /// `config.nodelay`, `config.keepalive` and `config.listen_backlog` apply to the sockets this
    /// driver opens; everything else is the engine's.
    pub fn start(config: Config) -> Result<(Node, Events), StartError> {
        let engine = Engine::with_os_entropy(config).map_err(StartError::Config)?;
        let poll = Poll::new().map_err(StartError::Io)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER).map_err(StartError::Io)?);
        let commands: Arc<Handoff<Vec<Command>>> = Arc::default();
        let events: Arc<Handoff<Batch>> = Arc::default();
        let wake_pending = Arc::new(AtomicBool::new(false));
        let backlog = Arc::new(crate::events::Backlog {
            unread: std::sync::atomic::AtomicU64::new(0),
            paused: AtomicBool::new(false),
            waker: Arc::clone(&waker),
        });
        let config = engine.config();
        let driver = Driver {
            conns: Conns::new(config.nodelay, config.keepalive),
            listeners: Listeners::default(),
            poll,
            engine,
            commands: CommandSource(Arc::clone(&commands)),
            inbox: Default::default(),
            taken: Vec::new(),
            wake_pending: Arc::clone(&wake_pending),
            _waker: Arc::clone(&waker),
            out: EventSink(Arc::clone(&events)),
            batch: Batch::default(),
            ready: Default::default(),
            carry: Vec::new(),
            more_commands: false,
            watched: Default::default(),
            resolved: Vec::new(),
            stats: DriverStats::default(),
            stopping: false,
            discovery: None,
            discovery_ready: false,
            backlog: Arc::clone(&backlog),
            backlog_paused: Vec::new(),
        };
        let thread = std::thread::Builder::new()
            .name("openp2p-mio".into())
            .spawn(move || driver.run())
            .map_err(StartError::Io)?;
        let shared = Shared {
            commands,
            waker,
            wake_pending,
            thread: Mutex::new(Some(thread)),
        };
        Ok((
            Node {
                shared: Arc::new(shared),
            },
            Events::new(events, backlog),
        ))
    }

    fn post(&self, command: Command) -> Result<(), Stopped> {
        if !self.shared.commands.push_with(|queue| queue.push(command)) {
            return Err(Stopped);
        }
        if !self.shared.wake_pending.swap(true, Ordering::AcqRel) {
            // A failed wake means the poller is gone, and so is the IO thread: the command
            // will be answered (or not) by the channel's disconnection.
            let _ = self.shared.waker.wake();
        }
        Ok(())
    }

    fn ask<T>(&self, make: impl FnOnce(mpsc::SyncSender<T>) -> Command) -> Result<T, Stopped> {
        let (reply, answer) = mpsc::sync_channel(1);
        self.post(make(reply))?;
        answer.recv().map_err(|_| Stopped)
    }

    /// Listens on `addr` with the configured framing and returns the bound address (port 0
    /// picks a free port). Waits for the IO thread's answer. An
    /// [`Event::Listening`](crate::Event::Listening) is queued as well.
    pub fn listen(&self, addr: SocketAddr) -> Result<SocketAddr, BindError> {
        self.listen_with(addr, None)
    }

    /// Like [`listen`](Self::listen), with the framing of every peer accepted on this listener
    /// (`None`: the configured one).
    pub fn listen_with(
        &self,
        addr: SocketAddr,
        framing: Option<Framing>,
    ) -> Result<SocketAddr, BindError> {
        self.ask(|reply| Command::Listen {
            addr,
            framing,
            reply,
        })
        .map_err(|Stopped| BindError::Stopped)?
    }

    /// Starts a connection and returns its id at once; exactly one
    /// [`Event::Connected`](crate::Event::Connected) or
    /// [`Event::ConnectFailed`](crate::Event::ConnectFailed) follows for it. Data sent before it
    /// connects is queued. Waits only for the engine to issue the id.
    pub fn connect(&self, addr: SocketAddr) -> Result<PeerId, DialError> {
        self.connect_with(addr, None)
    }

    /// Like [`connect`](Self::connect), with this connection's framing (`None`: the configured
    /// one).
    pub fn connect_with(
        &self,
        addr: SocketAddr,
        framing: Option<Framing>,
    ) -> Result<PeerId, DialError> {
        self.ask(|reply| Command::Connect {
            addr,
            framing,
            expect: None,
            reply,
            outcome: None,
        })
        .map_err(|Stopped| DialError::Stopped)?
    }

    /// Like [`connect`](Self::connect), and the remote must prove `key` in the secure handshake.
    /// Another key ends the connect in [`Event::ConnectFailed`](crate::Event::ConnectFailed) with
    /// [`ConnectFailure::Handshake`](crate::ConnectFailure::Handshake)`(`[`HandshakeFailure::KeyMismatch`](crate::HandshakeFailure::KeyMismatch)`
    /// { expected, actual })` before this node sends its own key or any data; on a node without
    /// [`Config::secure`](crate::Config::secure) this is
    /// [`DialError::Rejected`]`(`[`ConnectError::NotSecure`](crate::ConnectError::NotSecure)`)`.
    pub fn connect_pinned(&self, addr: SocketAddr, key: PeerKey) -> Result<PeerId, DialError> {
        self.ask(|reply| Command::Connect {
            addr,
            framing: None,
            expect: Some(key),
            reply,
            outcome: None,
        })
        .map_err(|Stopped| DialError::Stopped)?
    }

    /// Connects and waits for the outcome (at most the configured `connect_timeout`). The
    /// `Connected` or `ConnectFailed` event is queued on [`Events`] as well.
    pub fn connect_wait(&self, addr: SocketAddr) -> Result<PeerId, DialError> {
        let (outcome_tx, outcome_rx): (_, Receiver<Outcome>) = mpsc::sync_channel(1);
        let peer = self
            .ask(|reply| Command::Connect {
                addr,
                framing: None,
                expect: None,
                reply,
                outcome: Some(outcome_tx),
            })
            .map_err(|Stopped| DialError::Stopped)??;
        match outcome_rx.recv() {
            Ok(Ok(_)) => Ok(peer),
            Ok(Err(reason)) => Err(DialError::Failed(reason)),
            Err(_) => Err(DialError::Stopped),
        }
    }

    /// Queues one message for `peer` without waiting for the IO thread (zero-copy: the `Bytes`
    /// is kept until written). If the engine refuses it (`QueueFull`, `UnknownPeer`, ...), the
    /// message comes back as a [`SendFailure`](crate::SendFailure) on
    /// [`Events::send_failure`]; to learn the answer at once, use [`send_wait`](Self::send_wait).
    pub fn send(&self, peer: PeerId, data: impl Into<Bytes>) -> Result<(), Stopped> {
        self.post(Command::Send {
            peer,
            data: data.into(),
        })
    }

    /// Queues one message and waits for the engine's answer.
    pub fn send_wait(&self, peer: PeerId, data: impl Into<Bytes>) -> Result<(), SendWaitError> {
        self.ask(|reply| Command::SendWait {
            peer,
            data: data.into(),
            reply,
        })
        .map_err(|Stopped| SendWaitError::Stopped)?
        .map_err(SendWaitError::Rejected)
    }

    /// Queues the same message for every peer in `peers` (one shared `Bytes`, no copy).
    /// Refusals come back as [`SendFailure`](crate::SendFailure)s, one per refusing peer.
    pub fn send_many(&self, peers: &[PeerId], data: impl Into<Bytes>) -> Result<(), Stopped> {
        self.post(Command::SendMany {
            peers: peers.to_vec(),
            data: data.into(),
        })
    }

    /// Queues the same message for every peer in `peers` and waits for the engine's answer: the
    /// peers that refused it, with why (empty when every peer took it).
    pub fn send_many_wait(
        &self,
        peers: &[PeerId],
        data: impl Into<Bytes>,
    ) -> Result<SendManyFailures, Stopped> {
        let (peers, data) = (peers.to_vec(), data.into());
        self.ask(|reply| Command::SendManyWait { peers, data, reply })
    }

    /// Closes gracefully: everything already sent is written, then the connection is shut down;
    /// `Disconnected` follows. A stale id is ignored.
    pub fn disconnect(&self, peer: PeerId) -> Result<(), Stopped> {
        self.post(Command::Disconnect(peer))
    }

    /// Closes at once with a reset; queued bytes are dropped and reported as `unsent` in
    /// `Disconnected`. A stale id is ignored.
    pub fn abort(&self, peer: PeerId) -> Result<(), Stopped> {
        self.post(Command::Abort(peer))
    }

    /// Changes one peer's upload and download limits. A stale id is ignored.
    pub fn set_limits(&self, peer: PeerId, limits: Limits) -> Result<(), Stopped> {
        self.post(Command::SetLimits(peer, limits))
    }

    /// Changes the limits shared by all peers.
    pub fn set_global_limits(&self, limits: Limits) -> Result<(), Stopped> {
        self.post(Command::SetGlobalLimits(limits))
    }

    /// Starts LAN discovery (replacing any running one): binds the UDP socket, announces this
    /// node every `options.config.interval` and reports other nodes as
    /// [`Event::Discovered`](crate::Event::Discovered) / [`Event::Lost`](crate::Event::Lost).
    /// With `options.config.auto_connect`, newly discovered nodes are connected to (only by the
    /// node with the smaller key, so a pair ends up with one connection); the usual
    /// `Connected` / `ConnectFailed` follow. Returns the bound UDP address.
    ///
    /// ```no_run
    /// use openp2p_mio::discovery::{DiscoveryOptions, NodeKey};
    /// use openp2p_mio::{Config, Node};
    ///
    /// let (node, _events) = Node::start(Config::default())?;
    /// let tcp = node.listen("0.0.0.0:9988".parse()?)?;
    /// node.enable_discovery(DiscoveryOptions::new(NodeKey([1; 16]), "alice", tcp.port()))?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn enable_discovery(
        &self,
        options: crate::discovery::DiscoveryOptions,
    ) -> Result<SocketAddr, crate::DiscoveryError> {
        self.ask(|reply| Command::EnableDiscovery { options, reply })
            .map_err(|Stopped| crate::DiscoveryError::Stopped)?
    }

    /// Stops LAN discovery and closes its socket (known nodes are forgotten without `Lost`).
    pub fn disable_discovery(&self) -> Result<(), Stopped> {
        self.post(Command::DisableDiscovery)
    }

    /// Runs `f` on the IO thread with read-only access to the engine and the driver's counters,
    /// and returns its result. Keep it short: the IO thread does nothing else meanwhile, and do
    /// not call this node's handle from inside `f` (a command that waits for the IO thread would
    /// wait for itself). A panic in `f` is caught on the IO thread (the node keeps running) and
    /// resumed in the caller.
    pub fn query<T, F>(&self, f: F) -> Result<T, Stopped>
    where
        T: Send + 'static,
        F: FnOnce(&Engine, &DriverStats) -> T + Send + 'static,
    {
        let answer = self.ask(|reply| {
            Command::Inspect(Box::new(move |engine: &Engine, stats: &DriverStats| {
                let answer = panic::catch_unwind(AssertUnwindSafe(|| f(engine, stats)));
                let _ = reply.try_send(answer);
            }))
        })?;
        answer.map_err(|payload| panic::resume_unwind(payload))
    }

    /// A live peer's traffic statistics (`None` for a stale id).
    pub fn stats(&self, peer: PeerId) -> Result<Option<PeerStats>, Stopped> {
        self.query(move |engine, _| engine.stats(peer))
    }

    /// Node-wide statistics.
    pub fn global_stats(&self) -> Result<GlobalStats, Stopped> {
        self.query(|engine, _| engine.global_stats())
    }

    /// What is known about a live peer (`None` for a stale id).
    pub fn peer(&self, peer: PeerId) -> Result<Option<PeerInfo>, Stopped> {
        self.query(move |engine, _| engine.peer(peer))
    }

    /// The receive pool's state.
    pub fn pool_usage(&self) -> Result<PoolUsage, Stopped> {
        self.query(|engine, _| engine.pool_usage())
    }

    /// The IO thread's own counters (wake-ups, accept errors and back-offs).
    pub fn driver_stats(&self) -> Result<DriverStats, Stopped> {
        self.query(|_, stats| *stats)
    }

    /// Shuts down gracefully and waits for the IO thread to finish: listeners close, connects
    /// are abandoned, every peer's queued bytes are flushed (bounded by the configured
    /// `linger_timeout`), then `ShutdownComplete` is queued and the thread exits. Calling it
    /// again, or on a stopped node, returns at once.
    pub fn shutdown(&self) {
        let _ = self.post(Command::Shutdown);
        let thread = match self.shared.thread.lock() {
            Ok(mut guard) => guard.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(thread) = thread {
            // A panic on the IO thread has already ended the node; there is nothing to resume.
            let _ = thread.join();
        }
    }
}
