//! The stream harness: an honest sender's encrypted stream, tampered with, into a receiver.

use super::super::{Input, START};
use super::{at, dial_addr, keys, listen_addr, read_once, secure_config, take_output};
use crate::{
    Bytes, DisconnectReason, Engine, Event, Framing, PeerId, Suite, Transfer, TransportFailure,
};
use std::time::Instant;

/// Most application bytes one input sends (keeps every input cheap to seal and open).
const MAX_TOTAL: usize = 600 * 1024;
/// Most messages one input sends, and most wire mutations.
const MAX_MESSAGES: u8 = 12;
const MAX_MUTATIONS: u8 = 6;
/// Noise's length prefix and AEAD tag.
const HEADER: usize = 2;
const TAG: usize = 16;

/// Two secure engines, `a` dialed `b`, after a completed handshake.
struct Pair {
    a: Engine,
    b: Engine,
    pa: PeerId,
    pb: PeerId,
}

/// The handshake, in memory: the X25519 work (about eight scalar multiplications) is this
/// harness's fixed cost per input.
fn handshake(suite: Suite, framing: Framing, segments: usize, now: Instant) -> Pair {
    let keys = keys();
    let config_a = secure_config(&keys.remote, suite, framing, segments);
    let config_b = secure_config(&keys.local, suite, framing, segments);
    let (Ok(mut a), Ok(mut b)) = (
        Engine::with_entropy(config_a, [0xa0; 32]),
        Engine::with_entropy(config_b, [0xb0; 32]),
    ) else {
        panic!("the harness's secure configurations are valid");
    };
    let Ok(listener) = b.listen(listen_addr()) else {
        panic!("listen failed");
    };
    b.handle_listening(listener, listen_addr(), now);
    let (Ok(pa), Ok(pb)) = (
        a.connect_pinned(listen_addr(), keys.local.public(), now),
        b.handle_accepted(listener, dial_addr(), now),
    ) else {
        panic!("connect or accept failed");
    };
    a.handle_connected(pa, now);
    let mut wire = Vec::new();
    for _ in 0..3 {
        relay(&mut a, pa, &mut b, pb, now, &mut wire);
        relay(&mut b, pb, &mut a, pa, now, &mut wire);
    }
    for (engine, key) in [
        (&mut a, keys.local.public()),
        (&mut b, keys.remote.public()),
    ] {
        while engine.poll_io().is_some() {}
        let connected = std::iter::from_fn(|| engine.poll_event())
            .any(|e| matches!(e, Event::Connected { key: Some(k), .. } if k == key));
        assert!(connected, "the honest handshake did not connect");
    }
    Pair { a, b, pa, pb }
}

/// Moves everything `from` writes now to `to` in one read.
fn relay(
    from: &mut Engine,
    pf: PeerId,
    to: &mut Engine,
    pt: PeerId,
    now: Instant,
    wire: &mut Vec<u8>,
) {
    wire.clear();
    take_output(from, pf, now, wire);
    if !wire.is_empty() {
        let answer = read_once(to, pt, now, wire, false);
        assert_eq!(
            answer,
            (Transfer::Moved(wire.len()), wire.len()),
            "handshake relay"
        );
    }
}

/// One transport message of the honest wire: where it ends and how much plaintext it carries.
struct Record {
    start: usize,
    end: usize,
    plain: usize,
}

fn records(wire: &[u8]) -> Vec<Record> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + HEADER <= wire.len() {
        let len = usize::from(u16::from_be_bytes([wire[at], wire[at + 1]]));
        assert!(
            len >= TAG,
            "the honest sender sealed a message shorter than its tag"
        );
        out.push(Record {
            start: at,
            end: at + HEADER + len,
            plain: len - TAG,
        });
        at += HEADER + len;
    }
    assert_eq!(at, wire.len(), "the honest wire ends inside a message");
    out
}

/// Applies the input's mutations to the wire: bit flips, truncation, inserted garbage, a deleted
/// range. Offsets are taken modulo the current length.
fn mutate(input: &mut Input<'_>, wire: &mut Vec<u8>) {
    let count = input.u8() % (MAX_MUTATIONS + 1);
    for _ in 0..count {
        let kind = input.u8();
        let offset = input.u32() as usize;
        let arg = input.u8();
        match kind % 4 {
            0 if !wire.is_empty() => {
                let i = offset % wire.len();
                wire[i] ^= 1 << (arg & 7);
            }
            1 => wire.truncate(offset % (wire.len() + 1)),
            2 => {
                let i = offset % (wire.len() + 1);
                let garbage = input.take(usize::from(arg % 32) + 1);
                wire.splice(i..i, garbage.iter().copied());
            }
            3 if !wire.is_empty() => {
                let i = offset % wire.len();
                let end = (i + usize::from(arg) + 1).min(wire.len());
                wire.drain(i..end);
            }
            _ => {}
        }
    }
}

/// What the receiver delivered and how it ended.
#[derive(Default)]
struct Received {
    /// The plaintext byte stream the application saw (framed messages re-framed, so both modes
    /// compare against the sender's stream).
    stream: Vec<u8>,
    gone: Option<DisconnectReason>,
}

