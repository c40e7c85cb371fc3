//! The crate's one `unsafe` block: a socket read straight into the receive segment's spare
//! capacity, so that pooled memory is never zeroed before the kernel overwrites it.
//!
//! The safe alternative ([`Engine::read_from`](openp2p_core::Engine::read_from)) lends an
//! initialised slice, which costs a memset of every reused segment: about a fifth of all CPU
//! time in the 1 GiB loopback benchmark. Tokio does the same as this function inside
//! `TcpStream::try_read_buf`; async-io has no such call.

use bytes::buf::Limit;
use bytes::{BufMut, BytesMut};
use socket2::SockRef;
use std::io;
use std::net::TcpStream;

/// One non-blocking `recv(2)` appended to `buf` (at most its limit). Returns the byte count;
/// `Ok(0)` is EOF, or an empty `buf`.
#[allow(unsafe_code)]
pub(crate) fn recv_into(socket: &TcpStream, buf: &mut Limit<&mut BytesMut>) -> io::Result<usize> {
    if !buf.has_remaining_mut() {
        return Ok(0);
    }
    let spare = buf.chunk_mut();
    // SAFETY: the spare capacity is handed out as `MaybeUninit` and only ever written to, by
    // recv(2), never read.
    let n = SockRef::from(socket).recv(unsafe { spare.as_uninit_slice_mut() })?;
    // SAFETY: recv(2) returned `n`, so it initialised the first `n` bytes of `spare`, and `n`
    // is at most `spare.len()`.
    unsafe { buf.advance_mut(n) };
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::TcpListener;

    #[test]
    fn appends_what_the_socket_holds_up_to_the_limit_and_reports_would_block() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut sender = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (receiver, _) = listener.accept().unwrap();
        receiver.set_nonblocking(true).unwrap();
        let mut segment = BytesMut::with_capacity(64);
        segment.extend_from_slice(b"kept");

        let mut limited = (&mut segment).limit(5);
        let empty = recv_into(&receiver, &mut limited).map_err(|e| e.kind());
        assert_eq!(empty, Err(io::ErrorKind::WouldBlock));

        sender.write_all(b"hello, world").unwrap();
        let mut got = 0;
        while got == 0 {
            let mut limited = (&mut segment).limit(5);
            got = match recv_into(&receiver, &mut limited) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
                Err(e) => panic!("{e}"),
            };
        }
        assert_eq!(got, 5);
        assert_eq!(&segment[..], b"kepthello");
    }
}
