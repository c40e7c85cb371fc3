//! The application's handle: [`Node`].

use crate::command::{Command, Reply};
use crate::driver::Driver;
use crate::error::{BindError, StartError, StreamError};
use crate::shared::Shared;
use crate::stream::PeerStream;
use bytes::Bytes;
use futures_core::Stream;
use openp2p_core::{
    Config, ConnectError, Engine, Event, Framing, GlobalStats, Limits, PeerId, PeerInfo,
    PeerStats, SendError, SendManyFailures, UnknownId,
};
use std::fmt;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};
use tokio::sync::oneshot;

/// A peer-to-peer node running on Tokio: a cheap, cloneable handle to the driver task that owns
/// the engine and the sockets.
///
/// Commands (`listen`, `connect`, `send`, ...) go to the driver through a channel; the driver
/// applies every queued command in one go when it wakes. Events come back through
/// [`next_event`](Self::next_event) or the [`events`](Self::events) stream; a peer's received
/// data can instead be read from its [`PeerStream`] (see [`stream`](Self::stream)).
///
/// The driver stops after [`shutdown`](Self::shutdown) completes, or when every `Node` clone and
/// every `PeerStream` has been dropped (it then shuts the engine down gracefully first). Commands
/// sent to a stopped node report it as shutting down (`send`: `UnknownPeer`, since every peer is
/// gone).
///
/// ```no_run
/// use openp2p_tokio::{Config, Event, Node};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let node = Node::start(Config::default())?;
/// let peer = node.connect("127.0.0.1:9988".parse()?).await?;
/// node.send(peer, "hello".into()).await?;
/// while let Some(event) = node.next_event().await {
///     println!("{event:?}");
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Node {
    commands: UnboundedSender<Command>,
    shared: Arc<Shared>,
}

impl fmt::Debug for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Node").field("running", &!self.commands.is_closed()).finish()
    }
}

