//! Secure nodes against real-socket adversaries (`std::net`): a plaintext client, a plaintext
//! listener, a handshake slowloris. Real drivers only.

use super::secure::keyed;
use super::{inbound_connected, outbound_connected};
use crate::harness::{expect, v4, Harness, TestNode, PATIENCE};
use openp2p_core::{Config, ConnectFailure, Event, HandshakeFailure, PeerId};
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// The handshake timeout of these scenarios.
const HANDSHAKE: Duration = Duration::from_secs(1);
/// How late past the handshake timeout a real driver may report it.
const SLACK: Duration = Duration::from_millis(750);

/// Secure config number `n` with the short handshake timeout.
fn short(n: u64) -> Config {
    let (mut config, _) = keyed(n);
    if let Some(secure) = &mut config.secure {
        secure.handshake_timeout = HANDSHAKE;
    }
    config
}

/// Whether `stream` sees the connection end (EOF or a reset) within the patience.
fn ends(stream: &mut TcpStream) -> bool {
    stream
        .set_read_timeout(Some(PATIENCE))
        .expect("set a read timeout");
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return false
            }
            Err(_) => return true,
        }
    }
}

/// A plaintext client (an HTTP request on a `std::net::TcpStream`) against a secure listener:
/// `HandshakeFailed` on the listener within the handshake timeout (1 s), never `Connected`,
/// `handshake_failures == 1`, the slot free again (`peers == 0`); the client sees its
/// connection closed.
pub fn plaintext_client_refused<H: Harness>(h: &mut H) {
    let name = h.name();
    assert!(!h.is_virtual(), "{name}: a real-socket scenario");
    let server = h.start(short(1));
    let addr = server.listen(v4());
    let started = Instant::now();
    let mut client = TcpStream::connect(addr).expect("connect to the listener");
    let local = client.local_addr().expect("a connected socket's address");
    client
        .write_all(b"GET / HTTP/1.1\r\nHost: openp2p\r\n\r\n")
        .expect("write the request");
    let (from, reason) = expect(&server, "HandshakeFailed", |e| match e {
        Event::HandshakeFailed { addr, reason } => Some((*addr, *reason)),
        Event::Connected { peer, .. } => panic!("{name}: a plaintext client connected as {peer}"),
        _ => None,
    });
    let took = started.elapsed();
    assert_eq!(from, local, "{name}: the client's address");
    assert!(
        matches!(
            reason,
            HandshakeFailure::Malformed | HandshakeFailure::TimedOut
        ),
        "{name}: {reason:?}"
    );
    assert!(took < HANDSHAKE + SLACK, "{name}: failed after {took:?}");
    let s = server.global_stats();
    assert_eq!((s.peers, s.handshake_failures), (0, 1), "{name}");
    assert!(
        ends(&mut client),
        "{name}: the client's connection stays open"
    );
    drop(server.shutdown());
}

/// A secure dialer against a plaintext listener (a `std::net::TcpListener` that greets with a
/// text banner and echoes what it reads): `ConnectFailed { Handshake(_) }` within the handshake
/// timeout, never `Connected`, the slot free again.
pub fn plaintext_listener_refused<H: Harness>(h: &mut H) {
    let name = h.name();
    assert!(!h.is_virtual(), "{name}: a real-socket scenario");
    let listener = TcpListener::bind(v4()).expect("bind a plaintext listener");
    let addr = listener.local_addr().expect("a bound listener's address");
    let service = thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("accept the node");
        stream
            .set_read_timeout(Some(PATIENCE))
            .expect("set a read timeout");
        stream
            .write_all(b"220 plaintext service ready\r\n")
            .expect("write the banner");
        let mut buf = [0u8; 4096];
        // Echo until the node closes (or the patience runs out).
        while let Ok(n @ 1..) = stream.read(&mut buf) {
            if stream.write_all(&buf[..n]).is_err() {
                break;
            }
        }
    });
    let node = h.start(short(2));
    let started = Instant::now();
    let peer = node.connect(addr).expect("connect accepted");
    let reason = expect(&node, "ConnectFailed", |e| match e {
        Event::ConnectFailed {
            peer: p, reason, ..
        } if *p == peer => Some(*reason),
        Event::Connected { .. } => panic!("{name}: connected to a plaintext listener"),
        _ => None,
    });
    let took = started.elapsed();
    assert!(
        matches!(reason, ConnectFailure::Handshake(_)),
        "{name}: {reason:?}"
    );
    assert!(took < HANDSHAKE + SLACK, "{name}: failed after {took:?}");
    let s = node.global_stats();
    assert_eq!((s.peers, s.failed_connects), (0, 1), "{name}");
    drop(node.shutdown());
    service.join().expect("the plaintext listener's thread");
}

