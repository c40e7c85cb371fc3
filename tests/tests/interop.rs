//! Interop: a Noise peer written directly on the `snow` crate (not the core's secure layer)
//! completes the handshake with each real driver, as initiator (dialing the node's listener)
//! and as responder (the node dials it), and exchanges `LengthPrefixed` messages both ways.
//!
//! The wire, from the core's `secure` module docs: `Noise_XX_25519_AESGCM_SHA256` (or
//! `..._ChaChaPoly_...`), prologue `openp2p/1`, every Noise message behind its 2-byte
//! big-endian length, empty handshake payloads, transport plaintexts of at most 65,519 bytes
//! whose concatenation is the application's byte stream (here 4-byte big-endian length + payload
//! per message, cut into transport messages anywhere).

use openp2p_core::{Bytes, Config, Event, Framing, PeerKey, SecureConfig, Suite};
use openp2p_tests::harness::{
    identity, v4, AsyncStdHarness, Executor, Harness, MioHarness, TestNode, TokioHarness, PATIENCE,
};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// Most plaintext bytes in one transport message (65,535 minus the 16-byte tag), from the wire
/// format rather than the core's constant.
const MAX_TRANSPORT_PLAINTEXT: usize = 65_519;

/// Which side the `snow` peer takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// It dials the node's listener.
    Initiator,
    /// It listens; the node dials it.
    Responder,
}

/// What the node sends first, before echoing.
const GREETING: &[u8] = b"hello from the node";

/// The messages the `snow` peer sends (the node echoes each): empty, tiny, one transport
/// message's worth, and larger than one transport message.
fn messages() -> Vec<Vec<u8>> {
    [0usize, 1, 5, 4096, MAX_TRANSPORT_PLAINTEXT, 100_000, 70_001]
        .iter()
        .enumerate()
        .map(|(i, &n)| (0..n).map(|j| (i * 37 + j * 13) as u8).collect())
        .collect()
}

fn write_noise(stream: &mut TcpStream, message: &[u8]) {
    let len = u16::try_from(message.len()).expect("a Noise message fits its length prefix");
    stream
        .write_all(&len.to_be_bytes())
        .expect("write a length");
    stream.write_all(message).expect("write a Noise message");
}

fn read_noise(stream: &mut TcpStream) -> Vec<u8> {
    let mut header = [0u8; 2];
    stream.read_exact(&mut header).expect("read a length");
    let mut message = vec![0u8; usize::from(u16::from_be_bytes(header))];
    stream
        .read_exact(&mut message)
        .expect("read a Noise message");
    message
}

/// The `snow` side: the handshake in `role` on `stream`, then every message of [`messages`]
/// framed into one plaintext stream cut into transport messages of changing sizes; then it
/// reads the greeting and the echoes back. Returns the node's key as the handshake proved it,
/// and the open connection (closing it is the node's business).
fn snow_peer(
    mut stream: TcpStream,
    role: Role,
    suite: Suite,
    secret: [u8; 32],
) -> (PeerKey, TcpStream) {
    stream
        .set_read_timeout(Some(PATIENCE))
        .expect("set a read timeout");
    let params = suite.noise_name().parse().expect("a Noise protocol name");
    let builder = snow::Builder::new(params)
        .local_private_key(&secret)
        .expect("a 32-byte key")
        .prologue(b"openp2p/1")
        .expect("a prologue");
    let mut hs = match role {
        Role::Initiator => builder.build_initiator(),
        Role::Responder => builder.build_responder(),
    }
    .expect("a handshake state");
    let mut buf = vec![0u8; 65_535];
    let mut payload = vec![0u8; 65_535];
    // XX: -> e; <- e, ee, s, es; -> s, se. The initiator writes first.
    let mut writing = role == Role::Initiator;
    while !hs.is_handshake_finished() {
        if writing {
            let n = hs
                .write_message(&[], &mut buf)
                .expect("write a handshake message");
            write_noise(&mut stream, &buf[..n]);
        } else {
            let message = read_noise(&mut stream);
            let n = hs
                .read_message(&message, &mut payload)
                .expect("the node's handshake message");
            assert_eq!(n, 0, "handshake payloads are empty");
        }
        writing = !writing;
    }
    let remote = hs.get_remote_static().expect("XX proves the remote key");
    let node_key = PeerKey(remote.try_into().expect("a 32-byte key"));
    let mut transport = hs.into_transport_mode().expect("transport mode");

    let mut stream_out = Vec::new();
    for m in messages() {
        stream_out.extend_from_slice(&(m.len() as u32).to_be_bytes());
        stream_out.extend_from_slice(&m);
    }
    let cuts = [1, 7, 1000, MAX_TRANSPORT_PLAINTEXT, 3];
    let mut at = 0;
    for cut in cuts.iter().cycle() {
        if at == stream_out.len() {
            break;
        }
        let end = (at + cut).min(stream_out.len());
        let n = transport
            .write_message(&stream_out[at..end], &mut buf)
            .expect("seal a transport message");
        write_noise(&mut stream, &buf[..n]);
        at = end;
    }

    let mut want: Vec<Vec<u8>> = vec![GREETING.to_vec()];
    want.extend(messages());
    let mut plain: Vec<u8> = Vec::new();
    for (i, expected) in want.iter().enumerate() {
        loop {
            if plain.len() >= 4 {
                let len = u32::from_be_bytes([plain[0], plain[1], plain[2], plain[3]]) as usize;
                if plain.len() >= 4 + len {
                    let got: Vec<u8> = plain.drain(..4 + len).skip(4).collect();
                    assert!(got == *expected, "message {i}: {} bytes differ", got.len());
                    break;
                }
            }
            let message = read_noise(&mut stream);
            assert!(
                message.len() <= MAX_TRANSPORT_PLAINTEXT + 16,
                "an oversized message"
            );
            let n = transport
                .read_message(&message, &mut payload)
                .expect("decrypt the node's transport message");
            plain.extend_from_slice(&payload[..n]);
        }
    }
    assert!(plain.is_empty(), "bytes after the last echo");
    (node_key, stream)
}

