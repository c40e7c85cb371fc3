//! What the handle asks of the IO thread.

use crate::error::{BindError, DialError};
use crate::{
    Bytes, ConnectFailure, DriverStats, Engine, Framing, Limits, PeerId, PeerKey, SendError,
    SendManyFailures,
};
use std::net::SocketAddr;
use std::sync::mpsc::SyncSender;

/// A read-only look at the engine and the driver's counters, run on the IO thread.
pub(crate) type Inspect = Box<dyn FnOnce(&Engine, &DriverStats) + Send>;

/// The outcome of a connect someone waits for: the remote address, or why it failed.
pub(crate) type Outcome = Result<SocketAddr, ConnectFailure>;

/// One command. Fire-and-forget commands carry no reply channel; refusals of sends travel back
/// as [`SendFailure`](crate::SendFailure)s in the event batches.
pub(crate) enum Command {
    Listen {
        addr: SocketAddr,
        framing: Option<Framing>,
        reply: SyncSender<Result<SocketAddr, BindError>>,
    },
    Connect {
        addr: SocketAddr,
        framing: Option<Framing>,
        /// The key the remote must prove (a pinned dial).
        expect: Option<PeerKey>,
        reply: SyncSender<Result<PeerId, DialError>>,
        outcome: Option<SyncSender<Outcome>>,
    },
    Send {
        peer: PeerId,
        data: Bytes,
    },
    SendWait {
        peer: PeerId,
        data: Bytes,
        reply: SyncSender<Result<(), SendError>>,
    },
    SendMany {
        peers: Vec<PeerId>,
        data: Bytes,
    },
    SendManyWait {
        peers: Vec<PeerId>,
        data: Bytes,
        reply: SyncSender<SendManyFailures>,
    },
    Disconnect(PeerId),
    Abort(PeerId),
    SetLimits(PeerId, Limits),
    SetGlobalLimits(Limits),
    Inspect(Inspect),
    EnableDiscovery {
        options: crate::discovery::DiscoveryOptions,
        reply: SyncSender<Result<SocketAddr, crate::DiscoveryError>>,
    },
    DisableDiscovery,
    Shutdown,
}
