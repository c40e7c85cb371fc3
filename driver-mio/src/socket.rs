//! Socket set-up and the one-syscall operations the engine's closures perform.

use bytes::buf::Limit;
use bytes::{BufMut, BytesMut};
use mio::net::{TcpListener, TcpStream};
use socket2::{Domain, Protocol, SockRef, Socket, TcpKeepalive, Type};
use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::time::Duration;

/// Creates a non-blocking listening socket with `SO_REUSEADDR` and the configured backlog.
pub(crate) fn bind(addr: SocketAddr, backlog: u32) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    #[cfg(unix)]
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(i32::try_from(backlog).unwrap_or(i32::MAX))?;
    Ok(TcpListener::from_std(socket.into()))
}

/// Applies the per-connection options. A failure (the socket may already be reset) is not
/// fatal: the next read or write reports the socket's real state.
pub(crate) fn configure(stream: &TcpStream, nodelay: bool, keepalive: Option<Duration>) {
    let _ = stream.set_nodelay(nodelay);
    if let Some(idle) = keepalive {
        let _ = SockRef::from(stream).set_tcp_keepalive(&TcpKeepalive::new().with_time(idle));
    }
}

/// Makes the next close send a reset instead of a FIN (used for `abort`).
pub(crate) fn reset_on_close(stream: &TcpStream) {
    let _ = SockRef::from(stream).set_linger(Some(Duration::ZERO));
}

/// One non-blocking read into the spare capacity the engine lends, without zeroing it first
/// (a std `Read` needs initialised memory: a memset of every reused 128 KiB segment, about a
/// tenth of a bulk receiver's CPU). Returns the count read; `Ok(0)` is EOF. `drained` tells
/// whether the read came back shorter than the room offered (the socket had no more).
///
/// The only `unsafe` in the crate: viewing the spare capacity as `MaybeUninit` bytes for
/// `recv(2)`, and telling the buffer how many of them the kernel wrote.
#[allow(unsafe_code)]
pub(crate) fn read_spare(
    stream: &TcpStream,
    buf: &mut Limit<&mut BytesMut>,
    drained: &mut bool,
) -> io::Result<usize> {
    let chunk = buf.chunk_mut();
    // SAFETY: the slice is handed to `recv`, which only writes to it; nothing reads it as
    // initialised bytes before `advance_mut` below, and only the prefix `recv` wrote.
    let spare = unsafe { chunk.as_uninit_slice_mut() };
    let len = spare.len();
    let n = SockRef::from(stream).recv(spare)?.min(len);
    *drained = n > 0 && n < len;
    // SAFETY: `recv` initialised the first `n` bytes of the chunk (n <= chunk length), and the
    // chunk starts at the buffer's current end.
    unsafe { buf.advance_mut(n) };
    Ok(n)
}

/// One non-blocking vectored write. On Linux it passes `MSG_NOSIGNAL`, so a write to a reset
/// connection is `EPIPE` even in a program that did not ignore `SIGPIPE`.
pub(crate) fn write(stream: &TcpStream, slices: &[IoSlice<'_>]) -> io::Result<usize> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        SockRef::from(stream).send_vectored_with_flags(slices, libc::MSG_NOSIGNAL)
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        use std::io::Write;
        let mut stream = stream;
        stream.write_vectored(slices)
    }
}

/// The state of a non-blocking connect after a readiness event: `Some(Ok)` connected,
/// `Some(Err(kind))` failed, `None` still in progress (a spurious wake-up).
pub(crate) fn connect_outcome(
    stream: &TcpStream,
    hang_up: bool,
) -> Option<Result<(), io::ErrorKind>> {
    match stream.take_error() {
        Ok(Some(e)) | Err(e) => return Some(Err(e.kind())),
        Ok(None) => {}
    }
    match stream.peer_addr() {
        Ok(_) => Some(Ok(())),
        Err(e) if e.kind() == io::ErrorKind::NotConnected && !hang_up => None,
        Err(e) => Some(Err(e.kind())),
    }
}
