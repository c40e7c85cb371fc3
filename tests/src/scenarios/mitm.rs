//! A man in the middle between two secure nodes: a `std::net` TCP proxy that tampers with the
//! dialer's transport messages after the handshake. Real drivers only.

use super::secure::keyed;
use super::{disconnected, outbound_connected};
use crate::harness::{expect, v4, Harness, TestNode, PATIENCE};
use openp2p_core::{Bytes, DisconnectReason, Event, PeerId, SendError, TransportFailure};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// What the proxy does to the first transport message from the dialer once armed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tamper {
    /// Flips one bit of its ciphertext and forwards it (and everything after).
    FlipBit,
    /// Forwards its length and half its bytes, then closes towards the listener (FIN).
    Truncate,
    /// Sends a 65,535-byte garbage message (length 0xFFFF) before it.
    Garbage,
}

/// One proxied connection: the dialer connects to `addr`; the proxy connects to the listener.
struct Proxy {
    addr: SocketAddr,
    armed: Arc<AtomicBool>,
    thread: JoinHandle<io::Result<()>>,
}

impl Proxy {
    fn start(upstream: SocketAddr, tamper: Tamper) -> Proxy {
        let listener = TcpListener::bind(v4()).expect("bind the proxy");
        let addr = listener.local_addr().expect("a bound listener's address");
        let armed = Arc::new(AtomicBool::new(false));
        let arm = Arc::clone(&armed);
        let thread = thread::spawn(move || {
            let (client, _) = listener.accept()?;
            let server = TcpStream::connect(upstream)?;
            for s in [&client, &server] {
                s.set_read_timeout(Some(PATIENCE))?;
                s.set_nodelay(true)?;
            }
            let (mut back_from, mut back_to) = (server.try_clone()?, client.try_clone()?);
            let back = thread::spawn(move || {
                let _ = io::copy(&mut back_from, &mut back_to);
                let _ = back_to.shutdown(Shutdown::Write);
            });
            let result = forward(client, server, &arm, tamper);
            let _ = back.join();
            result
        });
        Proxy {
            addr,
            armed,
            thread,
        }
    }

    /// Tampers with the next transport message from the dialer.
    fn arm(&self) {
        self.armed.store(true, Ordering::SeqCst);
    }
}

/// Forwards the dialer's Noise messages one by one: the two handshake messages as they are,
/// then transport messages, tampering with the first one after arming.
fn forward(
    mut from: TcpStream,
    mut to: TcpStream,
    armed: &AtomicBool,
    tamper: Tamper,
) -> io::Result<()> {
    let mut handshake_left = 2;
    let mut done = false;
    loop {
        let mut header = [0u8; 2];
        if from.read_exact(&mut header).is_err() {
            let _ = to.shutdown(Shutdown::Write);
            return Ok(());
        }
        let mut body = vec![0u8; usize::from(u16::from_be_bytes(header))];
        from.read_exact(&mut body)?;
        if handshake_left > 0 {
            handshake_left -= 1;
        } else if !done && armed.load(Ordering::SeqCst) {
            done = true;
            match tamper {
                Tamper::FlipBit => {
                    let middle = body.len() / 2;
                    body[middle] ^= 0x10;
                }
                Tamper::Truncate => {
                    to.write_all(&header)?;
                    to.write_all(&body[..body.len() / 2])?;
                    // FIN towards the listener; the other direction runs on until it closes.
                    to.shutdown(Shutdown::Write)?;
                    return Ok(());
                }
                Tamper::Garbage => {
                    let garbage: Vec<u8> = (0..u16::MAX as usize).map(|i| (i * 31) as u8).collect();
                    let sent = to
                        .write_all(&[0xFF, 0xFF])
                        .and_then(|()| to.write_all(&garbage));
                    if sent.is_err() {
                        return Ok(());
                    }
                }
            }
        }
        let sent = to.write_all(&header).and_then(|()| to.write_all(&body));
        match sent {
            // Once it has tampered, the listener closing on the proxy is the expected end.
            Err(_) if done => return Ok(()),
            other => other?,
        }
    }
}