/// The node's side: greets the `snow` peer once connected, echoes every message, until the
/// `snow` thread is done; checks the key each side proved.
fn interop<H: Harness>(h: &mut H, role: Role, suite: Suite) {
    let name = h.name();
    let node_id = identity(41);
    let node_key = node_id.public();
    let snow_secret = [0x42u8; 32];
    let snow_key = openp2p_core::Identity::from_secret(snow_secret).public();
    let node = h.start(Config {
        framing: Framing::LengthPrefixed,
        secure: Some(SecureConfig {
            suite,
            ..SecureConfig::new(node_id)
        }),
        ..Config::default()
    });
    let (done_tx, done) = mpsc::channel();
    let peer_thread = match role {
        Role::Initiator => {
            let addr = node.listen(v4());
            thread::spawn(move || {
                let stream = TcpStream::connect(addr).expect("dial the node");
                done_tx
                    .send(snow_peer(stream, role, suite, snow_secret))
                    .ok();
            })
        }
        Role::Responder => {
            let listener = TcpListener::bind(v4()).expect("bind the snow peer");
            let addr: SocketAddr = listener.local_addr().expect("a bound address");
            let handle = thread::spawn(move || {
                let (stream, _) = listener.accept().expect("accept the node");
                done_tx
                    .send(snow_peer(stream, role, suite, snow_secret))
                    .ok();
            });
            node.connect_pinned(addr, snow_key)
                .expect("connect accepted");
            handle
        }
    };
    let deadline = Instant::now() + PATIENCE;
    let mut echoed = 0;
    let (proved, snow_side) = loop {
        assert!(Instant::now() < deadline, "{name}: {echoed} echoed in time");
        match done.try_recv() {
            Ok(key) => break key,
            Err(mpsc::TryRecvError::Empty) => {}
            Err(mpsc::TryRecvError::Disconnected) => panic!("{name}: the snow peer failed"),
        }
        let Some(event) = node.next_event(Duration::from_millis(10)) else {
            continue;
        };
        match event {
            Event::Connected { peer, key, .. } => {
                assert_eq!(key, Some(snow_key), "{name}: the snow peer's key");
                node.send(peer, Bytes::from_static(GREETING))
                    .expect("send accepted");
            }
            Event::Received { peer, data } => {
                node.send(peer, data).expect("echo accepted");
                echoed += 1;
            }
            Event::ConnectFailed { reason, .. } => panic!("{name}: connect failed: {reason:?}"),
            Event::HandshakeFailed { reason, .. } => panic!("{name}: handshake failed: {reason:?}"),
            Event::Disconnected { reason, .. } => panic!("{name}: disconnected: {reason:?}"),
            _ => {}
        }
    };
    assert_eq!(proved, node_key, "{name}: the node's key as snow saw it");
    assert_eq!(echoed, messages().len(), "{name}: messages echoed");
    peer_thread.join().expect("the snow peer's thread");
    // The snow peer closes first, so the node's graceful shutdown has no one to linger for.
    drop(snow_side);
    drop(node.shutdown());
}

/// `interop_cells!(driver, harness)`: a module per driver with the `snow` peer as initiator and
/// as responder, in AES-GCM and ChaChaPoly.
macro_rules! interop_cells {
    ($driver:ident, $harness:expr) => {
        mod $driver {
            use super::*;

            #[test]
            fn snow_dials_the_node() {
                interop(&mut $harness, Role::Initiator, Suite::AesGcm);
            }

            #[test]
            fn node_dials_snow() {
                interop(&mut $harness, Role::Responder, Suite::AesGcm);
            }

            #[test]
            fn snow_dials_the_node_chachapoly() {
                interop(&mut $harness, Role::Initiator, Suite::ChaChaPoly);
            }

            #[test]
            fn node_dials_snow_chachapoly() {
                interop(&mut $harness, Role::Responder, Suite::ChaChaPoly);
            }
        }
    };
}

interop_cells!(mio, MioHarness);
interop_cells!(tokio, TokioHarness::default());
interop_cells!(async_std, AsyncStdHarness::new(Executor::AsyncStd));
interop_cells!(smol, AsyncStdHarness::new(Executor::Smol));
