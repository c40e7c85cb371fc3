//! Property tests of the engine's invariants, driven through its public driver contract.

use openp2p_core::{
    Bytes, Config, DisconnectReason, Engine, Event, Framing, Io, ListenerId, PeerId, SendError,
    Transfer,
};
use proptest::prelude::*;
use std::collections::{HashMap, HashSet};
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

fn addr(i: u16) -> SocketAddr {
    SocketAddr::from(([10, 0, (i >> 8) as u8, i as u8], 1000 + i))
}

fn drain(engine: &mut Engine) -> Vec<Event> {
    while engine.poll_io().is_some() {}
    std::iter::from_fn(|| engine.poll_event()).collect()
}

/// An engine with one bound listener.
fn engine_with_listener(config: Config, now: Instant) -> (Engine, ListenerId) {
    let mut engine = Engine::new(config).unwrap();
    let listener = engine.listen(addr(0)).unwrap();
    engine.handle_listening(listener, addr(0), now);
    drain(&mut engine);
    (engine, listener)
}

// ----- accounting ---------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Op {
    Accept,
    Connect,
    Connected(usize),
    ConnectFailed(usize),
    Send(usize, usize),
    Write(usize, usize),
    Disconnect(usize),
    Abort(usize),
    Reset(usize),
    Eof(usize),
    Advance(u64),
    Rewind(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => Just(Op::Accept),
        1 => Just(Op::Connect),
        1 => (0usize..8).prop_map(Op::Connected),
        1 => (0usize..8).prop_map(Op::ConnectFailed),
        4 => (0usize..8, 0usize..5000).prop_map(|(p, n)| Op::Send(p, n)),
        4 => (0usize..8, 0usize..8000).prop_map(|(p, n)| Op::Write(p, n)),
        1 => (0usize..8).prop_map(Op::Disconnect),
        1 => (0usize..8).prop_map(Op::Abort),
        1 => (0usize..8).prop_map(Op::Reset),
        1 => (0usize..8).prop_map(Op::Eof),
        1 => (0u64..5_000).prop_map(Op::Advance),
        1 => (0u64..5_000).prop_map(Op::Rewind),
    ]
}

/// What the events said, per peer.
#[derive(Default, Debug)]
struct Ledger {
    connects: HashSet<PeerId>,
    outcome: HashMap<PeerId, &'static str>,
    disconnected: HashSet<PeerId>,
    sent: u64,
    unsent: u64,
}

