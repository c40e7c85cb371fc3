//! Properties of secure channels under random conditions: any split or coalescing of a valid
//! encrypted stream delivers the same plaintext; any flipped bit is caught before its message
//! reaches the application; bytes accepted are always either written or reported unsent.

use openp2p_core::{
    Bytes, Config, ConnectFailure, DisconnectReason, Engine, Event, Framing, Identity, PeerId,
    SecureConfig, Transfer, TransportFailure, MIN_SECURE_SEGMENT_SIZE,
};
use proptest::prelude::*;
use std::net::SocketAddr;
use std::time::Instant;

const B_ADDR: &str = "10.0.0.2:4000";
const A_ADDR: &str = "10.0.0.1:5000";

fn config(n: u8, framing: Framing) -> Config {
    Config {
        framing,
        segment_size: MIN_SECURE_SEGMENT_SIZE,
        pool_segments: 4,
        secure: Some(SecureConfig::new(Identity::from_entropy([n; 32]))),
        ..Config::default()
    }
}

/// Two engines joined by hand, `a` dialed `b`; the tests move the bytes.
struct Pair {
    a: Engine,
    b: Engine,
    pa: PeerId,
    pb: PeerId,
    now: Instant,
}

impl Pair {
    /// TCP is up; the handshake has not started moving.
    fn dialed(framing: Framing) -> Pair {
        let now = Instant::now();
        let mut a = Engine::with_entropy(config(1, framing), [1; 32]).unwrap();
        let mut b = Engine::with_entropy(config(2, framing), [2; 32]).unwrap();
        let addr: SocketAddr = B_ADDR.parse().unwrap();
        let listener = b.listen(addr).unwrap();
        b.handle_listening(listener, addr, now);
        let pa = a.connect(addr, now).unwrap();
        a.handle_connected(pa, now);
        let pb = b
            .handle_accepted(listener, A_ADDR.parse().unwrap(), now)
            .unwrap();
        Pair { a, b, pa, pb, now }
    }

    /// After a completed handshake, with the `Connected` events drained.
    fn connected(framing: Framing) -> Pair {
        let mut pair = Self::dialed(framing);
        let (mut events_a, mut events_b) = (drain(&mut pair.a), drain(&mut pair.b));
        for _ in 0..3 {
            let ab = wire(&mut pair.a, pair.pa, pair.now, usize::MAX);
            events_b.extend(feed(&mut pair.b, pair.pb, pair.now, &ab, &[usize::MAX]));
            let ba = wire(&mut pair.b, pair.pb, pair.now, usize::MAX);
            events_a.extend(feed(&mut pair.a, pair.pa, pair.now, &ba, &[usize::MAX]));
        }
        for events in [events_a, events_b] {
            assert!(events.iter().any(|e| matches!(e, Event::Connected { .. })));
        }
        pair
    }
}

/// Everything `engine` writes to `peer` now, in writes of at most `limit` bytes.
fn wire(engine: &mut Engine, peer: PeerId, now: Instant, limit: usize) -> Vec<u8> {
    let mut out = Vec::new();
    while let Transfer::Moved(n) = engine.write_at_most(peer, now, limit, |slices| {
        let n: usize = slices.iter().map(|s| s.len()).sum();
        slices.iter().for_each(|s| out.extend_from_slice(s));
        Ok(n)
    }) {
        if n == 0 {
            break;
        }
    }
    out
}

/// Feeds `bytes` to `peer` in reads sized by `chunks` (cycled), like an application that copies
/// what it receives and drops the pooled original at once; stops when the peer closes. Returns
/// the events.
fn feed(
    engine: &mut Engine,
    peer: PeerId,
    now: Instant,
    bytes: &[u8],
    chunks: &[usize],
) -> Vec<Event> {
    let mut events = Vec::new();
    let mut now = now;
    let mut at = 0;
    let mut i = 0;
    let mut stalls = 0;
    while at < bytes.len() {
        let end = at.saturating_add(chunks[i % chunks.len()]).min(bytes.len());
        i += 1;
        let moved = engine.read_from(peer, now, |buf| {
            let n = buf.len().min(end - at);
            buf[..n].copy_from_slice(&bytes[at..at + n]);
            Ok(n)
        });
        events.extend(drain(engine));
        match moved {
            Transfer::Moved(n) => {
                at += n;
                stalls = 0;
            }
            Transfer::Paused if stalls < 3 => {
                // The pool waits for dropped data: let the engine's retry timer fire.
                stalls += 1;
                now += std::time::Duration::from_millis(200);
                engine.handle_timeout(now);
                events.extend(drain(engine));
            }
            _ => break,
        }
    }
    events
}

/// The engine's events, with received data copied out of the pool (so segments come back).
fn drain(engine: &mut Engine) -> Vec<Event> {
    while engine.poll_io().is_some() {}
    std::iter::from_fn(|| engine.poll_event())
        .map(|e| match e {
            Event::Received { peer, data } => Event::Received {
                peer,
                data: Bytes::copy_from_slice(&data),
            },
            other => other,
        })
        .collect()
}

