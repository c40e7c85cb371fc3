//! # openp2p-tokio
//!
//! [`openp2p-core`](openp2p_core) on Tokio: an async, cloneable [`Node`] handle, the node's
//! [`Event`]s through [`Node::next_event`] or a [`futures_core::Stream`], and per-peer
//! [`PeerStream`]s implementing Tokio's `AsyncRead + AsyncWrite`. Every public type of the core is
//! re-exported, so an application needs only this crate.
//!
//! ```no_run
//! use openp2p_tokio::{Config, Node};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let node = Node::start(Config::default())?;
//!     let peer = node.connect("127.0.0.1:9988".parse()?).await?;
//!     node.send(peer, "hello".into()).await?;
//!     node.shutdown().await; // flushes, then closes
//!     Ok(())
//! }
//! ```
//!
//! ## Echo over a peer's stream
//!
//! ```no_run
//! use openp2p_tokio::{Config, Event, Node};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // half_close: a client may shut down its sending side and still get every reply.
//! let node = Node::start(Config { half_close: true, ..Config::default() })?;
//! println!("listening on {}", node.listen("127.0.0.1:0".parse()?).await?);
//! while let Some(event) = node.next_event().await {
//!     if let Event::Connected { peer, .. } = event {
//!         let (mut reader, mut writer) = tokio::io::split(node.stream(peer)?);
//!         tokio::spawn(async move { tokio::io::copy(&mut reader, &mut writer).await });
//!     }
//! }
//! # Ok(())
//! # }
//! ```
//!
//! ## Events and streams
//!
//! All events go to one queue, read by [`Node::next_event`] or [`Node::events`] (each event
//! reaches one consumer). A peer's received data ([`Event::Received`]) goes there too, until the
//! application takes the peer's stream with [`Node::stream`]: from then on its data (and the
//! remote's half-close, [`Event::ReadClosed`]) is read from the stream, and what still waits in
//! the queue is moved to the stream first, so nothing is lost or reordered whatever the timing.
//! The `Sent` events of such a peer are absorbed by its stream too (its `poll_flush` reports the
//! same progress, and an echo service should not wake its event loop per write); the peer's other
//! events (`Connected`, `Writable`, `Disconnected`, ...) stay in the queue. Writes through the
//! stream and [`Node::send`] share the peer's send queue and its rate limits. A stream whose
//! reader falls behind by more than `max(4 segments, 1 MiB)` pauses reading from its socket
//! ([`Engine::pause_reading`]), so TCP slows the remote instead of the node buffering without
//! bound; the event queue itself is unbounded and must be drained.
//!
//! ## How the driver works
//!
//! [`Node::start`] spawns one driver task that owns the [`Engine`], every socket and one timer.
//! Handles talk to it through an unbounded command channel, and the driver applies every queued
//! command in one wake-up. `send` (and its synchronous twin `send_now`), `send_many` and stream
//! writes need no reply: each peer has a small shared record with a mirror of its send queue
//! (bytes accepted and not yet written), to which the handle applies the engine's own admission
//! rule ([`Config::admit`]) and answers at once; the driver lowers the mirror as the socket takes
//! bytes and emits [`Event::Writable`] when a refused sender may go on. The mirror never
//! undercounts the engine's queue, so the engine never refuses for space what the handle
//! admitted. Other commands (`connect`, `stats`, ...) wait for one reply.
//!
//! Readiness is per socket, without scanning peers: each socket direction (read, write, accept)
//! has its own [`Waker`](std::task::Waker) that the driver passes to Tokio's
//! `poll_read_ready` / `poll_write_ready` / `poll_accept`. When the reactor fires it, it pushes
//! that socket's token onto a ready queue (deduplicated by a flag) and wakes the driver, which
//! then services exactly those sockets: one non-blocking `try_read_buf` into the engine's pooled
//! segment's spare capacity (nothing is zeroed) or one `try_write` / `try_write_vectored` of the
//! engine's queue slices per call, repeated until the socket would block (Tokio clears its
//! readiness only then, so a short read does not end the turn), the engine pauses the direction
//! (rate limit, pool) or the socket has had its turn (16 calls; fairness). On a `current_thread`
//! runtime a write turn also ends after 256 KiB, and a socket that had its turn is serviced again
//! on the driver's next poll, after Tokio has run the other ready tasks and polled its IO driver
//! (`yield_now`): a writer then never outruns a reader on the same thread, which keeps the data in
//! flight small and cache-warm. On a multi-threaded runtime readers run in parallel and a socket
//! that had its turn is serviced again in the next round. On `current_thread`, a read shorter than
//! the room offered also ends the turn and clears Tokio's readiness, as Tokio's own `poll_read`
//! does (no `recv` spent on `WouldBlock`); on several threads the driver reads on, since data
//! written meanwhile is cheaper to read at once. When the engine turns a direction on, the driver
//! tries it at once, since
//! readiness may have arrived while it was off. Received data reaches the application as the
//! engine's pooled `Bytes`, without a copy; no lock is held across socket IO. The driver's own
//! work is visible in [`Node::driver_stats`].
//!
//! The driver sleeps on a single `tokio::time::Sleep`, reset only when the engine's
//! [`poll_timeout`](Engine::poll_timeout) changes, and checks the deadline itself before polling
//! it. It runs on `current_thread` and `multi_thread` runtimes alike (the runtime needs the IO and
//! time drivers enabled). After a bounded number of busy rounds it yields, and it honours Tokio's
//! cooperative budget.
//!
//! Outbound connects run in small spawned tasks (`TcpStream::connect`) that report back to the
//! driver; the engine's connect timeout aborts them.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod channel;
mod command;
pub mod discovery;
mod driver;
mod error;
mod node;
mod readiness;
mod shared;
mod socket;
mod stream;

/// The workspace README's Rust blocks (the ten lines of Tokio, the secure example), compiled
/// as this crate's doctests so they keep building.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;

pub use driver::DriverStats;
pub use error::{BindError, StartError, StreamError};
pub use node::{Events, Node};
pub use stream::PeerStream;

pub use openp2p_core::{
    Allow, Bytes, Config, ConfigError, ConnectError, ConnectFailure, Direction, DisconnectReason,
    Engine, Event, FlowStats, Framing, GlobalStats, HandshakeFailure, Identity, Interest, Io,
    Limits, ListenError, ListenerId, PeerId, PeerInfo, PeerKey, PeerKeyParseError, PeerState,
    PeerStats, PoolUsage, Rate, Refusal, SecureConfig, SendError, SendManyFailures, Suite,
    Transfer, TransportFailure, UnknownId, MIN_SECURE_SEGMENT_SIZE, MIN_SEGMENT_SIZE,
};