impl Ledger {
    fn absorb(&mut self, events: Vec<Event>) -> Result<(), TestCaseError> {
        for event in events {
            match event {
                Event::Connected { peer, .. } => {
                    prop_assert!(
                        self.outcome.insert(peer, "connected").is_none(),
                        "{peer:?} twice"
                    );
                }
                Event::ConnectFailed { peer, unsent, .. } => {
                    self.unsent += unsent;
                    prop_assert!(self.connects.contains(&peer));
                    prop_assert!(
                        self.outcome.insert(peer, "failed").is_none(),
                        "{peer:?} twice"
                    );
                }
                Event::Disconnected { peer, unsent, .. } => {
                    prop_assert_eq!(self.outcome.get(&peer), Some(&"connected"));
                    prop_assert!(
                        self.disconnected.insert(peer),
                        "{peer:?} disconnected twice"
                    );
                    self.unsent += unsent;
                }
                Event::Sent { peer, bytes } => {
                    prop_assert!(!self.disconnected.contains(&peer));
                    self.sent += bytes as u64;
                }
                Event::Received { peer, .. } | Event::Writable { peer } => {
                    prop_assert!(!self.disconnected.contains(&peer));
                }
                _ => {}
            }
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// Whatever the application and the driver do, in any order: bytes accepted = bytes written +
    /// bytes reported unsent (+ still queued while alive); every connect gets exactly one outcome;
    /// every connected peer exactly one `Disconnected`; nothing follows a peer's `Disconnected`.
    #[test]
    fn accepted_bytes_are_written_or_reported_unsent_and_events_pair_up(
        ops in proptest::collection::vec(op(), 1..120),
        framing in prop_oneof![Just(Framing::Raw), Just(Framing::LengthPrefixed), Just(Framing::Delimited(0))],
    ) {
        let base = Instant::now();
        let mut t = Duration::from_secs(1);
        let config = Config {
            framing,
            send_queue_high_water: 16 * 1024,
            send_queue_low_water: 4 * 1024,
            max_peers: 6,
            max_pending_connects: 3,
            idle_timeout: Some(Duration::from_millis(3_000)),
            linger_timeout: Duration::from_millis(2_000),
            connect_timeout: Duration::from_millis(2_500),
            ..Config::default()
        };
        let (mut engine, listener) = engine_with_listener(config, base);
        let mut peers: Vec<PeerId> = Vec::new();
        let mut ledger = Ledger::default();
        let mut accepted = 0u64;
        let payload = Bytes::from(vec![1u8; 5000]);
        for (i, op) in ops.into_iter().enumerate() {
            let now = base + t;
            let pick = |k: usize| peers.get(k % peers.len().max(1)).copied();
            match op {
                Op::Accept => {
                    if let Ok(p) = engine.handle_accepted(listener, addr(i as u16 + 1), now) {
                        peers.push(p);
                    }
                }
                Op::Connect => {
                    if let Ok(p) = engine.connect(addr(i as u16 + 1), now) {
                        ledger.connects.insert(p);
                        peers.push(p);
                    }
                }
                Op::Connected(k) => if let Some(p) = pick(k) { engine.handle_connected(p, now) },
                Op::ConnectFailed(k) => if let Some(p) = pick(k) {
                    engine.handle_connect_failed(p, io::ErrorKind::ConnectionRefused, now)
                },
                Op::Send(k, n) => if let Some(p) = pick(k) {
                    let before = engine.global_stats().accepted_bytes;
                    match engine.send(p, payload.slice(..n), now) {
                        Ok(()) => accepted += engine.global_stats().accepted_bytes - before,
                        Err(SendError::QueueFull { queued, limit }) => prop_assert!(queued <= limit + 5004),
                        Err(_) => prop_assert_eq!(engine.global_stats().accepted_bytes, before),
                    }
                },
                Op::Write(k, n) => if let Some(p) = pick(k) {
                    let _ = engine.write_to(p, now, |slices| {
                        let offered: usize = slices.iter().map(|s| s.len()).sum();
                        if n % 7 == 0 { Err(io::ErrorKind::WouldBlock.into()) } else { Ok(n.min(offered)) }
                    });
                },
                Op::Disconnect(k) => if let Some(p) = pick(k) { let _ = engine.disconnect(p, now); },
                Op::Abort(k) => if let Some(p) = pick(k) { let _ = engine.abort(p, now); },
                Op::Reset(k) => if let Some(p) = pick(k) {
                    engine.handle_error(p, io::ErrorKind::ConnectionReset, now)
                },
                Op::Eof(k) => if let Some(p) = pick(k) { let _ = engine.read_from(p, now, |_| Ok(0)); },
                Op::Advance(ms) => {
                    t += Duration::from_millis(ms);
                    engine.handle_timeout(base + t);
                }
                Op::Rewind(ms) => engine.handle_timeout(base + t.saturating_sub(Duration::from_millis(ms))),
            }
            ledger.absorb(drain(&mut engine))?;
            engine.check_invariants().map_err(TestCaseError::fail)?;
        }
        // Tear everything down: every byte is then either written or reported unsent.
        let now = base + t;
        for p in peers {
            let _ = engine.abort(p, now);
        }
        ledger.absorb(drain(&mut engine))?;
        engine.check_invariants().map_err(TestCaseError::fail)?;
        prop_assert_eq!(engine.peer_count(), 0);
        prop_assert_eq!(accepted, ledger.sent + ledger.unsent);
        for p in &ledger.connects {
            prop_assert!(ledger.outcome.contains_key(p), "{p:?} never got an outcome");
        }
        for (p, outcome) in &ledger.outcome {
            if *outcome == "connected" {
                prop_assert!(ledger.disconnected.contains(p), "{p:?} never disconnected");
            }
        }
    }
}

// ----- delivery across splits ----------------------------------------------------------------------

/// Frames `messages` through a sending engine and returns the wire bytes.
fn wire_of(framing: Framing, messages: &[Bytes], now: Instant) -> Vec<u8> {
    let (mut tx, listener) = engine_with_listener(
        Config {
            framing,
            ..Config::default()
        },
        now,
    );
    let peer = tx.handle_accepted(listener, addr(1), now).unwrap();
    let mut wire = Vec::new();
    for m in messages {
        tx.send(peer, m.clone(), now).unwrap();
        while let Transfer::Moved(_) = tx.write_to(peer, now, |slices| {
            let n: usize = slices.iter().map(|s| s.len()).sum();
            slices.iter().for_each(|s| wire.extend_from_slice(s));
            Ok(n)
        }) {}
    }
    wire
}

fn message(framing: Framing) -> impl Strategy<Value = Bytes> {
    let max = if framing == Framing::Raw { 3000 } else { 2500 };
    proptest::collection::vec(1u8..=255, 0..max).prop_map(move |mut v| {
        if let Framing::Delimited(d) = framing {
            v.retain(|b| *b != d);
        }
        Bytes::from(v)
    })
}

fn deliver(
    framing: Framing,
    messages: Vec<Bytes>,
    splits: Vec<usize>,
) -> Result<(), TestCaseError> {
    let now = Instant::now();
    let wire = wire_of(framing, &messages, now);
    // A small pool with small segments: messages straddle, compact and spill.
    let config = Config {
        framing,
        segment_size: 1024,
        pool_segments: 3,
        ..Config::default()
    };
    let (mut rx, listener) = engine_with_listener(config, now);
    let peer = rx.handle_accepted(listener, addr(1), now).unwrap();
    let sent: Vec<u8> = messages.iter().flat_map(|b| b.iter().copied()).collect();
    let mut expected = messages.iter();
    let mut raw_at = 0;
    let mut at = 0;
    let mut split = splits.iter().cycle();
    let mut paused = 0;
    while at < wire.len() {
        let want = *split.next().unwrap_or(&1);
        let r = rx.read_from(peer, now, |buf| {
            let n = want.min(buf.len()).min(wire.len() - at);
            buf[..n].copy_from_slice(&wire[at..at + n]);
            Ok(n)
        });
        match r {
            Transfer::Moved(n) => {
                at += n;
                paused = 0;
            }
            Transfer::Paused => {
                // Only the pool can pause this reader; the data was dropped, so the retry
                // timer must find memory again.
                paused += 1;
                prop_assert!(paused < 3, "stuck paused at {at}: {:?}", rx.pool_usage());
                rx.handle_timeout(now + Duration::from_secs(paused));
            }
            other => prop_assert!(false, "{other:?} at {at}"),
        }
        // The application checks and drops each message at once.
        for e in drain(&mut rx) {
            if let Event::Received { data, .. } = e {
                if framing == Framing::Raw {
                    prop_assert_eq!(&data[..], &sent[raw_at..raw_at + data.len()]);
                    raw_at += data.len();
                } else {
                    prop_assert_eq!(Some(&data), expected.next());
                }
            }
        }
        rx.check_invariants().map_err(TestCaseError::fail)?;
    }
    if framing == Framing::Raw {
        prop_assert_eq!(raw_at, sent.len());
    } else {
        prop_assert_eq!(expected.next(), None, "a message never arrived");
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// Every message arrives once, whole and in order, however the byte stream is split, in
    /// length-prefixed framing (including empty and segment-sized messages).
    #[test]
    fn length_prefixed_delivery_is_in_order_and_exactly_once_across_any_split(
        messages in proptest::collection::vec(message(Framing::LengthPrefixed), 0..8),
        splits in proptest::collection::vec(1usize..3000, 1..20),
    ) {
        deliver(Framing::LengthPrefixed, messages, splits)?;
    }

    /// The same for delimited framing.
    #[test]
    fn delimited_delivery_is_in_order_and_exactly_once_across_any_split(
        messages in proptest::collection::vec(message(Framing::Delimited(0)), 0..8),
        splits in proptest::collection::vec(1usize..3000, 1..20),
    ) {
        deliver(Framing::Delimited(0), messages, splits)?;
    }

    /// In raw mode the concatenation of chunks is the byte stream.
    #[test]
    fn raw_delivery_preserves_the_byte_stream_across_any_split(
        messages in proptest::collection::vec(message(Framing::Raw), 0..8),
        splits in proptest::collection::vec(1usize..3000, 1..20),
    ) {
        deliver(Framing::Raw, messages, splits)?;
    }

    /// Ids are never reused, and a stale id never reaches a new peer.
    #[test]
    fn ids_never_alias(ops in proptest::collection::vec(0u8..4, 1..300)) {
        let now = Instant::now();
        let (mut engine, listener) = engine_with_listener(Config { max_peers: 4, ..Config::default() }, now);
        let mut seen = HashSet::new();
        let mut live: Vec<PeerId> = Vec::new();
        let mut dead: Vec<PeerId> = Vec::new();
        for (i, op) in ops.into_iter().enumerate() {
            match op {
                0 => if let Ok(p) = engine.handle_accepted(listener, addr(i as u16), now) {
                    prop_assert!(seen.insert(p), "{p:?} issued twice");
                    live.push(p);
                },
                1 => if let Ok(p) = engine.connect(addr(i as u16), now) {
                    prop_assert!(seen.insert(p), "{p:?} issued twice");
                    live.push(p);
                },
                2 => if !live.is_empty() {
                    let p = live.remove(i % live.len());
                    engine.abort(p, now).unwrap();
                    dead.push(p);
                },
                _ => for &p in &dead {
                    prop_assert_eq!(engine.send(p, "x".into(), now), Err(SendError::UnknownPeer));
                    prop_assert!(engine.abort(p, now).is_err());
                    prop_assert!(engine.stats(p).is_none());
                },
            }
            drain(&mut engine);
        }
    }
}

#[test]
fn a_send_to_a_closing_peer_is_refused_and_nothing_is_queued() {
    let now = Instant::now();
    let (mut engine, listener) = engine_with_listener(Config::default(), now);
    let peer = engine.handle_accepted(listener, addr(1), now).unwrap();
    engine.send(peer, "queued".into(), now).unwrap();
    engine.disconnect(peer, now).unwrap();
    assert_eq!(
        engine.send(peer, "late".into(), now),
        Err(SendError::Closing)
    );
    assert_eq!(engine.stats(peer).unwrap().queued, 6);
    // The linger timeout cuts a close that never flushes, reporting what was left.
    engine.handle_timeout(now + Duration::from_secs(60));
    let events = drain(&mut engine);
    assert!(events.contains(&Event::Disconnected {
        peer,
        reason: DisconnectReason::LingerTimeout,
        unsent: 6
    }));
}

#[test]
fn stale_ids_repeated_reports_and_backwards_time_are_harmless() {
    let now = Instant::now();
    let (mut engine, listener) = engine_with_listener(Config::default(), now);
    let peer = engine.handle_accepted(listener, addr(1), now).unwrap();
    engine.abort(peer, now).unwrap();
    drain(&mut engine);
    engine.handle_connected(peer, now);
    engine.handle_connect_failed(peer, io::ErrorKind::Other, now);
    engine.handle_error(peer, io::ErrorKind::Other, now);
    engine.handle_listening(listener, addr(0), now);
    assert_eq!(engine.read_from(peer, now, |_| Ok(0)), Transfer::Closed);
    assert_eq!(engine.write_to(peer, now, |_| Ok(0)), Transfer::Closed);
    assert!(engine.set_limits(peer, Default::default(), now).is_err());
    engine.handle_timeout(now - Duration::from_secs(1));
    engine.handle_timeout(now);
    engine.handle_timeout(now);
    assert!(drain(&mut engine).is_empty());
    // Empty sends are accepted and cost nothing in raw mode.
    let live = engine.handle_accepted(listener, addr(2), now).unwrap();
    engine.send(live, Bytes::new(), now).unwrap();
    assert_eq!(engine.stats(live).unwrap().queued, 0);
    assert!(!engine
        .poll_io()
        .iter()
        .any(|io| matches!(io, Io::Interest { interest, .. } if interest.write)));
    engine.check_invariants().unwrap();
}
