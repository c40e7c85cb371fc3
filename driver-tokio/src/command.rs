//! What the application's handles ask the driver task to do.

use crate::error::BindError;
use bytes::Bytes;
use openp2p_core::{
    ConnectError, Framing, GlobalStats, Limits, PeerId, PeerInfo, PeerStats, SendError,
    SendManyFailures, UnknownId,
};
use std::net::SocketAddr;
use tokio::sync::oneshot;

/// A reply the driver sends back; a dropped receiver (the caller gave up) is not an error.
pub(crate) type Reply<T> = oneshot::Sender<T>;

#[derive(Debug)]
pub(crate) enum Command {
    Listen { addr: SocketAddr, framing: Option<Framing>, reply: Reply<Result<SocketAddr, BindError>> },
    Connect { addr: SocketAddr, framing: Option<Framing>, reply: Reply<Result<PeerId, ConnectError>> },
    Send { peer: PeerId, data: Bytes, reply: Reply<Result<(), SendError>> },
    SendMany { peers: Vec<PeerId>, data: Bytes, reply: Reply<SendManyFailures> },
    Disconnect { peer: PeerId, reply: Reply<Result<(), UnknownId>> },
    Abort { peer: PeerId, reply: Reply<Result<(), UnknownId>> },
    SetLimits { peer: PeerId, limits: Limits, reply: Reply<Result<(), UnknownId>> },
    SetGlobalLimits { limits: Limits, reply: Reply<()> },
    Stats { peer: PeerId, reply: Reply<Option<PeerStats>> },
    Info { peer: PeerId, reply: Reply<Option<PeerInfo>> },
    GlobalStats { reply: Reply<GlobalStats> },
    Shutdown { reply: Reply<()> },
    /// Data written to a peer's stream (no reply: the stream's window is the back-pressure).
    StreamWrite { peer: PeerId, data: Bytes },
    /// The stream was shut down or dropped: disconnect gracefully after its queued writes.
    StreamClosed { peer: PeerId },
}