impl Node {
    /// Validates `config`, creates the engine and spawns its driver task on the current Tokio
    /// runtime (either flavour; it needs the IO and time drivers, as `#[tokio::main]` enables).
    pub fn start(config: Config) -> Result<Node, StartError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| StartError::NoRuntime)?;
        let engine = Engine::new(config)?;
        let (commands, receiver) = unbounded_channel();
        let shared = Arc::new(Shared::default());
        let driver = Driver::new(engine, receiver, shared.clone());
        runtime.spawn(driver.run());
        Ok(Node { commands, shared })
    }

    async fn ask<T>(&self, command: impl FnOnce(Reply<T>) -> Command) -> Option<T> {
        let (reply, answer) = oneshot::channel();
        self.commands.send(command(reply)).ok()?;
        answer.await.ok()
    }

    /// Listens on `addr` (port 0 picks a free port) and returns the bound address. Inbound peers
    /// arrive as [`Event::Connected`] with the node's default framing.
    pub async fn listen(&self, addr: SocketAddr) -> Result<SocketAddr, BindError> {
        self.listen_inner(addr, None).await
    }

    /// Like [`listen`](Self::listen), with the framing of every peer accepted on this listener.
    pub async fn listen_with(&self, addr: SocketAddr, framing: Framing) -> Result<SocketAddr, BindError> {
        self.listen_inner(addr, Some(framing)).await
    }

    async fn listen_inner(&self, addr: SocketAddr, framing: Option<Framing>) -> Result<SocketAddr, BindError> {
        self.ask(|reply| Command::Listen { addr, framing, reply })
            .await
            .unwrap_or(Err(BindError::ShuttingDown))
    }

    /// Starts connecting to `addr` and returns the new peer's id at once. Exactly one
    /// [`Event::Connected`] or [`Event::ConnectFailed`] follows; data sent meanwhile is queued.
    pub async fn connect(&self, addr: SocketAddr) -> Result<PeerId, ConnectError> {
        self.connect_inner(addr, None).await
    }

    /// Like [`connect`](Self::connect), with this connection's framing.
    pub async fn connect_with(&self, addr: SocketAddr, framing: Framing) -> Result<PeerId, ConnectError> {
        self.connect_inner(addr, Some(framing)).await
    }

    async fn connect_inner(&self, addr: SocketAddr, framing: Option<Framing>) -> Result<PeerId, ConnectError> {
        self.ask(|reply| Command::Connect { addr, framing, reply })
            .await
            .unwrap_or(Err(ConnectError::ShuttingDown))
    }

    /// Queues one message for `peer` (framed by the peer's framing) without copying it, and
    /// returns the engine's verdict: on `QueueFull` wait for [`Event::Writable`].
    pub async fn send(&self, peer: PeerId, data: Bytes) -> Result<(), SendError> {
        self.ask(|reply| Command::Send { peer, data, reply })
            .await
            .unwrap_or(Err(SendError::UnknownPeer))
    }

    /// Queues the same message for every peer in `peers` (one shared `Bytes`); returns the peers
    /// that refused it, with why.
    pub async fn send_many(&self, peers: &[PeerId], data: Bytes) -> SendManyFailures {
        let list = peers.to_vec();
        match self.ask(|reply| Command::SendMany { peers: list, data, reply }).await {
            Some(failures) => failures,
            None => peers.iter().map(|&peer| (peer, SendError::UnknownPeer)).collect(),
        }
    }

    /// Closes gracefully: everything queued is written, then the connection is shut down;
    /// [`Event::Disconnected`] follows.
    pub async fn disconnect(&self, peer: PeerId) -> Result<(), UnknownId> {
        self.ask(|reply| Command::Disconnect { peer, reply }).await.unwrap_or_else(|| Err(unknown_id(peer)))
    }

    /// Closes at once; queued bytes are dropped and reported as `unsent` in
    /// [`Event::Disconnected`].
    pub async fn abort(&self, peer: PeerId) -> Result<(), UnknownId> {
        self.ask(|reply| Command::Abort { peer, reply }).await.unwrap_or_else(|| Err(unknown_id(peer)))
    }

    /// Changes one peer's upload and download limits from now on.
    pub async fn set_limits(&self, peer: PeerId, limits: Limits) -> Result<(), UnknownId> {
        self.ask(|reply| Command::SetLimits { peer, limits, reply }).await.unwrap_or_else(|| Err(unknown_id(peer)))
    }

    /// Changes the limits shared by all peers from now on.
    pub async fn set_global_limits(&self, limits: Limits) {
        let _ = self.ask(|reply| Command::SetGlobalLimits { limits, reply }).await;
    }

    /// A live peer's traffic statistics (`None` for a stale id or a stopped node).
    pub async fn stats(&self, peer: PeerId) -> Option<PeerStats> {
        self.ask(|reply| Command::Stats { peer, reply }).await.flatten()
    }

    /// What is known about a live peer: address, direction, state, framing, limits.
    pub async fn peer_info(&self, peer: PeerId) -> Option<PeerInfo> {
        self.ask(|reply| Command::Info { peer, reply }).await.flatten()
    }

    /// Node-wide statistics (`None` once the node has stopped).
    pub async fn global_stats(&self) -> Option<GlobalStats> {
        self.ask(|reply| Command::GlobalStats { reply }).await
    }

    /// Stops listening, abandons connects, disconnects every peer gracefully (flushing what was
    /// queued) and returns when the last one has closed (peers that do not close within
    /// `Config::linger_timeout` are cut). The event stream ends after
    /// [`Event::ShutdownComplete`].
    pub async fn shutdown(&self) {
        let _ = self.ask(|reply| Command::Shutdown { reply }).await;
    }

    /// The next event; `None` once the node has stopped and every event was taken.
    ///
    /// Events wait in an unbounded queue until taken: an application must keep draining it (a
    /// task looping on `next_event` or the `events` stream), or memory grows with every event.
    pub async fn next_event(&self) -> Option<Event> {
        std::future::poll_fn(|cx| self.shared.poll_event(cx)).await
    }

    /// The next event if one is waiting.
    pub fn try_next_event(&self) -> Option<Event> {
        self.shared.try_event()
    }

    /// The events as a `futures_core::Stream` (the same queue as `next_event`: each event goes
    /// to exactly one consumer).
    pub fn events(&self) -> Events {
        Events { shared: self.shared.clone() }
    }

    /// Takes `peer`'s byte stream. From now on its received data is read from the stream
    /// (including data already waiting in the event queue, which is moved to the stream in
    /// order) instead of arriving as [`Event::Received`]; all other events still arrive as
    /// events. Works from `connect`'s return on, before the peer is connected.
    ///
    /// Fails for a stale id (once the application has taken the peer's `Disconnected` or
    /// `ConnectFailed` event) and for a stream taken before.
    pub fn stream(&self, peer: PeerId) -> Result<PeerStream, StreamError> {
        let mut shared = self.shared.lock();
        let channel = shared.channels.get(&peer).cloned().ok_or(StreamError::UnknownPeer)?;
        let mut state = channel.lock();
        if state.taken {
            return Err(StreamError::AlreadyTaken);
        }
        state.taken = true;
        // Data that arrived before: move it from the event queue to the stream, in order.
        let mut kept = std::collections::VecDeque::with_capacity(shared.events.len());
        for event in shared.events.drain(..) {
            match event {
                Event::Received { peer: from, data } if from == peer => {
                    crate::stream::PeerChannel::push_received(&mut state, data);
                }
                other => kept.push_back(other),
            }
        }
        shared.events = kept;
        drop(state);
        Ok(PeerStream::new(channel, self.commands.clone()))
    }
}

/// The engine's `UnknownId` for a command that reached no driver (the node has stopped, so every
/// id is stale). `UnknownId` is `#[non_exhaustive]` without a constructor, so it is obtained from
/// a minimal engine once (see /work/notes/core-requests-tokio.md).
fn unknown_id(peer: PeerId) -> UnknownId {
    static UNKNOWN: OnceLock<Option<UnknownId>> = OnceLock::new();
    let probe = || {
        let config = Config {
            segment_size: openp2p_core::MIN_SEGMENT_SIZE,
            pool_segments: 1,
            ..Config::default()
        };
        let mut engine = Engine::new(config).ok()?;
        engine.abort(peer, std::time::Instant::now()).err()
    };
    match UNKNOWN.get_or_init(probe) {
        Some(e) => *e,
        // Unreachable with the fixed configuration above; a fresh engine knows no peer.
        None => panic!("a fresh engine accepted a command for an unknown peer"),
    }
}

/// The node's events as a [`Stream`]; ends when the node has stopped. Get it with
/// [`Node::events`].
#[derive(Debug)]
pub struct Events {
    shared: Arc<Shared>,
}

impl Stream for Events {
    type Item = Event;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        self.shared.poll_event(cx)
    }
}
