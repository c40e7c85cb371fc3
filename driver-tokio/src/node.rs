//! The application's handle: [`Node`].

use crate::command::{Command, Reply};
use crate::driver::Driver;
use crate::error::{BindError, StartError, StreamError};
use crate::shared::Shared;
use crate::stream::PeerStream;
use bytes::Bytes;
use futures_core::Stream;
use openp2p_core::{
    Config, ConnectError, Engine, Event, Framing, GlobalStats, Limits, PeerId, PeerInfo, PeerKey,
    PeerStats, SendError, SendManyFailures, UnknownId,
};
use std::fmt;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
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
        f.debug_struct("Node")
            .field("running", &!self.commands.is_closed())
            .finish()
    }
}

impl Node {
    /// Validates `config`, creates the engine and spawns its driver task on the current Tokio
    /// runtime (either flavour; it needs the IO and time drivers, as `#[tokio::main]` enables).
    pub fn start(config: Config) -> Result<Node, StartError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| StartError::NoRuntime)?;
        let engine = Engine::with_os_entropy(config.clone())?;
        let (commands, receiver) = unbounded_channel();
        let shared = Arc::new(Shared::default());
        shared.lock().commands = Some(commands.downgrade());
        let driver = Driver::new(engine, Arc::new(config), receiver, shared.clone());
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
        self.ask(|reply| Command::Listen {
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
        self.ask(|reply| Command::Connect {
            addr,
            framing,
            expect,
            reply,
        })
        .await
        .unwrap_or(Err(ConnectError::ShuttingDown))
    }

    /// Queues one message for `peer` (framed by the peer's framing) without copying it.
    ///
    /// Answers at once, without waiting for the driver: the node keeps a mirror of every peer's
    /// send queue and applies the engine's own admission rule to it, so `QueueFull` (wait for
    /// [`Event::Writable`]), `FrameTooLarge`, `DelimiterInPayload`, `Closing` (after
    /// `disconnect`, `abort` or `shutdown`) and `UnknownPeer` come back here. A message
    /// accepted here that the engine then refuses (the peer started closing meanwhile) comes
    /// back as [`Event::SendRefused`] with the data, in order with the peer's other events; one
    /// for a peer that is already gone (its [`Event::Disconnected`] or [`Event::ConnectFailed`]
    /// was on its way, or the node finished shutting down) comes back after that event as
    /// `SendRefused` with [`SendError::UnknownPeer`] (before [`Event::ShutdownComplete`]):
    /// nothing accepted here vanishes.
    pub fn send_now(&self, peer: PeerId, data: Bytes) -> Result<(), SendError> {
        let link = self
            .shared
            .lock()
            .links
            .get(&peer)
            .cloned()
            .ok_or(SendError::UnknownPeer)?;
        link.admit(&data)?;
        self.commands
            .send(Command::Send {
                peer,
                data,
                from_stream: false,
            })
            .map_err(|_| SendError::UnknownPeer)
    }

    /// [`send_now`](Self::send_now) as an `async fn` (it completes at once; the shape every
    /// async openp2p driver offers).
    pub async fn send(&self, peer: PeerId, data: Bytes) -> Result<(), SendError> {
        self.send_now(peer, data)
    }

    /// [`send_many_now`](Self::send_many_now) as an `async fn` (it completes at once).
    pub async fn send_many(&self, peers: &[PeerId], data: Bytes) -> SendManyFailures {
        self.send_many_now(peers, data)
    }

    /// Bytes (framing included) accepted for `peer` and not yet taken by its socket, from the
    /// node's mirror of the send queue; `None` once the peer's last event was taken.
    pub fn queued(&self, peer: PeerId) -> Option<u64> {
        let link = self.shared.lock().links.get(&peer).cloned()?;
        let queued = link.lock().queued;
        Some(queued)
    }

    /// Queues the same message for every peer in `peers` (one shared `Bytes`, no copy); returns
    /// the peers that refused it, with why (as [`send_now`](Self::send_now) would have).
    pub fn send_many_now(&self, peers: &[PeerId], data: Bytes) -> SendManyFailures {
        let mut failures = SendManyFailures::new();
        let mut admitted = Vec::with_capacity(peers.len());
        {
            let shared = self.shared.lock();
            for &peer in peers {
                match shared.links.get(&peer).ok_or(SendError::UnknownPeer) {
                    Ok(link) => match link.admit(&data) {
                        Ok(()) => admitted.push(peer),
                        Err(e) => failures.push((peer, e)),
                    },
                    Err(e) => failures.push((peer, e)),
                }
            }
        }
        if !admitted.is_empty() {
            if let Err(refused) = self.commands.send(Command::SendMany {
                peers: admitted,
                data,
            }) {
                if let Command::SendMany { peers, .. } = refused.0 {
                    failures.extend(peers.into_iter().map(|peer| (peer, SendError::UnknownPeer)));
                }
            }
        }
        failures
    }

    /// Marks a peer's sending side closed on the node's side (sends fail with `Closing` at once).
    fn close_writes(&self, peer: PeerId) {
        let link = self.shared.lock().links.get(&peer).cloned();
        if let Some(link) = link {
            link.close_writes();
        }
    }

    /// Closes gracefully: everything queued is written, then the connection is shut down;
    /// [`Event::Disconnected`] follows.
    pub async fn disconnect(&self, peer: PeerId) -> Result<(), UnknownId> {
        self.close_writes(peer);
        self.ask(|reply| Command::Disconnect { peer, reply })
            .await
            .unwrap_or(Err(UnknownId))
    }

    /// Closes at once; queued bytes are dropped and reported as `unsent` in
    /// [`Event::Disconnected`].
    pub async fn abort(&self, peer: PeerId) -> Result<(), UnknownId> {
        self.close_writes(peer);
        self.ask(|reply| Command::Abort { peer, reply })
            .await
            .unwrap_or(Err(UnknownId))
    }

    /// Changes one peer's upload and download limits from now on.
    pub async fn set_limits(&self, peer: PeerId, limits: Limits) -> Result<(), UnknownId> {
        self.ask(|reply| Command::SetLimits {
            peer,
            limits,
            reply,
        })
        .await
        .unwrap_or(Err(UnknownId))
    }

    /// Changes the limits shared by all peers from now on.
    pub async fn set_global_limits(&self, limits: Limits) {
        let _ = self
            .ask(|reply| Command::SetGlobalLimits { limits, reply })
            .await;
    }

    /// A live peer's traffic statistics (`None` for a stale id or a stopped node).
    pub async fn stats(&self, peer: PeerId) -> Option<PeerStats> {
        self.ask(|reply| Command::Stats { peer, reply })
            .await
            .flatten()
    }

    /// What is known about a live peer: address, direction, state, framing, limits.
    pub async fn peer_info(&self, peer: PeerId) -> Option<PeerInfo> {
        self.ask(|reply| Command::Info { peer, reply })
            .await
            .flatten()
    }

    /// Node-wide statistics (`None` once the node has stopped).
    pub async fn global_stats(&self) -> Option<GlobalStats> {
        self.ask(|reply| Command::GlobalStats { reply }).await
    }

    /// Starts LAN discovery: this node announces itself by UDP broadcast every
    /// `options.config.interval` and reports the nodes it hears as [`Event::Discovered`] (and
    /// [`Event::Lost`] after the expiry) in its event queue; with `config.auto_connect` it also
    /// connects to them (of two nodes, the one with the smaller key dials). Runs until the node
    /// stops. Fails if the beacon socket cannot be bound.
    ///
    /// ```no_run
    /// use openp2p_tokio::discovery::{DiscoveryOptions, NodeKey};
    /// use openp2p_tokio::{Config, Event, Node};
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
        crate::discovery::start(options, self.shared.clone(), self.commands.downgrade())
    }

    /// Counters of the driver task's own work (wake-ups, socket turns, commands), `None` once
    /// the node has stopped.
    pub async fn driver_stats(&self) -> Option<crate::DriverStats> {
        self.ask(|reply| Command::DriverStats { reply }).await
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
        NextEvent {
            shared: &self.shared,
            wait: None,
        }
        .await
    }

    /// The next event if one is waiting.
    pub fn try_next_event(&self) -> Option<Event> {
        self.shared.try_event()
    }

    /// The events as a `futures_core::Stream` (the same queue as `next_event`: each event goes
    /// to exactly one consumer).
    pub fn events(&self) -> Events {
        Events {
            shared: self.shared.clone(),
            wait: None,
        }
    }

    /// Takes `peer`'s byte stream. From now on its received data is read from the stream
    /// (including data already waiting in the event queue, which is moved to the stream in
    /// order) instead of arriving as [`Event::Received`], and the socket's progress is reported
    /// by the stream's `poll_flush` instead of [`Event::Sent`]; all other events still arrive as
    /// events. Works from `connect`'s return on, before the peer is connected.
    ///
    /// Fails for a stale id (once the application has taken the peer's `Disconnected` or
    /// `ConnectFailed` event) and for a stream taken before.
    pub fn stream(&self, peer: PeerId) -> Result<PeerStream, StreamError> {
        let mut shared = self.shared.lock();
        let link = shared
            .links
            .get(&peer)
            .cloned()
            .ok_or(StreamError::UnknownPeer)?;
        let mut state = link.lock();
        if state.taken {
            return Err(StreamError::AlreadyTaken);
        }
        state.taken = true;
        // What arrived before: move it from the event queue to the stream, in order.
        let mut kept = std::collections::VecDeque::with_capacity(shared.events.len());
        let mut pause = false;
        for event in shared.events.drain(..) {
            match event {
                Event::Received { peer: from, data } if from == peer => {
                    pause |= link.push_received(&mut state, data);
                }
                Event::ReadClosed { peer: from } if from == peer => {
                    crate::channel::PeerLink::read_closed(&mut state);
                }
                other => kept.push_back(other),
            }
        }
        shared.events = kept;
        // The backlog moved to the stream: its reader now decides when to resume.
        state.event_bytes = 0;
        let resume = std::mem::take(&mut state.events_paused) && !state.read_paused;
        drop(state);
        drop(shared);
        if resume {
            let _ = self.commands.send(Command::ResumeReading { peer });
        }
        if pause {
            // Rare (a backlog of unread data): the stream resumes reading when it catches up.
            let _ = self.commands.send(Command::PauseReading { peer });
        }
        Ok(PeerStream::new(link, self.commands.clone()))
    }
}

