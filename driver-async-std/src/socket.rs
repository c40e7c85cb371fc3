//! The driver's per-socket records and socket set-up (bind, options).

use crate::error::BindError;
use crate::shared::PeerShared;
use crate::wake::{ReadyQueue, Token};
use async_channel::Sender;
use async_io::Async;
use bytes::Bytes;
use openp2p_core::{Interest, ListenerId, PeerId};
use socket2::{Domain, Protocol, SockRef, Socket, TcpKeepalive, Type};
use std::fmt;
use std::future::Future;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::pin::Pin;
use std::sync::Arc;
use std::task::Waker;
use std::time::Duration;

/// A connect in flight (async-io's own non-blocking connect, polled with the peer's write waker).
pub(crate) type Connecting = Pin<Box<dyn Future<Output = io::Result<Async<TcpStream>>> + Send>>;

/// One peer's socket and what the driver remembers about it.
pub(crate) struct PeerIo {
    pub(crate) id: PeerId,
    /// `None` while connecting.
    pub(crate) socket: Option<Arc<Async<TcpStream>>>,
    pub(crate) connecting: Option<Connecting>,
    /// What the engine last asked for.
    pub(crate) interest: Interest,
    pub(crate) read_waker: Waker,
    pub(crate) write_waker: Waker,
    pub(crate) shared: Arc<PeerShared>,
    /// The attached [`PeerStream`](crate::PeerStream)'s data channel.
    pub(crate) stream: Option<Sender<Bytes>>,
    /// The remote's EOF arrived (`Event::ReadClosed`): a stream attached now reads EOF at once.
    pub(crate) read_closed: bool,
    /// Bytes admitted by a handle but refused by the engine (added to `Disconnected::unsent`).
    pub(crate) dropped: u64,
}

impl PeerIo {
    pub(crate) fn new(
        shared: Arc<PeerShared>,
        socket: Option<Async<TcpStream>>,
        ready: &Arc<ReadyQueue>,
    ) -> PeerIo {
        let id = shared.id;
        let (slot, serial) = (id.slot(), id.serial());
        PeerIo {
            id,
            socket: socket.map(Arc::new),
            connecting: None,
            interest: Interest::default(),
            read_waker: ready.waker(Token::Read { slot, serial }),
            write_waker: ready.waker(Token::Write { slot, serial }),
            shared,
            stream: None,
            read_closed: false,
            dropped: 0,
        }
    }
}

impl fmt::Debug for PeerIo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerIo")
            .field("id", &self.id)
            .field("connecting", &self.connecting.is_some())
            .field("interest", &self.interest)
            .field("stream", &self.stream.is_some())
            .field("dropped", &self.dropped)
            .finish_non_exhaustive()
    }
}

/// One listening socket.
#[derive(Debug)]
pub(crate) struct ListenerIo {
    pub(crate) id: ListenerId,
    /// `None` until bound.
    pub(crate) socket: Option<Arc<Async<TcpListener>>>,
    pub(crate) waker: Waker,
    pub(crate) reply: Option<Sender<Result<SocketAddr, BindError>>>,
}

impl ListenerIo {
    pub(crate) fn new(
        id: ListenerId,
        reply: Sender<Result<SocketAddr, BindError>>,
        ready: &Arc<ReadyQueue>,
    ) -> ListenerIo {
        let waker = ready.waker(Token::Accept {
            slot: id.slot(),
            serial: id.serial(),
        });
        ListenerIo {
            id,
            socket: None,
            waker,
            reply: Some(reply),
        }
    }
}

/// Socket options from the node's `Config`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SocketOptions {
    pub(crate) nodelay: bool,
    pub(crate) keepalive: Option<Duration>,
    pub(crate) backlog: u32,
}

impl SocketOptions {
    /// Applies `TCP_NODELAY` and keepalive to a connection. Best effort: a socket that refuses
    /// them still works, and a broken one fails its first read or write.
    pub(crate) fn apply(&self, stream: &TcpStream) {
        let socket = SockRef::from(stream);
        if self.nodelay {
            let _ = socket.set_tcp_nodelay(true);
        }
        if let Some(idle) = self.keepalive {
            let _ = socket.set_tcp_keepalive(&TcpKeepalive::new().with_time(idle));
        }
    }

    /// Binds a non-blocking listener with the configured backlog; returns it with its real
    /// address.
    pub(crate) fn bind(&self, addr: SocketAddr) -> io::Result<(Async<TcpListener>, SocketAddr)> {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        #[cfg(unix)]
        socket.set_reuse_address(true)?;
        socket.bind(&addr.into())?;
        socket.listen(i32::try_from(self.backlog).unwrap_or(i32::MAX))?;
        let listener = TcpListener::from(socket);
        let local = listener.local_addr()?;
        Ok((Async::new(listener)?, local))
    }
}

/// One vectored `send` that never raises `SIGPIPE`: on Linux it passes `MSG_NOSIGNAL`, so a
/// write to a connection the remote reset after its FIN fails with `EPIPE` instead of killing a
/// program that did not ignore the signal (Rust programs ignore it by default; a host program,
/// or one that restored the default, does not). std's `write_vectored` is `writev`, which takes
/// no flags; its single-buffer `write` already passes `MSG_NOSIGNAL`.
pub(crate) fn send_vectored(
    stream: &std::net::TcpStream,
    slices: &[std::io::IoSlice<'_>],
) -> std::io::Result<usize> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let flags = libc::MSG_NOSIGNAL;
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let flags = 0;
    SockRef::from(stream).send_vectored_with_flags(slices, flags)
}
