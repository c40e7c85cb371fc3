//! The application's handle.

use crate::command::Command;
use crate::driver::Driver;
use crate::error::{BindError, StartError, StreamError};
use crate::queue::Queue;
use crate::shared::{PeerTable, QueueLimits};
use crate::stream::PeerStream;
use async_channel::Sender;
use bytes::Bytes;
use futures_core::Stream;
use openp2p_core::{
    Config, ConfigError, ConnectError, Engine, Event, Framing, GlobalStats, Limits, PeerId,
    PeerInfo, PeerKey, PeerStats, SendError, SendManyFailures, UnknownId,
};
use std::fmt;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// What every clone of a [`Node`] and every [`PeerStream`] share: the way to the driver.
#[derive(Debug)]
pub(crate) struct Handle {
    pub(crate) commands: Arc<Queue<Command>>,
    /// The event queue (the driver closes it when it stops), also for helper tasks (discovery).
    pub(crate) events: Arc<Queue<Event>>,
    pub(crate) table: Arc<PeerTable>,
    pub(crate) limits: QueueLimits,
    /// The node's configuration, for the engine's admission rule.
    pub(crate) config: Config,
}

impl Handle {
    /// Queues a command; false when the driver has stopped.
    pub(crate) fn command(&self, command: Command) -> bool {
        self.commands.push(command).is_ok()
    }

    /// The application took `event`. A `Received` hands its bytes back to the peer's read-ahead
    /// budget: a peer the driver paused because the application fell behind resumes once it has
    /// caught up (the same budget a `PeerStream` uses).
    pub(crate) fn taken(&self, event: &Event) {
        if let Event::Received { peer, data } = event {
            if self.table.with(*peer, |s| s.consumed(data.len() as u64)) == Some(true) {
                self.command(Command::ResumeReading { peer: *peer });
            }
        }
    }
}

/// A running openp2p node: listen, connect, send, receive, disconnect.
///
/// Cheap to clone and `Send + Sync`: every clone talks to the same driver task, which owns the
/// engine and the sockets. The API is the Tokio driver's (`openp2p-tokio`), name for name. Commands
/// that only change state (`send`, `send_many`, `disconnect`, `abort`, limits) complete without a
/// round trip to the driver: they are `async` for that API's sake and never wait, and `send`
/// still answers `QueueFull` at once (see [`send`](Self::send)). `listen`, `connect` and the
/// queries wait for the driver's answer.
///
/// Events ([`openp2p_core::Event`]) come from [`next_event`](Self::next_event) or the
/// [`events`](Self::events) stream. Clones share one event queue: each event goes to exactly one
/// consumer, so let one task drain it. Drain it steadily: received data holds receive-pool
/// memory until dropped (when the pool is exhausted, reading pauses, which is back-pressure, not
/// loss), and other events queue without bound.
///
/// The driver stops after [`shutdown`](Self::shutdown) completes, or when every `Node` clone
/// and every [`PeerStream`] has been dropped (it shuts the engine down gracefully first). A
/// stopped node treats every peer id as unknown and refuses to listen or connect
/// (`ShuttingDown`).
///
/// ```no_run
/// use openp2p_async_std::{Config, Event, Node};
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let node = Node::start(Config::default())?;
/// let addr = node.listen("127.0.0.1:0".parse()?).await?;
/// let peer = node.connect(addr).await?;
/// node.send(peer, "hello".into()).await?;
/// while let Some(event) = node.next_event().await {
///     if let Event::Received { data, .. } = event {
///         println!("{} bytes", data.len());
///         break;
///     }
/// }
/// node.shutdown().await;
/// # Ok(()) }
/// ```
pub struct Node {
    handle: Arc<Handle>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        // The last `Node` clone or `PeerStream` is gone: the driver shuts the node down.
        self.commands.release_producers();
    }
}

impl fmt::Debug for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Node")
            .field("handle", &self.handle)
            .finish_non_exhaustive()
    }
}

impl Clone for Node {
    fn clone(&self) -> Self {
        Node {
            handle: Arc::clone(&self.handle),
        }
    }
}

/// Sends a command with a one-slot reply channel and waits for the answer.
async fn ask<T>(handle: &Handle, command: impl FnOnce(Sender<T>) -> Command) -> Option<T> {
    let (reply, answer) = async_channel::bounded(1);
    if !handle.command(command(reply)) {
        return None;
    }
    answer.recv().await.ok()
}

