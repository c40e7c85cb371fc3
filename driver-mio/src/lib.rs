//! # openp2p-mio
//!
//! openp2p on [mio]: Open.P2P's single-thread model. One IO thread owns the sans-IO
//! [`Engine`], the `mio::Poll`, every listener and every socket; the application holds a
//! cloneable, `Send + Sync` [`Node`] handle and drains an independent [`Events`] queue
//! (blocking, with a timeout, non-blocking, or by iterating).
//!
//! The driver holds no policy: limits, framing, timeouts and accounting are the engine's
//! (`openp2p-core`). The driver turns readiness into the engine's byte events, performs the
//! [`Io`] it asks for, sleeps until its [`poll_timeout`](Engine::poll_timeout), and hands its
//! [`Event`]s to the application. Every public type of `openp2p-core` is re-exported here, so
//! this crate is all an application needs.
//!
//! ```no_run
//! use openp2p_mio::{Config, Event, Framing, Node};
//! use std::time::Duration;
//!
//! let config = Config { framing: Framing::LengthPrefixed, ..Config::default() };
//! let (server, mut server_events) = Node::start(config.clone())?;
//! let addr = server.listen("127.0.0.1:0".parse()?)?;
//!
//! let (client, _client_events) = Node::start(config)?;
//! let peer = client.connect_wait(addr)?;
//! client.send(peer, "hello")?;
//!
//! while let Ok(event) = server_events.recv_timeout(Duration::from_secs(5)) {
//!     if let Event::Received { data, .. } = event {
//!         assert_eq!(&data[..], b"hello");
//!         break;
//!     }
//! }
//! client.shutdown();
//! server.shutdown();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Sending without a round trip
//!
//! [`Node::send`] queues the message for the IO thread and returns; it does not wait for the
//! engine's verdict. A refused message (a full send queue, a stale peer) comes back with its
//! payload through [`Events::send_failure`]. [`Node::send_wait`] waits for the verdict instead.
//! A simple flow control for bulk senders: count the bytes handed to `send` against the
//! [`Event::Sent`] reports and keep the difference under `Config::send_queue_high_water`.
//!
//! ## Unsafe code
//!
//! One function (`socket::read_spare`, two lines) lets `recv(2)` fill the engine's pooled
//! segment without zeroing it first, via [`Engine::read_buf_from`]; everything else is safe
//! code and `unsafe` is denied crate-wide.
//!
//! ## Errors the driver handles
//!
//! `WouldBlock` (edge-triggered readiness is tracked per socket), partial writes (the engine
//! keeps the rest queued), `EINTR` (retried), connection refused or reset (reported as
//! `ConnectFailed` / `Disconnected` with the unsent byte count), and accept errors: a resource
//! error such as `EMFILE` pauses that listener for a short back-off instead of spinning, and is
//! reported as [`Event::AcceptFailed`] (and counted in [`DriverStats::accept_backoffs`]).
#![deny(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod command;
mod conn;
mod driver;
mod error;
mod events;
mod handoff;
mod lan;
mod listeners;
mod node;
mod socket;
mod stats;

pub use error::{
    BindError, DialError, DiscoveryError, RecvTimeoutError, SendWaitError, StartError, Stopped,
    TryRecvError,
};
pub use events::{Events, SendFailure};
pub use node::Node;
pub use stats::DriverStats;

/// LAN discovery: announce this node by UDP broadcast and learn the others (see
/// [`Node::enable_discovery`]). `Event::Discovered` and `Event::Lost` arrive on the event queue.
pub mod discovery {
    pub use openp2p_core::discovery::{
        DiscoveryConfig, DiscoveryOptions, NodeKey, DEFAULT_PORT, MAX_NAME,
    };
}

/// The engine crate, for its less common types (`openp2p_mio::core::ListenError`, ...).
pub use openp2p_core as core;
pub use openp2p_core::{
    Allow, Bytes, Config, ConfigError, ConnectError, ConnectFailure, Direction, DisconnectReason,
    Engine, Event, FlowStats, Framing, GlobalStats, HandshakeFailure, Identity, Interest, Io,
    Limits, ListenerId, PeerId, PeerInfo, PeerKey, PeerKeyParseError, PeerState, PeerStats,
    PoolUsage, Rate, Refusal, SecureConfig, SendError, SendManyFailures, Suite, Transfer,
    TransportFailure, UnknownId, MIN_SECURE_SEGMENT_SIZE, MIN_SEGMENT_SIZE,
};