/// Messages the dialer sends before the proxy is armed (each delivered before the next is
/// sent), of various sizes (one spans several transport messages).
fn before() -> Vec<Bytes> {
    [10, 1, 200_000, 5_000, 0, 77]
        .iter()
        .enumerate()
        .map(|(i, &n)| Bytes::from(vec![i as u8 + 1; n]))
        .collect()
}

fn run<H: Harness>(h: &mut H, tamper: Tamper, want: TransportFailure) {
    let name = h.name();
    assert!(!h.is_virtual(), "{name}: a real-socket scenario");
    let (server_config, _) = keyed(1);
    let (client_config, _) = keyed(2);
    let server = h.start(server_config);
    let addr = server.listen(v4());
    let proxy = Proxy::start(addr, tamper);
    let client = h.start(client_config);
    let c = client.connect(proxy.addr).expect("connect accepted");
    outbound_connected(&client, c);
    let s = super::inbound_connected(&server);
    for msg in before() {
        client.send(c, msg.clone()).expect("send accepted");
        assert_eq!(
            received(&server, s, name),
            msg,
            "{name}: intact before tampering"
        );
    }
    proxy.arm();
    for i in 0..4u8 {
        match client.send(c, Bytes::from(vec![0xA0 + i; 1_000])) {
            Ok(()) => {}
            // The first goes out while the connection is up; the tampering may end it before
            // the later ones.
            Err(SendError::UnknownPeer | SendError::Closing) if i > 0 => break,
            Err(e) => panic!("{name}: send after arming: {e:?}"),
        }
    }
    let reason = expect(&server, "Disconnected", |e| match e {
        Event::Received { peer, data } if *peer == s => {
            panic!("{name}: delivered {} bytes after tampering", data.len())
        }
        Event::Disconnected { peer, reason, .. } if *peer == s => Some(*reason),
        _ => None,
    });
    assert_eq!(reason, DisconnectReason::Secure(want), "{name}");
    // The dialer learns its connection ended.
    let (reason, _) = disconnected(&client, c);
    assert!(
        matches!(reason, DisconnectReason::Remote | DisconnectReason::Io(_)),
        "{name}: the dialer saw {reason:?}"
    );
    // Nothing more arrives at the listener.
    while let Some(e) = server.next_event(Duration::from_millis(100)) {
        assert!(!matches!(e, Event::Received { .. }), "{name}: late {e:?}");
    }
    assert_eq!(server.global_stats().peers, 0, "{name}");
    drop(client.shutdown());
    drop(server.shutdown());
    proxy
        .thread
        .join()
        .expect("the proxy thread")
        .unwrap_or_else(|e| panic!("{name}: proxy: {e}"));
}

/// The next message of `peer`.
fn received<N: TestNode>(node: &N, peer: PeerId, name: &str) -> Bytes {
    expect(node, "Received", |e| match e {
        Event::Received { peer: p, data } if *p == peer => Some(data.clone()),
        Event::Disconnected { reason, .. } => panic!("{name}: disconnected early: {reason:?}"),
        _ => None,
    })
}

/// One bit flipped in a transport message after the handshake: the listener disconnects the
/// dialer with `Secure(Decrypt)`; every message before it arrived intact, nothing after.
pub fn mitm_bit_flip<H: Harness>(h: &mut H) {
    run(h, Tamper::FlipBit, TransportFailure::Decrypt);
}

/// The stream ends in the middle of a transport message: `Secure(Truncated)`, nothing from
/// the partial message delivered.
pub fn mitm_truncated<H: Harness>(h: &mut H) {
    run(h, Tamper::Truncate, TransportFailure::Truncated);
}

/// A 65,535-byte garbage transport message (length prefix 0xFFFF) after the handshake:
/// `Secure(Decrypt)`, nothing delivered from it or after it.
pub fn mitm_garbage_message<H: Harness>(h: &mut H) {
    run(h, Tamper::Garbage, TransportFailure::Decrypt);
}