impl Node {
    /// Validates `config` and starts the driver on a thread of its own (named
    /// `openp2p-async-std`), where [`async_io::block_on`] runs it. The node then works with any
    /// executor, or none; use [`Node::new`] to run the driver on your executor instead.
    pub fn start(config: Config) -> Result<Node, StartError> {
        let (node, driver) = Node::new(config)?;
        std::thread::Builder::new()
            .name("openp2p-async-std".into())
            .spawn(move || async_io::block_on(driver))
            .map_err(StartError::Spawn)?;
        Ok(node)
    }

    /// Validates `config` and returns the node with its [`Driver`], a future the caller spawns
    /// once (`async_std::task::spawn(driver)`, `smol::spawn(driver).detach()`, ...). Nothing
    /// happens until it runs.
    pub fn new(config: Config) -> Result<(Node, Driver), ConfigError> {
        let limits = QueueLimits::new(&config);
        // The driver releases send credit on `Sent`, so the engine always reports it; the
        // driver forwards it only if the application asked for it.
        let forward_sent = config.sent_events;
        let engine = Engine::with_os_entropy(Config {
            sent_events: true,
            ..config.clone()
        })?;
        let commands: Arc<Queue<Command>> = Arc::default();
        let events: Arc<Queue<Event>> = Arc::default();
        let table = Arc::new(PeerTable::default());
        let driver = Driver::new(
            engine,
            Arc::clone(&commands),
            Arc::clone(&events),
            Arc::clone(&table),
            limits,
            forward_sent,
        );
        let handle = Arc::new(Handle {
            commands,
            events,
            table,
            limits,
            config,
        });
        Ok((Node { handle }, driver))
    }

    /// Listens on `addr` (port 0 picks a free port) and returns the bound address. Inbound peers
    /// arrive as [`Event::Connected`] with the node's default framing.
    pub async fn listen(&self, addr: SocketAddr) -> Result<SocketAddr, BindError> {
        self.listen_inner(addr, None).await
    }

    /// Like [`listen`](Self::listen), with the framing of every peer accepted on this listener.
    pub async fn listen_with(
        &self,
        addr: SocketAddr,
        framing: Framing,
    ) -> Result<SocketAddr, BindError> {
        self.listen_inner(addr, Some(framing)).await
    }

    async fn listen_inner(
        &self,
        addr: SocketAddr,
        framing: Option<Framing>,
    ) -> Result<SocketAddr, BindError> {
        ask(&self.handle, |reply| Command::Listen {
            addr,
            framing,
            reply,
        })
        .await
        .unwrap_or(Err(BindError::ShuttingDown))
    }

    /// Starts connecting to `addr` and returns the new peer's id at once. Exactly one
    /// [`Event::Connected`] or [`Event::ConnectFailed`] follows; data sent meanwhile is queued.
    pub async fn connect(&self, addr: SocketAddr) -> Result<PeerId, ConnectError> {
        self.connect_inner(addr, None, None).await
    }

    /// Like [`connect`](Self::connect), with this connection's framing.
    pub async fn connect_with(
        &self,
        addr: SocketAddr,
        framing: Framing,
    ) -> Result<PeerId, ConnectError> {
        self.connect_inner(addr, Some(framing), None).await
    }

    /// Like [`connect`](Self::connect), and the remote must prove `key` in the secure handshake.
    /// Another key ends the connect in [`Event::ConnectFailed`] with
    /// [`ConnectFailure::Handshake`](crate::ConnectFailure::Handshake)`(`[`HandshakeFailure::KeyMismatch`](crate::HandshakeFailure::KeyMismatch)`
    /// { expected, actual })` before this node sends its own key or any data; on a node without
    /// [`Config::secure`] this fails at once with [`ConnectError::NotSecure`].
    pub async fn connect_pinned(
        &self,
        addr: SocketAddr,
        key: PeerKey,
    ) -> Result<PeerId, ConnectError> {
        self.connect_inner(addr, None, Some(key)).await
    }

    async fn connect_inner(
        &self,
        addr: SocketAddr,
        framing: Option<Framing>,
        expect: Option<PeerKey>,
    ) -> Result<PeerId, ConnectError> {
        ask(&self.handle, |reply| Command::Connect {
            addr,
            framing,
            expect,
            reply,
        })
        .await
        .unwrap_or(Err(ConnectError::ShuttingDown))
    }

