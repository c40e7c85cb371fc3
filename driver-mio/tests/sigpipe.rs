//! A write to a connection the remote reset must fail with an error, never raise `SIGPIPE`:
//! a program that did not ignore the signal (a host program, or one that restored the default)
//! would otherwise die, taking every other peer with it. This binary restores the default
//! disposition, so the test fails by the binary being killed.
//!
//! The reachable case: the remote sends FIN (the node's socket is in `CLOSE_WAIT` and the engine
//! drains its queue) and then resets; the kernel then answers the next write with `EPIPE`, and
//! raises `SIGPIPE` unless the write passed `MSG_NOSIGNAL`.

// One `libc::signal` call, to restore SIGPIPE's default disposition.
#![allow(unsafe_code)]

mod common;

use common::expect;
use openp2p_mio::{Config, DisconnectReason, Event, Node};
use std::io;
use std::net::TcpListener;

#[test]
fn a_write_to_a_half_closed_then_reset_connection_fails_without_sigpipe() {
    // SAFETY: `signal` with a valid signal number and `SIG_DFL` only changes the disposition;
    // every test of this binary wants the default one.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let (node, mut events) = Node::start(Config {
        // Far more than the socket buffers hold (loopback receive buffers grow to tcp_rmem's
        // maximum, 32 MiB here): the node is still writing when the reset comes.
        send_queue_high_water: 256 << 20,
        ..Config::default()
    })
    .expect("valid config");
    let peer = node
        .connect(listener.local_addr().expect("bound"))
        .expect("connect starts");
    let (remote, _) = listener.accept().expect("accept");
    expect(
        &mut events,
        "Connected",
        |e| matches!(e, Event::Connected { peer: p, .. } if *p == peer),
    );
    let chunk = bytes::Bytes::from(vec![0x5a; 64 * 1024]);
    for _ in 0..2048 {
        node.send(peer, chunk.clone()).expect("node running");
    }
    // The node is writing (so the queue is in the engine, not still on its way to it).
    expect(
        &mut events,
        "Sent",
        |e| matches!(e, Event::Sent { peer: p, .. } if *p == peer),
    );
    // FIN, then a reset: closing with unread data (and no linger) sends RST at once.
    remote.shutdown(std::net::Shutdown::Write).expect("FIN");
    socket2::SockRef::from(&remote)
        .set_linger(Some(std::time::Duration::ZERO))
        .expect("linger 0");
    drop(remote);

    let gone = expect(
        &mut events,
        "Disconnected",
        |e| matches!(e, Event::Disconnected { peer: p, .. } if *p == peer),
    );
    let Event::Disconnected { reason, unsent, .. } = gone else {
        unreachable!("matched Disconnected");
    };
    assert!(
        matches!(
            reason,
            DisconnectReason::Io(io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset)
        ),
        "{reason:?}"
    );
    assert!(unsent > 0, "the reset came while bytes were queued");
    node.shutdown();
}
