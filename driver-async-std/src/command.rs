//! What the handles ask of the driver task.

use crate::error::BindError;
use async_channel::Sender;
use bytes::Bytes;
use openp2p_core::{
    ConnectError, Framing, GlobalStats, Limits, PeerId, PeerInfo, PeerKey, PeerStats,
};
use std::net::SocketAddr;

/// One request from a [`Node`](crate::Node) or [`PeerStream`](crate::PeerStream). Replies travel
/// on one-slot channels; fire-and-forget commands have none, so a send costs no round trip.
#[derive(Debug)]
pub(crate) enum Command {
    Listen {
        addr: SocketAddr,
        framing: Option<Framing>,
        reply: Sender<Result<SocketAddr, BindError>>,
    },
    Connect {
        addr: SocketAddr,
        framing: Option<Framing>,
        /// The key the remote must prove (a pinned dial).
        expect: Option<PeerKey>,
        reply: Sender<Result<PeerId, ConnectError>>,
    },
    /// `credit` framed bytes were admitted by the handle; the driver gives them back when they
    /// are written or dropped.
    Send {
        peer: PeerId,
        data: Bytes,
        credit: u64,
    },
    SendMany {
        peers: Vec<(PeerId, u64)>,
        data: Bytes,
    },
    Disconnect {
        peer: PeerId,
    },
    Abort {
        peer: PeerId,
    },
    SetLimits {
        peer: PeerId,
        limits: Limits,
    },
    SetGlobalLimits {
        limits: Limits,
    },
    /// The peer's stream caught up: read again.
    ResumeReading {
        peer: PeerId,
    },
    /// Deliver the peer's received data to this channel from now on.
    Attach {
        peer: PeerId,
        data: Sender<Bytes>,
    },
    Stats {
        peer: PeerId,
        reply: Sender<Option<PeerStats>>,
    },
    Info {
        peer: PeerId,
        reply: Sender<Option<PeerInfo>>,
    },
    GlobalStats {
        reply: Sender<GlobalStats>,
    },
    Shutdown {
        reply: Sender<()>,
    },
}