    /// Queues one message for `peer` (framed by the peer's framing; no copy of `data`). Never
    /// waits: there is no round trip to the driver.
    ///
    /// The node keeps the engine's bounds on this side of the channel: a message that would push
    /// the peer's unwritten bytes past `Config::send_queue_high_water` is refused with
    /// [`SendError::QueueFull`] (nothing queued), and [`Event::Writable`] follows once they drain
    /// to `send_queue_low_water`. Frame-size and delimiter errors are reported here too. A send
    /// that races with the peer's closing (or the node's end) is accepted and then counted in
    /// that peer's `Disconnected::unsent` (`ConnectFailed::unsent`), or, once that event is out,
    /// handed back as [`Event::SendRefused`] with `SendError::UnknownPeer`: nothing accepted
    /// vanishes.
    pub async fn send(&self, peer: PeerId, data: Bytes) -> Result<(), SendError> {
        self.send_now(peer, data)
    }

    /// [`send`](Self::send) for callers outside an async context.
    pub fn send_now(&self, peer: PeerId, data: Bytes) -> Result<(), SendError> {
        let config = &self.handle.config;
        let credit = self
            .handle
            .table
            .with(peer, |p| p.admit(&data, config))
            .unwrap_or(Err(SendError::UnknownPeer))?;
        if self.handle.command(Command::Send { peer, data, credit }) {
            Ok(())
        } else {
            Err(SendError::UnknownPeer)
        }
    }

    /// Queues the same message for every peer in `peers` (one `Bytes`, shared, no copy). Returns
    /// the peers that refused it, with why; the others got it. Never waits.
    pub async fn send_many(&self, peers: &[PeerId], data: Bytes) -> SendManyFailures {
        let config = &self.handle.config;
        let mut failures = SendManyFailures::new();
        let mut admitted = Vec::with_capacity(peers.len());
        for &peer in peers {
            match self.handle.table.with(peer, |p| p.admit(&data, config)) {
                Some(Ok(credit)) => admitted.push((peer, credit)),
                Some(Err(e)) => failures.push((peer, e)),
                None => failures.push((peer, SendError::UnknownPeer)),
            }
        }
        if !admitted.is_empty() {
            let sent: Vec<PeerId> = admitted.iter().map(|(peer, _)| *peer).collect();
            if !self.handle.command(Command::SendMany {
                peers: admitted,
                data,
            }) {
                failures.extend(sent.into_iter().map(|peer| (peer, SendError::UnknownPeer)));
            }
        }
        failures
    }

    /// Closes gracefully: no new sends, everything queued is written, then the connection is
    /// shut down; [`Event::Disconnected`] follows. Never waits.
    pub async fn disconnect(&self, peer: PeerId) -> Result<(), UnknownId> {
        self.closing_command(peer, Command::Disconnect { peer })
    }

    /// Closes at once; queued bytes are dropped and reported as `unsent` in
    /// [`Event::Disconnected`]. Never waits.
    pub async fn abort(&self, peer: PeerId) -> Result<(), UnknownId> {
        self.closing_command(peer, Command::Abort { peer })
    }

    fn closing_command(&self, peer: PeerId, command: Command) -> Result<(), UnknownId> {
        match self.handle.table.with(peer, |p| p.stop_accepting()) {
            Some(()) if self.handle.command(command) => Ok(()),
            _ => Err(UnknownId),
        }
    }

    /// Changes one peer's upload and download limits from now on. Never waits.
    pub async fn set_limits(&self, peer: PeerId, limits: Limits) -> Result<(), UnknownId> {
        match self.handle.table.with(peer, |_| ()) {
            Some(()) if self.handle.command(Command::SetLimits { peer, limits }) => Ok(()),
            _ => Err(UnknownId),
        }
    }

    /// Changes the limits shared by all peers from now on (a no-op on a stopped node). Never
    /// waits.
    pub async fn set_global_limits(&self, limits: Limits) {
        self.handle.command(Command::SetGlobalLimits { limits });
    }

    /// A live peer's traffic statistics (`None` for a stale id or a stopped node).
    pub async fn stats(&self, peer: PeerId) -> Option<PeerStats> {
        ask(&self.handle, |reply| Command::Stats { peer, reply })
            .await
            .flatten()
    }

    /// What is known about a live peer: address, direction, state, framing, limits.
    pub async fn peer_info(&self, peer: PeerId) -> Option<PeerInfo> {
        ask(&self.handle, |reply| Command::Info { peer, reply })
            .await
            .flatten()
    }

    /// Node-wide statistics (`None` once the node has stopped).
    pub async fn global_stats(&self) -> Option<GlobalStats> {
        ask(&self.handle, |reply| Command::GlobalStats { reply }).await
    }