/// The node's events as a [`Stream`]; ends when the node has stopped. Get it with
/// [`Node::events`].
#[derive(Debug)]
pub struct Events {
    shared: Arc<Shared>,
    /// This stream's registration while it waits.
    wait: Option<u64>,
}

impl Stream for Events {
    type Item = Event;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        let this = &mut *self;
        this.shared.poll_event(cx, &mut this.wait)
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        self.shared.give_up(&mut self.wait);
    }
}

/// The future of [`Node::next_event`]: it unregisters its waker when dropped unfinished.
struct NextEvent<'a> {
    shared: &'a Shared,
    wait: Option<u64>,
}

impl std::future::Future for NextEvent<'_> {
    type Output = Option<Event>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        let this = &mut *self;
        this.shared.poll_event(cx, &mut this.wait)
    }
}

impl Drop for NextEvent<'_> {
    fn drop(&mut self) {
        self.shared.give_up(&mut self.wait);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::task::{Wake, Waker};

    struct Task;
    impl Wake for Task {
        fn wake(self: Arc<Self>) {}
    }

    /// Waits that are given up (a `timeout` or `select!` around `next_event` in short-lived
    /// tasks, or a dropped `Events` stream) must not leave their task's waker behind: each one
    /// keeps its task's allocation alive until the next event.
    #[tokio::test]
    async fn a_wait_given_up_leaves_no_waker_behind() {
        let node = Node::start(Config::default()).expect("valid config");
        for _ in 0..100 {
            let waker = Waker::from(Arc::new(Task));
            let mut cx = Context::from_waker(&waker);
            let mut wait = std::pin::pin!(node.next_event());
            assert!(wait.as_mut().poll(&mut cx).is_pending());
            let mut events = node.events();
            assert!(Pin::new(&mut events).poll_next(&mut cx).is_pending());
        }
        assert_eq!(node.shared.lock().waiting(), 0);
    }

    /// An accepted connection whose secure handshake fails is never announced (no event names
    /// its id), so the driver must drop its shared link with the socket: strangers who connect
    /// and send garbage must not grow the node's memory.
    #[tokio::test]
    async fn failed_inbound_handshakes_leave_no_link_behind() {
        use std::io::Write;
        let identity = crate::Identity::from_secret([7; 32]);
        let config = Config {
            secure: Some(crate::SecureConfig::new(identity)),
            ..Config::default()
        };
        let node = Node::start(config).expect("valid config");
        let addr = node.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let rounds = 20;
        for _ in 0..rounds {
            let mut stranger = std::net::TcpStream::connect(addr).unwrap();
            stranger.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
        }
        let mut failed = 0;
        while failed < rounds {
            let event = tokio::time::timeout(std::time::Duration::from_secs(10), node.next_event())
                .await
                .expect("an event within 10 s")
                .expect("the node runs");
            if let crate::Event::HandshakeFailed { .. } = event {
                failed += 1;
            }
        }
        // The link goes with `Io::Close`, which the driver performs before it delivers the
        // events of the same round.
        assert_eq!(node.shared.lock().links.len(), 0);
    }
}
