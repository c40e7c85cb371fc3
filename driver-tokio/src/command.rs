//! What the application's handles ask the driver task to do.

use crate::error::BindError;
use bytes::Bytes;
use openp2p_core::{
    ConnectError, Framing, GlobalStats, Limits, PeerId, PeerInfo, PeerKey, PeerStats, UnknownId,
};
use std::net::SocketAddr;
use tokio::sync::oneshot;

/// A reply the driver sends back; a dropped receiver (the caller gave up) is not an error.
pub(crate) type Reply<T> = oneshot::Sender<T>;

#[derive(Debug)]
pub(crate) enum Command {
    Listen {
        addr: SocketAddr,
        framing: Option<Framing>,
        reply: Reply<Result<SocketAddr, BindError>>,
    },
    Connect {
        addr: SocketAddr,
        framing: Option<Framing>,
        /// The key the remote must prove (a pinned dial).
        expect: Option<PeerKey>,
        reply: Reply<Result<PeerId, ConnectError>>,
    },
    /// A message already admitted against the peer's send-queue mirror (`Node::send` and stream
    /// writes): no reply.
    Send {
        peer: PeerId,
        data: Bytes,
        /// Written through the peer's stream (refusals close the stream's writing side) rather
        /// than given to `Node::send` (refusals are reported as `Event::SendRefused`).
        from_stream: bool,
    },
    /// One message admitted for each of these peers.
    SendMany {
        peers: Vec<PeerId>,
        data: Bytes,
    },
    Disconnect {
        peer: PeerId,
        reply: Reply<Result<(), UnknownId>>,
    },
    Abort {
        peer: PeerId,
        reply: Reply<Result<(), UnknownId>>,
    },
    SetLimits {
        peer: PeerId,
        limits: Limits,
        reply: Reply<Result<(), UnknownId>>,
    },
    SetGlobalLimits {
        limits: Limits,
        reply: Reply<()>,
    },
    Stats {
        peer: PeerId,
        reply: Reply<Option<PeerStats>>,
    },
    Info {
        peer: PeerId,
        reply: Reply<Option<PeerInfo>>,
    },
    GlobalStats {
        reply: Reply<GlobalStats>,
    },
    Shutdown {
        reply: Reply<()>,
    },
    DriverStats {
        reply: Reply<crate::DriverStats>,
    },
    /// The stream was shut down or dropped: disconnect gracefully after its queued writes.
    StreamClosed {
        peer: PeerId,
    },
    /// A taken stream starts with more unread data than it buffers: stop reading the socket.
    PauseReading {
        peer: PeerId,
    },
    /// The stream's reader caught up: read from the socket again.
    ResumeReading {
        peer: PeerId,
    },
}