    /// Starts LAN discovery: this node announces itself by UDP broadcast every
    /// `options.config.interval` and reports the nodes it hears as [`Event::Discovered`] (and
    /// [`Event::Lost`] after the expiry) in its event queue; with `config.auto_connect` it also
    /// connects to them (of two nodes, the one with the smaller key dials). The beacons are
    /// handled on a thread of their own (named `openp2p-discovery`), whatever executor runs the
    /// node, until the node stops. Fails if the beacon socket cannot be bound or the node has
    /// stopped.
    ///
    /// ```no_run
    /// use openp2p_async_std::discovery::{DiscoveryOptions, NodeKey};
    /// use openp2p_async_std::{Config, Event, Node};
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let node = Node::start(Config::default())?;
    /// let addr = node.listen("0.0.0.0:0".parse()?).await?;
    /// node.enable_discovery(DiscoveryOptions::new(NodeKey([7; 16]), "alice", addr.port()))?;
    /// while let Some(event) = node.next_event().await {
    ///     if let Event::Discovered { addr, name, .. } = event {
    ///         println!("{name} at {addr}");
    ///     }
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn enable_discovery(
        &self,
        options: crate::discovery::DiscoveryOptions,
    ) -> std::io::Result<()> {
        let stopped =
            || std::io::Error::new(std::io::ErrorKind::NotConnected, "the node has stopped");
        if self.handle.events.is_closed() {
            return Err(stopped());
        }
        crate::discovery::start(
            options,
            Arc::clone(&self.handle.events),
            Arc::clone(&self.handle.commands),
            Arc::clone(&self.handle.table),
        )
    }

    /// Bytes (framing included) accepted by `send` for `peer` and not yet taken by its socket,
    /// read without asking the driver (`None` for a stale id).
    pub fn queued(&self, peer: PeerId) -> Option<u64> {
        self.handle.table.with(peer, |p| p.queued())
    }

    /// Stops listening, abandons connects, disconnects every peer gracefully (flushing what was
    /// queued) and returns when the last one has closed (peers that do not close within
    /// `Config::linger_timeout` are cut). The event stream ends after
    /// [`Event::ShutdownComplete`].
    pub async fn shutdown(&self) {
        let _ = ask(&self.handle, |reply| Command::Shutdown { reply }).await;
    }

    /// The next event; `None` once the node has stopped and every event was taken.
    pub async fn next_event(&self) -> Option<Event> {
        let event = self.handle.events.pop().await?;
        self.handle.taken(&event);
        Some(event)
    }

    /// The next event if one is waiting.
    pub fn try_next_event(&self) -> Option<Event> {
        let event = self.handle.events.try_pop().ok()?;
        self.handle.taken(&event);
        Some(event)
    }

    /// The events as a [`futures_core::Stream`] (the same queue as `next_event`: each event goes
    /// to exactly one consumer).
    pub fn events(&self) -> Events {
        Events {
            handle: Arc::clone(&self.handle),
        }
    }

    /// Takes `peer`'s byte stream: from now on its received data is read from the returned
    /// [`PeerStream`] ([`futures_io::AsyncRead`]) instead of arriving as [`Event::Received`], and
    /// writes to it are sends ([`futures_io::AsyncWrite`], with back-pressure). All other events
    /// of the peer still arrive as events. Works from `connect`'s return on, before the peer is
    /// connected; for an inbound peer, data that arrived before the call has already been
    /// delivered as events.
    pub fn stream(&self, peer: PeerId) -> Result<PeerStream, StreamError> {
        let shared = self
            .handle
            .table
            .with(peer, Arc::clone)
            .ok_or(StreamError::UnknownPeer)?;
        if !shared.try_attach() {
            return Err(StreamError::AlreadyTaken);
        }
        let (data, receiver) = async_channel::unbounded();
        if !self.handle.command(Command::Attach { peer, data }) {
            shared.detach();
            return Err(StreamError::UnknownPeer);
        }
        Ok(PeerStream::new(Arc::clone(&self.handle), shared, receiver))
    }
}

/// The node's events as a [`Stream`]; ends when the node has stopped. Get it with
/// [`Node::events`].
#[derive(Debug)]
pub struct Events {
    handle: Arc<Handle>,
}

impl Stream for Events {
    type Item = Event;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        let polled = self.handle.events.poll_pop(cx);
        if let Poll::Ready(Some(event)) = &polled {
            self.handle.taken(event);
        }
        polled
    }
}
