//! # openp2p-async-std
//!
//! [openp2p](openp2p_core) for the async-std and smol ecosystems: an async [`Node`] handle,
//! the engine's [`Event`]s as a [`Stream`](futures_core::Stream), and a per-peer
//! [`PeerStream`] implementing [`futures_io::AsyncRead`] + [`futures_io::AsyncWrite`].
//!
//! **async-std is discontinued upstream** ([RUSTSEC-2025-0052]; its maintainers point to smol).
//! This crate is therefore built directly on [`async-io`](async_io) and `futures-lite`, the
//! crates async-std itself runs on, and not on async-std: the same node runs under async-std's
//! executor today and under [smol](https://docs.rs/smol) after a migration, with no code change
//! and no Tokio dependency.
//!
//! ## Running the driver
//!
//! One driver task owns the [`Engine`] and every socket; handles talk to it over channels and
//! never hold a lock across IO. Pick where it runs:
//!
//! - [`Node::start`] runs it on a thread of its own with [`async_io::block_on`]. The handle then
//!   works from any executor (async-std, smol, or plain `block_on`).
//! - [`Node::new`] returns it as a [`Driver`] future for your executor:
//!   `async_std::task::spawn(driver)` or `smol::spawn(driver).detach()`. This is the fast
//!   path: events and commands then pass between tasks of one executor, while with
//!   [`Node::start`] every hand-off crosses threads (on a 2-core machine, echo round trips
//!   drop to ~0.6x of the task's; see the crate README).
//!
//! Socket readiness and the timer come from async-io's reactor, which serves every executor.
//! Each socket direction has its own waker, so a wake-up costs O(ready sockets), never
//! O(peers), and one timer is armed at the engine's next deadline.
//!
//! LAN discovery ([`discovery`], [`Node::enable_discovery`]) announces the node by UDP broadcast
//! and reports the nodes it hears as events, optionally connecting to them.
//!
//! ```no_run
//! use openp2p_async_std::{Config, Event, Node};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! smol::block_on(async {
//!     let node = Node::start(Config::default())?;
//!     let addr = node.listen("127.0.0.1:0".parse()?).await?;
//!     let peer = node.connect(addr).await?;
//!     node.send(peer, "hello".into()).await?;
//!     while let Some(event) = node.next_event().await {
//!         match event {
//!             Event::Received { peer, data } => {
//!                 println!("{peer}: {:?}", data);
//!                 node.disconnect(peer).await?;
//!             }
//!             Event::Disconnected { .. } => break,
//!             _ => {}
//!         }
//!     }
//!     node.shutdown().await;
//!     Ok(())
//! })
//! # }
//! ```
//!
//! [RUSTSEC-2025-0052]: https://rustsec.org/advisories/RUSTSEC-2025-0052.html
//! [`Engine`]: openp2p_core::Engine
// One audited exception, `recv::recv_into`: a socket read into uninitialised pool memory.
#![deny(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod command;
pub mod discovery;
mod driver;
mod error;
mod node;
mod output;
mod queue;
mod recv;
mod service;
mod shared;
mod socket;
mod stream;
mod wake;

pub use driver::Driver;
pub use error::{BindError, StartError, StreamError};
pub use node::{Events, Node};
pub use stream::PeerStream;

pub use openp2p_core::{
    Allow, Bytes, Config, ConfigError, ConnectError, ConnectFailure, Direction, DisconnectReason,
    Event, FlowStats, Framing, GlobalStats, HandshakeFailure, Identity, Limits, ListenError,
    ListenerId, PeerId, PeerInfo, PeerKey, PeerKeyParseError, PeerState, PeerStats, Rate, Refusal,
    SecureConfig, SendError, SendManyFailures, Suite, TransportFailure, UnknownId,
    MIN_SECURE_SEGMENT_SIZE, MIN_SEGMENT_SIZE,
};