fn received(events: &[Event]) -> Vec<Bytes> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Received { data, .. } => Some(data.clone()),
            _ => None,
        })
        .collect()
}

fn disconnected(events: &[Event]) -> Option<DisconnectReason> {
    events.iter().find_map(|e| match e {
        Event::Disconnected { reason, .. } => Some(*reason),
        _ => None,
    })
}

fn payload(size: usize, seed: u8) -> Bytes {
    (0..size)
        .map(|i| seed.wrapping_add((i as u8).wrapping_mul(29)) ^ (i >> 9) as u8)
        .collect::<Vec<u8>>()
        .into()
}

/// The plaintext byte stream a list of messages makes in `framing`.
fn stream(messages: &[Bytes], framing: Framing) -> Vec<u8> {
    let mut out = Vec::new();
    for m in messages {
        if framing == Framing::LengthPrefixed {
            out.extend_from_slice(&(m.len() as u32).to_be_bytes());
        }
        out.extend_from_slice(m);
    }
    out
}

/// Where each transport message of a post-handshake wire starts: (start, end).
fn records(wire: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 2 <= wire.len() {
        let len = usize::from(u16::from_be_bytes([wire[at], wire[at + 1]]));
        out.push((at, at + 2 + len));
        at += 2 + len;
    }
    out
}

