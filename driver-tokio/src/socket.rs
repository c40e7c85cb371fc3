//! Socket set-up from the engine's configuration: listen backlog, `TCP_NODELAY`, keepalive.

use openp2p_core::Config;
use socket2::{Domain, Protocol, SockRef, Socket, TcpKeepalive, Type};
use std::io;
use std::net::{Shutdown, SocketAddr};
use tokio::net::{TcpListener, TcpStream};

/// Binds a non-blocking listener with the configured backlog. Must run inside the runtime.
pub(crate) fn bind(addr: SocketAddr, config: &Config) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        // Best effort: a dual-stack default is harmless where this is unsupported.
        let _ = socket.set_only_v6(true);
    }
    #[cfg(unix)]
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    let backlog = i32::try_from(config.listen_backlog).unwrap_or(i32::MAX);
    socket.listen(backlog)?;
    TcpListener::from_std(socket.into())
}

/// Applies `nodelay` and `keepalive` to a connected socket.
///
/// Failures are ignored: they only happen when the connection is already broken, which the next
/// read or write reports properly.
pub(crate) fn configure(stream: &TcpStream, config: &Config) {
    let _ = stream.set_nodelay(config.nodelay);
    if let Some(idle) = config.keepalive {
        let _ = SockRef::from(stream).set_tcp_keepalive(&TcpKeepalive::new().with_time(idle));
    }
}

/// One vectored `send` that never raises `SIGPIPE`: on Linux it passes `MSG_NOSIGNAL`, so a
/// write to a connection the remote reset after its FIN fails with `EPIPE` instead of killing a
/// program that did not ignore the signal (Rust programs ignore it by default; a host program,
/// or one that restored the default, does not). Tokio's own `write_vectored` is `writev`, which
/// takes no flags; its single-buffer `write` already passes `MSG_NOSIGNAL`.
pub(crate) fn send_vectored(
    stream: &TcpStream,
    slices: &[std::io::IoSlice<'_>],
) -> io::Result<usize> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let flags = libc::MSG_NOSIGNAL;
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let flags = 0;
    SockRef::from(stream).send_vectored_with_flags(slices, flags)
}

/// Sends FIN (the engine flushed everything queued and keeps reading until the remote's EOF).
pub(crate) fn shutdown_write(stream: &TcpStream) -> io::Result<()> {
    SockRef::from(stream).shutdown(Shutdown::Write)
}