/// A handshake slowloris (a `std::net::TcpStream` writing the start of a valid first
/// handshake message one byte per 200 ms) is closed at the handshake timeout (1 s), with
/// `HandshakeFailed { TimedOut }`; meanwhile and afterwards another secure peer of the same
/// node goes on exchanging messages.
pub fn handshake_slowloris<H: Harness>(h: &mut H) {
    let name = h.name();
    assert!(!h.is_virtual(), "{name}: a real-socket scenario");
    let server = h.start(short(1));
    let addr = server.listen(v4());
    let good = h.start(short(2));
    let g = good.connect(addr).expect("connect accepted");
    outbound_connected(&good, g);
    let g_at_server = inbound_connected(&server);

    let (opened, when) = mpsc::channel();
    let loris = thread::spawn(move || {
        let mut stream = TcpStream::connect(addr).expect("connect to the listener");
        opened.send(Instant::now()).expect("the scenario waits");
        // The 2-byte length of a 32-byte first message, then its bytes, one at a time.
        let message: Vec<u8> = [0u8, 32].into_iter().chain([7u8; 32]).collect();
        for byte in message {
            if stream.write_all(&[byte]).is_err() {
                return true;
            }
            thread::sleep(Duration::from_millis(200));
        }
        ends(&mut stream)
    });
    let started = when.recv_timeout(PATIENCE).expect("the slowloris connects");

    let mut round_trips = 0;
    let mut during = None;
    let mut timed_out = None;
    let deadline = Instant::now() + PATIENCE;
    // Ping-pong with the good peer until the slowloris is cut and 20 more round trips passed.
    while timed_out.is_none() || round_trips < during.unwrap_or(0) + 20 {
        assert!(
            Instant::now() < deadline,
            "{name}: {round_trips} round trips"
        );
        round_trip(
            name,
            &server,
            &good,
            g,
            g_at_server,
            round_trips,
            |e| match e {
                Event::HandshakeFailed { reason, .. } => {
                    assert_eq!(reason, HandshakeFailure::TimedOut, "{name}");
                    assert!(timed_out.is_none(), "{name}: a second HandshakeFailed");
                    timed_out = Some(started.elapsed());
                    during = Some(round_trips);
                }
                Event::Connected { peer, .. } => {
                    panic!("{name}: the slowloris connected as {peer}")
                }
                Event::Disconnected { peer, reason, .. } => {
                    panic!("{name}: {peer} disconnected: {reason:?}")
                }
                _ => {}
            },
        );
        round_trips += 1;
    }
    let took = timed_out.unwrap_or_default();
    assert!(
        took + Duration::from_millis(50) >= HANDSHAKE && took < HANDSHAKE + SLACK,
        "{name}: the slowloris was cut after {took:?}"
    );
    assert!(
        during.unwrap_or(0) >= 5,
        "{name}: only {during:?} round trips while the slowloris held its slot"
    );
    let s = server.global_stats();
    assert_eq!((s.peers, s.handshake_failures), (1, 1), "{name}");
    assert!(
        loris.join().expect("the slowloris thread"),
        "{name}: the slowloris' connection was not closed"
    );
    drop(good.shutdown());
    drop(server.shutdown());
}

/// One message from `good` to the server and back; the server's other events go to `other`.
fn round_trip<N: TestNode>(
    name: &str,
    server: &N,
    good: &N,
    g: PeerId,
    g_at_server: PeerId,
    i: usize,
    mut other: impl FnMut(Event),
) {
    let msg = bytes::Bytes::from(format!("ping {i}"));
    good.send(g, msg.clone()).expect("send accepted");
    let got = crate::harness::wait_for(server, "the ping", &mut other, |e| match e {
        Event::Received { peer, data } if *peer == g_at_server => Some(data.clone()),
        _ => None,
    });
    assert_eq!(got, msg, "{name}");
    server.send(g_at_server, got).expect("send accepted");
    let back = expect(good, "the pong", |e| match e {
        Event::Received { peer, data } if *peer == g => Some(data.clone()),
        Event::Disconnected { reason, .. } => panic!("{name}: the good peer was cut: {reason:?}"),
        _ => None,
    });
    assert_eq!(back, msg, "{name}");
}
