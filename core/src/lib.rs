//! # openp2p-core
//!
//! The sans-IO heart of openp2p: a peer-to-peer TCP engine that **performs no IO, reads no clock,
//! starts no thread and contains no `unsafe`**. It keeps the books for peers (connecting,
//! connected, closing), lends pooled receive segments, cuts byte streams into messages, enforces
//! per-peer and global token-bucket rate limits, counts statistics and fires timeouts, all from
//! the timestamps and byte events a driver feeds it. It then tells the driver what to do next
//! ([`Io`]) and the application what happened ([`Event`]).
//!
//! A driver crate (`openp2p-mio`, `openp2p-tokio`, `openp2p-async-std`) binds it to real
//! sockets; most applications use one of those. See [`Engine`] for the contract a driver follows.
//!
//! ```
//! use openp2p_core::{Config, Engine, Event, Framing, Io, Transfer};
//! use std::time::Instant;
//!
//! // A listener, and a peer accepted on it, with length-prefixed framing.
//! let now = Instant::now();
//! let mut engine = Engine::new(Config { framing: Framing::LengthPrefixed, ..Config::default() })?;
//! let listener = engine.listen("127.0.0.1:0".parse()?)?;
//! engine.handle_listening(listener, "127.0.0.1:4000".parse()?, now);
//! let peer = engine.handle_accepted(listener, "127.0.0.1:5000".parse()?, now)?;
//!
//! // The socket delivered a whole frame: 4-byte big-endian length, then the payload.
//! let frame = [0, 0, 0, 2, b'h', b'i'];
//! let moved = engine.read_from(peer, now, |buf| {
//!     buf[..frame.len()].copy_from_slice(&frame);
//!     Ok(frame.len())
//! });
//! assert_eq!(moved, Transfer::Moved(6));
//! let received: Vec<Event> = std::iter::from_fn(|| engine.poll_event()).collect();
//! assert!(matches!(&received[2], Event::Received { data, .. } if &data[..] == b"hi"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod bucket;
mod clock;
mod config;
pub mod discovery;
mod engine;
mod error;
mod event;
mod fair;
mod frame;
mod id;
mod input;
mod io;
mod output;
mod peer;
mod pool;
mod queue;
mod rng;
pub mod secure;
mod stats;
mod timer;
mod transfer;

#[cfg(test)]
#[path = "../tests/support/test_clock.rs"]
mod test_clock;

#[cfg(feature = "sim")]
pub mod sim;

#[cfg(feature = "fuzzing")]
pub mod fuzzing;

pub use config::{
    Config, ConfigError, Framing, Limits, Rate, MIN_SECURE_SEGMENT_SIZE, MIN_SEGMENT_SIZE,
};
pub use engine::{Engine, SendManyFailures};
pub use error::{BindError, ConnectError, ListenError, SendError, StreamError, UnknownId};
pub use event::{ConnectFailure, Direction, DisconnectReason, Event, Refusal};
pub use id::{ListenerId, PeerId};
pub use io::{Interest, Io, Transfer};
pub use peer::{PeerInfo, PeerState};
pub use pool::PoolUsage;
pub use rng::SimRng;
#[cfg(feature = "os-entropy")]
pub use secure::os_entropy;
pub use secure::{
    Allow, HandshakeFailure, Identity, PeerKey, PeerKeyParseError, SecureConfig, Suite,
    TransportFailure,
};
pub use stats::{FlowStats, GlobalStats, PeerStats};

pub use bytes::Bytes;
