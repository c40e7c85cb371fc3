//! The handshake harness: arbitrary bytes as the remote's side of a Noise XX handshake.

use super::super::{Input, START};
use super::{at, dial_addr, keys, listen_addr, read_once, secure_config, take_output};
use crate::{
    Allow, ConnectFailure, Engine, Event, Framing, GlobalStats, PeerId, PeerState, Suite, Transfer,
};
use bytes::Bytes;
use std::time::Instant;

/// Time a chunk's control byte may let pass before it is read (1.5 s: a handful of them cross
/// the 10 s handshake timeout).
const STEP: u64 = 1_500_000_000;
/// Bytes this side's own handshake messages take on the wire: at most two messages with empty
/// payloads (the responder's second message is the longest: 2 + 32 + 48 + 16).
const OWN_WIRE: u64 = 2 * (2 + 32 + 48 + 16);
/// Heap a handshaking peer may hold beyond the pool: its state and a stashed partial message
/// (at most one handshake message, 1,138 bytes) with some allocator slack.
const HANDSHAKE_HEAP: usize = 16 * 1024;
/// Sealed-output buffers a handshaking peer may hold (one outbox, one handshake message).
const SEAL_BUFFERS: usize = 8 * 1024;

/// What the harness knows about the one peer.
struct Model {
    responder: bool,
    /// Bytes queued by `send` before the handshake (framing included).
    early: u64,
    /// Bytes the engine took from the remote's stream.
    read: u64,
    /// Bytes the engine wrote (its own handshake messages).
    written: u64,
    ended: bool,
}

/// Feeds arbitrary bytes to a secure engine as the remote's side of the handshake, as the
/// responder (an accepted connection) or the initiator (a dial whose TCP connection is up,
/// optionally pinned, optionally with bytes queued before the handshake), in chunks whose sizes,
/// read paths and time steps come from the input.
///
/// Without the remote's keys no input can complete the handshake, so it checks after every step:
/// no panic; no `Connected` and no `Received`, ever; the peer either ends, exactly once, with
/// `HandshakeFailed` (responder) or `ConnectFailed { reason: Handshake(_) }` (initiator, with the
/// queued bytes reported unsent), or stays handshaking in bounded memory (at most one segment,
/// no spill, bounded heap and seal buffers); [`Engine::check_invariants`]; and the global
/// statistics agree with the model (peer count, failure counters, bytes read and written,
/// accepted = queued + unsent).
///
/// Input: 2 setup bytes (bit 0: initiator; bit 1: ChaCha20-Poly1305; bits 2-3: pin or allowlist;
/// bits 4-5: pool size; bit 6: the remote closes at the end; bit 7: bytes queued early, their
/// length the second byte), a chunk count `k` (modulo 32) and `k` chunk bytes (bits 0-5 size,
/// bit 6: 1.5 s pass first, bit 7: read with `read_buf_from`), then the remote's bytes.
pub fn secure_handshake(data: &[u8], base: Instant) {
    let mut input = Input(data);
    let setup = input.u8();
    let early_len = usize::from(input.u8());
    let count = usize::from(input.u8() % 32);
    let chunks = input.take(count);
    let stream = input.0;

    let responder = setup & 1 == 0;
    let suite = if setup & 2 == 0 {
        Suite::AesGcm
    } else {
        Suite::ChaChaPoly
    };
    let gate = (setup >> 2) & 3;
    let segments = 2 + usize::from((setup >> 4) & 3) % 3;
    let eof = setup & 0x40 != 0;
    let early = setup & 0x80 != 0 && !responder;

    let keys = keys();
    let mut config = secure_config(&keys.local, suite, Framing::LengthPrefixed, segments);
    if let (Some(secure), 2) = (&mut config.secure, gate) {
        secure.allow = Allow::Only([keys.stranger.public()].into());
    }
    let Ok(mut engine) = Engine::with_entropy(config, [setup; 32]) else {
        panic!("the harness's secure configuration is valid");
    };
    let mut offset = START;
    let peer = if responder {
        let Ok(listener) = engine.listen(listen_addr()) else {
            panic!("listen failed");
        };
        engine.handle_listening(listener, listen_addr(), at(base, offset));
        match engine.handle_accepted(listener, dial_addr(), at(base, offset)) {
            Ok(peer) => peer,
            Err(refusal) => panic!("the first connection was refused: {refusal}"),
        }
    } else {
        let connected = match gate {
            1 => engine.connect_pinned(listen_addr(), keys.remote.public(), at(base, offset)),
            3 => engine.connect_pinned(listen_addr(), keys.stranger.public(), at(base, offset)),
            _ => engine.connect(listen_addr(), at(base, offset)),
        };
        let Ok(peer) = connected else {
            panic!("connect failed: {connected:?}");
        };
        engine.handle_connected(peer, at(base, offset));
        peer
    };
    let mut model = Model {
        responder,
        early: 0,
        read: 0,
        written: 0,
        ended: false,
    };
    if early {
        let payload = Bytes::from(vec![0x65; early_len]);
        if engine.send(peer, payload, at(base, offset)).is_ok() {
            model.early = 4 + early_len as u64;
        }
    }
    let mut wire = Vec::new();
    step(&mut engine, peer, &mut model, at(base, offset), &mut wire);

    let mut rest = stream;
    let mut next = 0;
    while !rest.is_empty() && !model.ended {
        let control = chunks.get(next).copied().unwrap_or(0x3f);
        next += 1;
        if control & 0x40 != 0 {
            offset += STEP;
            engine.handle_timeout(at(base, offset));
            step(&mut engine, peer, &mut model, at(base, offset), &mut wire);
        }
        let size = match usize::from(control & 0x3f) {
            n @ 0..48 => n + 1,
            n => (n - 47) * 128,
        };
        let (mut chunk, tail) = rest.split_at(size.min(rest.len()));
        rest = tail;
        let mut stalls = 0;
        while !chunk.is_empty() && !model.ended {
            let now = at(base, offset);
            let (answer, took) = read_once(&mut engine, peer, now, chunk, control & 0x80 != 0);
            chunk = &chunk[took..];
            model.read += took as u64;
            match answer {
                Transfer::Moved(_) => stalls = 0,
                Transfer::Paused => {
                    stalls += 1;
                    assert!(stalls < 3, "a lone handshaking peer stopped reading");
                    offset += 3_000_000;
                    engine.handle_timeout(at(base, offset));
                }
                Transfer::Closed | Transfer::WouldBlock => {}
            }
            step(&mut engine, peer, &mut model, now, &mut wire);
            if answer == Transfer::Closed {
                assert!(model.ended, "read side closed while the peer lives");
            }
        }
    }
    if eof && !model.ended {
        let now = at(base, offset);
        let answer = engine.read_from(peer, now, |_| Ok(0));
        assert_eq!(answer, Transfer::Closed, "EOF during the handshake");
        step(&mut engine, peer, &mut model, now, &mut wire);
        assert!(model.ended, "EOF during the handshake must end the peer");
    }
    if model.ended {
        let now = at(base, offset);
        let (answer, took) = read_once(&mut engine, peer, now, b"x", false);
        assert_eq!((answer, took), (Transfer::Closed, 0), "an ended peer reads");
        assert_eq!(engine.write_to(peer, now, |_| Ok(0)), Transfer::Closed);
    }
}