impl Received {
    fn drain(&mut self, engine: &mut Engine, framing: Framing) {
        while engine.poll_io().is_some() {}
        while let Some(event) = engine.poll_event() {
            match event {
                Event::Received { data, .. } => {
                    assert!(self.gone.is_none(), "Received after Disconnected");
                    if framing == Framing::LengthPrefixed {
                        self.stream
                            .extend_from_slice(&(data.len() as u32).to_be_bytes());
                    }
                    self.stream.extend_from_slice(&data);
                }
                Event::Disconnected { reason, unsent, .. } => {
                    assert!(self.gone.is_none(), "two Disconnected");
                    assert_eq!(unsent, 0, "the receiver sent nothing");
                    self.gone = Some(reason);
                }
                other => panic!("unexpected event at the receiver: {other:?}"),
            }
        }
        super::check_invariants(engine, "receiver");
    }
}

/// An honest sender `a` sends messages chosen by the input to `b` over a real handshake; the
/// input then mutates the encrypted wire (bit flips, truncation, inserted garbage, deleted
/// ranges) and chunks `b`'s reads.
///
/// Checks: no panic; what `b` delivers is always an exact prefix of the plaintext `a` sent, in
/// order; nothing from the first transport message the mutations touched, or later, is
/// delivered; every message wholly before the first altered byte is delivered;
/// an unmutated wire delivers everything (and EOF then closes with `Remote`); a wire altered
/// inside a transport message disconnects `b` with `Secure(Decrypt)` when the message's length
/// survived and its bytes all arrived, and with some `Secure(_)` when an EOF follows the altered
/// bytes; a wire cut short ends with `Remote` at a message boundary and `Secure(Truncated)`
/// inside one; both engines' invariants and byte accounting hold.
///
/// Input: a setup byte (bit 0: `Raw` framing instead of `LengthPrefixed`; bit 1:
/// ChaCha20-Poly1305; bits 2-3: pool size; bit 4: the sender closes at the end), a message count
/// (modulo 13) and per message 3 bytes (size: bit 15 set, `(s & 0x7fff) * 7`, else `s & 0x3ff`;
/// a content seed), a mutation count (modulo 7) and per mutation 6 bytes (kind, 4-byte offset,
/// argument; an insertion takes its garbage from the input next), then chunk bytes for the
/// reads (bits 0-6 size, bit 7: `read_buf_from`).
pub fn secure_stream(data: &[u8], base: Instant) {
    let mut input = Input(data);
    let setup = input.u8();
    let framing = if setup & 1 == 0 {
        Framing::LengthPrefixed
    } else {
        Framing::Raw
    };
    let suite = if setup & 2 == 0 {
        Suite::AesGcm
    } else {
        Suite::ChaChaPoly
    };
    let segments = 2 + usize::from((setup >> 2) & 3) % 3;
    let eof = setup & 0x10 != 0;

    let now = at(base, START);
    let mut pair = handshake(suite, framing, segments, now);

    // The honest sender's messages and wire.
    let mut sent = Vec::new();
    let count = input.u8() % (MAX_MESSAGES + 1);
    for _ in 0..count {
        let s = input.u16();
        let seed = input.u8();
        let size = if s & 0x8000 != 0 {
            usize::from(s & 0x7fff) * 7
        } else {
            usize::from(s & 0x3ff)
        };
        if sent.len() + size > MAX_TOTAL {
            break;
        }
        let payload: Vec<u8> = (0..size)
            .map(|i| seed.wrapping_add((i as u8).wrapping_mul(31)) ^ (i >> 8) as u8)
            .collect();
        if pair
            .a
            .send(pair.pa, Bytes::from(payload.clone()), now)
            .is_ok()
        {
            if framing == Framing::LengthPrefixed {
                sent.extend_from_slice(&(size as u32).to_be_bytes());
            }
            sent.extend_from_slice(&payload);
        }
    }
    let mut honest = Vec::new();
    take_output(&mut pair.a, pair.pa, now, &mut honest);
    while pair.a.poll_io().is_some() {}
    while let Some(event) = pair.a.poll_event() {
        assert!(
            matches!(event, Event::Sent { .. }),
            "unexpected event at the sender: {event:?}"
        );
    }
    let a = pair.a.global_stats();
    assert_eq!(a.accepted_bytes, sent.len() as u64, "sender accepted");
    assert_eq!(
        a.sent.payload_bytes,
        sent.len() as u64,
        "sender wrote everything"
    );
    let records = records(&honest);
    let plain: usize = records.iter().map(|r| r.plain).sum();
    assert_eq!(
        plain,
        sent.len(),
        "the wire carries exactly the plaintext sent"
    );

    let mut wire = honest.clone();
    mutate(&mut input, &mut wire);
    let chunks = input.0;
    // The first byte where the receiver's stream differs from the honest one.
    let differs = honest
        .iter()
        .zip(&wire)
        .position(|(x, y)| x != y)
        .unwrap_or(honest.len().min(wire.len()));
    let mutated = wire != honest;

    // Feed the receiver, remembering where each read ended.
    let mut received = Received::default();
    let b_before = pair.b.global_stats().received.bytes;
    let mut fed = 0;
    let mut boundaries = Vec::new();
    let mut next = 0;
    let mut offset = START;
    let mut stalls = 0;
    while fed < wire.len() && received.gone.is_none() {
        let control = chunks.get(next).copied().unwrap_or(0x7f);
        next += 1;
        let size = (usize::from(control & 0x7f) + 1) * 997;
        let end = (fed + size).min(wire.len());
        let (answer, took) = read_once(
            &mut pair.b,
            pair.pb,
            at(base, offset),
            &wire[fed..end],
            control & 0x80 != 0,
        );
        if took > 0 {
            fed += took;
            boundaries.push(fed);
        }
        match answer {
            Transfer::Moved(_) => stalls = 0,
            Transfer::Paused => {
                stalls += 1;
                assert!(stalls < 3, "the receiver stopped reading with nothing held");
                offset += 3_000_000;
                pair.b.handle_timeout(at(base, offset));
            }
            Transfer::Closed | Transfer::WouldBlock => {}
        }
        received.drain(&mut pair.b, framing);
        if answer == Transfer::Closed {
            assert!(received.gone.is_some(), "read side closed while connected");
        }
    }
    if eof && received.gone.is_none() {
        let answer = pair.b.read_from(pair.pb, at(base, offset), |_| Ok(0));
        assert_eq!(answer, Transfer::Closed, "EOF");
        received.drain(&mut pair.b, framing);
        // A clean close lingers until the receiver's (empty) queue is flushed.
        take_output(&mut pair.b, pair.pb, at(base, offset), &mut Vec::new());
        received.drain(&mut pair.b, framing);
    }

    // Plaintext of the messages wholly before the first altered byte: authentic, so delivered.
    let authentic: usize = records
        .iter()
        .take_while(|r| r.end <= differs)
        .map(|r| r.plain)
        .sum();
    let got = received.stream.len();
    assert!(
        sent.starts_with(&received.stream),
        "delivered bytes differ from what was sent"
    );
    assert!(
        got <= authentic,
        "delivered {got} bytes, only {authentic} authentic"
    );
    assert!(
        got >= complete(&sent, authentic, framing),
        "delivered {got} bytes, {authentic} arrived intact before the damage"
    );
    let b = pair.b.global_stats();
    assert_eq!(
        b.received.bytes - b_before,
        fed as u64,
        "receiver's wire count"
    );
    assert!(
        b.received.payload_bytes as usize <= authentic,
        "plaintext count"
    );

    let damaged = records.iter().find(|r| r.end > differs);
    match (mutated, received.gone) {
        (false, gone) => {
            assert_eq!(got, sent.len(), "an untouched wire delivers everything");
            let expected = eof.then_some(DisconnectReason::Remote);
            assert_eq!(gone, expected, "an untouched wire's end");
        }
        (true, Some(DisconnectReason::Secure(_))) => {}
        (true, gone) if differs == wire.len() => {
            // The wire was cut short (possibly after a suffix was removed): nothing was altered.
            assert_eq!(got, complete(&sent, authentic, framing));
            let at_boundary = damaged.is_none_or(|r| r.start == differs);
            let expected = match (eof, at_boundary) {
                (false, _) => None,
                (true, true) => Some(DisconnectReason::Remote),
                (true, false) => Some(DisconnectReason::Secure(TransportFailure::Truncated)),
            };
            assert_eq!(gone, expected, "a wire cut at {differs}");
        }
        (true, gone) => {
            assert!(
                !eof,
                "altered bytes then EOF must end with Secure(_), not {gone:?}"
            );
            assert_eq!(gone, None, "altered bytes ended the peer with {gone:?}");
            // Only an altered length can leave the receiver waiting for more.
            if let Some(r) = damaged {
                let length_survived = differs >= r.start + HEADER;
                assert!(
                    !(length_survived && wire.len() >= r.end),
                    "an altered message of intact length was not rejected"
                );
            }
        }
    }
    if let Some(DisconnectReason::Secure(failure)) = received.gone {
        assert!(mutated, "an untouched wire failed with {failure:?}");
        if let Some(r) = damaged {
            if differs >= r.start + HEADER && wire.len() >= r.end {
                assert_eq!(failure, TransportFailure::Decrypt, "altered message body");
            }
        }
    }
}

/// The application bytes a receiver must have delivered once it opened `plain` bytes: all of
/// them in `Raw` mode; the whole frames among them with length prefixes.
fn complete(sent: &[u8], plain: usize, framing: Framing) -> usize {
    if framing == Framing::Raw {
        return plain;
    }
    let mut at = 0;
    while at + 4 <= plain {
        let len = u32::from_be_bytes([sent[at], sent[at + 1], sent[at + 2], sent[at + 3]]);
        let end = at + 4 + len as usize;
        if end > plain {
            break;
        }
        at = end;
    }
    at
}