fn framing() -> impl Strategy<Value = Framing> {
    prop_oneof![Just(Framing::LengthPrefixed), Just(Framing::Raw)]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() })]

    /// (a) Messages of random sizes, sent in random batches between writes of random sizes (so
    /// transport messages coalesce and split frames arbitrarily), read in random chunks: the
    /// receiver gets exactly the plaintext sent, in order.
    #[test]
    fn any_split_or_coalescing_of_a_valid_stream_delivers_the_same_plaintext(
        framing in framing(),
        batches in proptest::collection::vec(
            proptest::collection::vec((0usize..200_000, any::<u8>()), 0..4), 1..4),
        write_limits in proptest::collection::vec(1usize..150_000, 1..6),
        chunks in proptest::collection::vec(1usize..100_000, 1..12),
    ) {
        let mut pair = Pair::connected(framing);
        let mut sent = Vec::new();
        let mut on_wire = Vec::new();
        for (i, batch) in batches.iter().enumerate() {
            for &(size, seed) in batch {
                let data = payload(size, seed);
                if pair.a.send(pair.pa, data.clone(), pair.now).is_ok() {
                    sent.push(data);
                }
            }
            let limit = write_limits[i % write_limits.len()];
            on_wire.extend(wire(&mut pair.a, pair.pa, pair.now, limit));
        }
        let events = feed(&mut pair.b, pair.pb, pair.now, &on_wire, &chunks);
        prop_assert_eq!(disconnected(&events), None);
        let got = received(&events);
        let plain = stream(&sent, framing);
        let delivered = stream(&got, framing);
        prop_assert!(
            delivered == plain,
            "delivered {} bytes, sent {}; first difference at {:?}",
            delivered.len(),
            plain.len(),
            delivered.iter().zip(&plain).position(|(x, y)| x != y)
        );
        if framing == Framing::LengthPrefixed {
            prop_assert_eq!(got, sent);
        }
        prop_assert_eq!(pair.b.global_stats().received.payload_bytes, plain.len() as u64);
    }

    /// (b) One flipped bit anywhere after the handshake: the receiver disconnects with
    /// `Secure(Decrypt)` (a flipped length prefix may give `Malformed` or, at EOF, `Truncated`)
    /// and what it delivered is an exact prefix of what was sent.
    #[test]
    fn any_flipped_bit_after_the_handshake_is_detected_and_nothing_altered_is_delivered(
        framing in framing(),
        messages in proptest::collection::vec((1usize..30_000, any::<u8>()), 1..5),
        separate_writes in any::<bool>(),
        flip in any::<prop::sample::Index>(),
        bit in 0u8..8,
        chunks in proptest::collection::vec(1usize..40_000, 1..6),
    ) {
        let mut pair = Pair::connected(framing);
        let mut sent = Vec::new();
        let mut on_wire = Vec::new();
        for &(size, seed) in &messages {
            let data = payload(size, seed);
            pair.a.send(pair.pa, data.clone(), pair.now).unwrap();
            sent.push(data);
            if separate_writes {
                on_wire.extend(wire(&mut pair.a, pair.pa, pair.now, usize::MAX));
            }
        }
        on_wire.extend(wire(&mut pair.a, pair.pa, pair.now, usize::MAX));
        let at = flip.index(on_wire.len());
        let in_prefix = records(&on_wire).iter().any(|&(start, _)| at == start || at == start + 1);
        on_wire[at] ^= 1 << bit;
        let mut events = feed(&mut pair.b, pair.pb, pair.now, &on_wire, &chunks);
        pair.b.read_from(pair.pb, pair.now, |_| Ok(0));
        events.extend(drain(&mut pair.b));
        let reason = disconnected(&events);
        if in_prefix {
            prop_assert!(
                matches!(reason, Some(DisconnectReason::Secure(_))),
                "flipped length prefix at {}: {:?}", at, reason
            );
        } else {
            prop_assert_eq!(reason, Some(DisconnectReason::Secure(TransportFailure::Decrypt)));
        }
        let delivered = stream(&received(&events), framing);
        let all = stream(&sent, framing);
        prop_assert!(all.starts_with(&delivered), "delivered bytes differ from the sent ones");
        prop_assert!(delivered.len() < all.len() || all.is_empty(), "the altered message was delivered");
    }

    /// (c) Accounting: a secure peer aborted at a random point (before, during or after its
    /// handshake, with sealed bytes partly written) reports as unsent exactly what was accepted
    /// and not written, per peer and globally.
    #[test]
    fn bytes_accepted_are_written_or_reported_unsent_when_a_secure_peer_is_aborted(
        framing in framing(),
        messages in proptest::collection::vec(1usize..100_000, 0..6),
        rounds in 0usize..5,
        limits in proptest::collection::vec(1usize..80_000, 1..5),
    ) {
        let mut pair = Pair::dialed(framing);
        let mut events_a = Vec::new();
        let mut accepted = 0u64;
        for (i, &size) in messages.iter().enumerate() {
            if pair.a.send(pair.pa, payload(size, i as u8), pair.now).is_ok() {
                accepted += size as u64 + if framing == Framing::LengthPrefixed { 4 } else { 0 };
            }
        }
        // Each round moves the handshake one step and writes at most one limit's worth.
        for round in 0..rounds {
            let ab = wire(&mut pair.a, pair.pa, pair.now, limits[round % limits.len()]);
            feed(&mut pair.b, pair.pb, pair.now, &ab, &[usize::MAX]);
            let ba = wire(&mut pair.b, pair.pb, pair.now, usize::MAX);
            events_a.extend(feed(&mut pair.a, pair.pa, pair.now, &ba, &[usize::MAX]));
        }
        let before = pair.a.global_stats();
        events_a.extend(drain(&mut pair.a));
        let was_connected = events_a.iter().any(|e| matches!(e, Event::Connected { .. }));
        pair.a.abort(pair.pa, pair.now).unwrap();
        let events = drain(&mut pair.a);
        let unsent = events.iter().find_map(|e| match e {
            Event::Disconnected { reason: DisconnectReason::Aborted, unsent, .. } => Some(*unsent),
            Event::ConnectFailed { reason: ConnectFailure::Aborted, unsent, .. } => Some(*unsent),
            _ => None,
        });
        let Some(unsent) = unsent else {
            return Err(TestCaseError::fail(format!("no end event: {events:?}")));
        };
        let g = pair.a.global_stats();
        prop_assert_eq!(g.accepted_bytes, accepted);
        prop_assert_eq!(g.sent.payload_bytes, before.sent.payload_bytes, "abort wrote nothing");
        prop_assert_eq!(g.accepted_bytes, g.sent.payload_bytes + g.unsent_bytes);
        prop_assert_eq!(g.unsent_bytes, unsent);
        prop_assert_eq!(g.queued_bytes, 0);
        if !was_connected {
            prop_assert_eq!(unsent, accepted, "nothing is written before the handshake");
        }
        prop_assert!(pair.a.check_invariants().is_ok());
    }
}

#[test]
fn check_invariants_accepts_a_dial_in_its_handshake() {
    let pair = Pair::dialed(Framing::LengthPrefixed);
    assert_eq!(pair.a.check_invariants(), Ok(()));
}

#[test]
fn authentic_messages_before_a_forged_one_in_the_same_read_are_delivered() {
    let mut pair = Pair::connected(Framing::LengthPrefixed);
    pair.a.send(pair.pa, "first".into(), pair.now).unwrap();
    let mut on_wire = wire(&mut pair.a, pair.pa, pair.now, usize::MAX);
    pair.a.send(pair.pa, "second".into(), pair.now).unwrap();
    let second = wire(&mut pair.a, pair.pa, pair.now, usize::MAX);
    let flip = on_wire.len() + 5;
    on_wire.extend(second);
    on_wire[flip] ^= 1;
    // Both transport messages arrive in one read: the first is authentic, the second is not.
    let events = feed(&mut pair.b, pair.pb, pair.now, &on_wire, &[usize::MAX]);
    assert_eq!(
        disconnected(&events),
        Some(DisconnectReason::Secure(TransportFailure::Decrypt))
    );
    // DisconnectReason::Secure: "Nothing of the failed message reached the application;
    // everything before it did."
    assert_eq!(received(&events), vec![Bytes::from("first")]);
}