/// Drains the engine's output after an input and checks it against the model.
fn step(engine: &mut Engine, peer: PeerId, model: &mut Model, now: Instant, wire: &mut Vec<u8>) {
    if !model.ended {
        model.written += take_output(engine, peer, now, wire) as u64;
    }
    while engine.poll_io().is_some() {}
    while let Some(event) = engine.poll_event() {
        match event {
            Event::Listening { .. } => {}
            Event::HandshakeFailed { addr, reason } => {
                assert!(model.responder, "HandshakeFailed for a dial: {reason}");
                assert!(!model.ended, "the peer ended twice");
                assert_eq!(addr, dial_addr());
                model.ended = true;
            }
            Event::ConnectFailed {
                peer: failed,
                reason,
                unsent,
                ..
            } => {
                assert!(!model.responder, "ConnectFailed for an accepted connection");
                assert!(!model.ended, "the peer ended twice");
                assert_eq!(failed, peer);
                assert!(
                    matches!(reason, ConnectFailure::Handshake(_)),
                    "a dial whose TCP connection is up failed with {reason:?}"
                );
                assert_eq!(unsent, model.early, "queued bytes not reported unsent");
                model.ended = true;
            }
            other => panic!("{other:?} from a handshake with random bytes"),
        }
    }
    super::check_invariants(engine, "engine");
    check_stats(engine, peer, model);
}

fn check_stats(engine: &Engine, peer: PeerId, model: &Model) {
    let g: GlobalStats = engine.global_stats();
    let alive = usize::from(!model.ended);
    assert_eq!(g.peers, alive, "peer count");
    assert_eq!(engine.peer_count(), alive, "peer count");
    assert_eq!(g.inbound_connections + g.outbound_connections, 0);
    let ended = u64::from(model.ended);
    let (failures, failed_connects) = if model.responder {
        (ended, 0)
    } else {
        (0, ended)
    };
    assert_eq!(g.handshake_failures, failures, "handshake failures");
    assert_eq!(g.failed_connects, failed_connects, "failed connects");
    assert_eq!(g.received.bytes, model.read, "bytes read");
    assert_eq!(g.received.payload_bytes, 0, "plaintext from random bytes");
    assert_eq!(g.received.messages, 0);
    assert_eq!(g.sent.bytes, model.written, "bytes written");
    assert!(
        model.written <= OWN_WIRE,
        "{} handshake bytes",
        model.written
    );
    assert_eq!(
        g.sent.payload_bytes, 0,
        "plaintext written before the handshake"
    );
    assert_eq!(g.accepted_bytes, model.early);
    assert_eq!(g.unsent_bytes, ended * model.early);
    assert_eq!(g.queued_bytes, (1 - ended) * model.early);
    assert_eq!(g.spilled_bytes, 0, "a handshaking peer spilled");
    assert!(
        engine.pool_usage().lent <= 1,
        "a handshaking peer holds more than a segment"
    );
    assert!(
        g.seal_buffer_bytes <= SEAL_BUFFERS,
        "{} seal buffer bytes",
        g.seal_buffer_bytes
    );
    assert!(
        engine.peer_heap_bytes() <= HANDSHAKE_HEAP,
        "{} heap bytes for a handshaking peer",
        engine.peer_heap_bytes()
    );
    match engine.peer(peer) {
        Some(info) => {
            assert!(!model.ended, "an ended peer is still known");
            assert_eq!(info.state, PeerState::Connecting, "handshaking");
        }
        None => assert!(model.ended, "the peer vanished without an event"),
    }
}
