//! Secure channels on the engine alone: handshakes, gating, and attacks on the byte stream,
//! driven by hand (no sockets) and on the simulated network.

use openp2p_core::sim::{Link, SimNet};
use openp2p_core::{
    Allow, Bytes, Config, ConnectFailure, DisconnectReason, Engine, Event, Framing,
    HandshakeFailure, Identity, ListenerId, PeerId, PeerKey, SecureConfig, Transfer,
    TransportFailure,
};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

fn identity(n: u8) -> Identity {
    Identity::from_entropy([n; 32])
}

fn secure(id: &Identity) -> Config {
    Config {
        framing: Framing::LengthPrefixed,
        secure: Some(SecureConfig::new(id.clone())),
        ..Config::default()
    }
}

/// Two engines joined by hand: `a` dials `b`. Bytes move only when `pump` is called, and a test
/// may tamper with them on the way.
struct Pair {
    a: Engine,
    b: Engine,
    pa: PeerId,
    pb: PeerId,
    now: Instant,
    events_a: Vec<Event>,
    events_b: Vec<Event>,
}

const B_ADDR: &str = "10.0.0.2:4000";
const A_ADDR: &str = "10.0.0.1:5000";

impl Pair {
    fn new(a: Config, b: Config) -> Pair {
        Self::with_pin(a, b, None)
    }

    fn with_pin(a: Config, b: Config, pin: Option<PeerKey>) -> Pair {
        let now = Instant::now();
        let mut a = Engine::with_entropy(a, [1; 32]).unwrap();
        let (mut b, listener) = listening(b, now);
        let target: SocketAddr = B_ADDR.parse().unwrap();
        let pa = match pin {
            Some(key) => a.connect_pinned(target, key, now).unwrap(),
            None => a.connect(target, now).unwrap(),
        };
        a.handle_connected(pa, now);
        let pb = b
            .handle_accepted(listener, A_ADDR.parse().unwrap(), now)
            .unwrap();
        let mut pair = Pair {
            a,
            b,
            pa,
            pb,
            now,
            events_a: Vec::new(),
            events_b: Vec::new(),
        };
        pair.drain();
        pair
    }

    fn drain(&mut self) {
        while self.a.poll_io().is_some() {}
        while self.b.poll_io().is_some() {}
        self.events_a
            .extend(std::iter::from_fn(|| self.a.poll_event()));
        self.events_b
            .extend(std::iter::from_fn(|| self.b.poll_event()));
    }

    /// Everything `from` would write now.
    fn wire(engine: &mut Engine, peer: PeerId, now: Instant) -> Vec<u8> {
        let mut out = Vec::new();
        while let Transfer::Moved(n) = engine.write_to(peer, now, |slices| {
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

    /// Feeds `bytes` to an engine's peer in reads of at most `chunk` bytes.
    fn feed(engine: &mut Engine, peer: PeerId, now: Instant, bytes: &[u8], chunk: usize) {
        let mut at = 0;
        while at < bytes.len() {
            let end = at.saturating_add(chunk).min(bytes.len());
            let moved = engine.read_from(peer, now, |buf| {
                let n = buf.len().min(end - at);
                buf[..n].copy_from_slice(&bytes[at..at + n]);
                Ok(n)
            });
            match moved {
                Transfer::Moved(n) => at += n,
                _ => return,
            }
        }
    }

    /// Moves bytes both ways until neither side has anything to write; `tamper` sees a->b bytes.
    fn pump_with(&mut self, chunk: usize, mut tamper: impl FnMut(&mut Vec<u8>)) {
        for _ in 0..1000 {
            let mut ab = Self::wire(&mut self.a, self.pa, self.now);
            let ba = Self::wire(&mut self.b, self.pb, self.now);
            if ab.is_empty() && ba.is_empty() {
                break;
            }
            tamper(&mut ab);
            Self::feed(&mut self.b, self.pb, self.now, &ab, chunk);
            Self::feed(&mut self.a, self.pa, self.now, &ba, chunk);
            self.drain();
        }
        self.drain();
    }

    fn pump(&mut self) {
        self.pump_with(usize::MAX, |_| {});
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
}

/// A secure engine listening at `B_ADDR` (b's side of a `Pair`), and the listener.
fn listening(config: Config, now: Instant) -> (Engine, ListenerId) {
    let mut b = Engine::with_entropy(config, [2; 32]).unwrap();
    let listener = b.listen(B_ADDR.parse().unwrap()).unwrap();
    b.handle_listening(listener, B_ADDR.parse().unwrap(), now);
    (b, listener)
}

/// A secure listener and one connection a stranger at `A_ADDR` opened to it.
fn listener_with_stranger(now: Instant) -> (Engine, PeerId) {
    let (mut b, listener) = listening(secure(&identity(2)), now);
    let stranger = b
        .handle_accepted(listener, A_ADDR.parse().unwrap(), now)
        .unwrap();
    (b, stranger)
}

/// Whether the events hold a `Disconnected` for this secure-channel failure.
fn disconnected_by(events: &[Event], failure: TransportFailure) -> bool {
    events.iter().any(|e| {
        matches!(e, Event::Disconnected { reason: DisconnectReason::Secure(f), .. } if *f == failure)
    })
}

fn connected_key(events: &[Event]) -> Option<Option<PeerKey>> {
    events.iter().find_map(|e| match e {
        Event::Connected { key, .. } => Some(*key),
        _ => None,
    })
}

#[test]
fn a_handshake_connects_both_sides_with_each_others_keys() {
    let (ia, ib) = (identity(1), identity(2));
    let mut pair = Pair::new(secure(&ia), secure(&ib));
    assert_eq!(
        connected_key(&pair.events_a),
        None,
        "no Connected before the handshake"
    );
    pair.pump();
    assert_eq!(connected_key(&pair.events_a), Some(Some(ib.public())));
    assert_eq!(connected_key(&pair.events_b), Some(Some(ia.public())));
    assert_eq!(pair.a.peer(pair.pa).unwrap().key, Some(ib.public()));
    assert_eq!(pair.b.stats(pair.pb).unwrap().key, Some(ia.public()));
}

#[test]
fn frames_cross_in_both_directions_over_any_split_of_the_wire() {
    for chunk in [1, 7, 100, 65_537, usize::MAX] {
        let mut pair = Pair::new(secure(&identity(1)), secure(&identity(2)));
        // Queued before the handshake finishes: sent once it has.
        let big = Bytes::from(vec![0xab; 200_000]);
        pair.a.send(pair.pa, "early".into(), pair.now).unwrap();
        pair.a.send(pair.pa, big.clone(), pair.now).unwrap();
        pair.pump_with(chunk, |_| {});
        pair.b.send(pair.pb, "reply".into(), pair.now).unwrap();
        pair.pump_with(chunk, |_| {});
        assert_eq!(
            Pair::received(&pair.events_b),
            vec![Bytes::from("early"), big],
            "chunk {chunk}"
        );
        assert_eq!(Pair::received(&pair.events_a), vec![Bytes::from("reply")]);
        let stats = pair.a.stats(pair.pa).unwrap();
        assert_eq!(stats.sent.payload_bytes, 4 + 5 + 4 + 200_000);
        assert!(
            stats.sent.bytes > stats.sent.payload_bytes,
            "wire counts handshake and tags"
        );
    }
}

#[test]
fn a_pinned_key_that_matches_connects() {
    let ib = identity(2);
    let mut pair = Pair::with_pin(secure(&identity(1)), secure(&ib), Some(ib.public()));
    pair.pump();
    assert_eq!(connected_key(&pair.events_a), Some(Some(ib.public())));
}

#[test]
fn a_pinned_key_that_does_not_match_fails_the_dial_with_both_keys() {
    let (ib, other) = (identity(2), identity(3));
    let mut pair = Pair::with_pin(secure(&identity(1)), secure(&ib), Some(other.public()));
    pair.pa_send_and_pump();
    let failure = pair.events_a.iter().find_map(|e| match e {
        Event::ConnectFailed { reason, unsent, .. } => Some((*reason, *unsent)),
        _ => None,
    });
    assert_eq!(
        failure,
        Some((
            ConnectFailure::Handshake(HandshakeFailure::KeyMismatch {
                expected: other.public(),
                actual: ib.public()
            }),
            4 + 5
        ))
    );
    assert!(connected_key(&pair.events_a).is_none());
    assert!(
        connected_key(&pair.events_b).is_none(),
        "the listener never connects either"
    );
    assert!(
        Pair::received(&pair.events_b).is_empty(),
        "nothing was sent to the wrong key"
    );
}

impl Pair {
    fn pa_send_and_pump(&mut self) {
        self.a.send(self.pa, "hello".into(), self.now).unwrap();
        self.pump();
    }
}

#[test]
fn an_allowlist_refuses_on_the_listening_side() {
    let ia = identity(1);
    let mut b = secure(&identity(2));
    if let Some(s) = &mut b.secure {
        s.allow = Allow::Only([identity(9).public()].into());
    }
    let mut pair = Pair::new(secure(&ia), b);
    pair.pump();
    let failed = pair.events_b.iter().find_map(|e| match e {
        Event::HandshakeFailed { reason, .. } => Some(*reason),
        _ => None,
    });
    assert_eq!(
        failed,
        Some(HandshakeFailure::NotAllowed { key: ia.public() })
    );
    assert!(connected_key(&pair.events_b).is_none());
    assert_eq!(pair.b.global_stats().handshake_failures, 1);
    assert_eq!(pair.b.global_stats().peers, 0, "slot freed");
}

#[test]
fn an_allowlist_refuses_on_the_dialing_side() {
    let ib = identity(2);
    let mut a = secure(&identity(1));
    if let Some(s) = &mut a.secure {
        s.allow = Allow::Only([identity(9).public()].into());
    }
    let mut pair = Pair::new(a, secure(&ib));
    pair.pump();
    assert!(pair.events_a.iter().any(|e| matches!(
        e,
        Event::ConnectFailed { reason: ConnectFailure::Handshake(HandshakeFailure::NotAllowed { key }), .. } if *key == ib.public()
    )));
}

#[test]
fn one_flipped_bit_disconnects_with_the_decrypt_reason_and_delivers_everything_before_it() {
    let mut pair = Pair::new(secure(&identity(1)), secure(&identity(2)));
    pair.pump();
    pair.a.send(pair.pa, "first".into(), pair.now).unwrap();
    pair.pump();
    pair.a.send(pair.pa, "second".into(), pair.now).unwrap();
    pair.pump_with(usize::MAX, |wire| {
        if let Some(b) = wire.get_mut(5) {
            *b ^= 0x10;
        }
    });
    assert_eq!(Pair::received(&pair.events_b), vec![Bytes::from("first")]);
    assert!(disconnected_by(&pair.events_b, TransportFailure::Decrypt));
}

#[test]
fn a_stream_cut_inside_a_transport_message_is_reported_truncated() {
    let mut pair = Pair::new(secure(&identity(1)), secure(&identity(2)));
    pair.pump();
    pair.a.send(pair.pa, "whole".into(), pair.now).unwrap();
    pair.a
        .send(pair.pa, Bytes::from(vec![1; 1000]), pair.now)
        .unwrap();
    let wire = Pair::wire(&mut pair.a, pair.pa, pair.now);
    let cut = wire.len() - 10;
    Pair::feed(&mut pair.b, pair.pb, pair.now, &wire[..cut], usize::MAX);
    let eof = pair.b.read_from(pair.pb, pair.now, |_| Ok(0));
    assert_eq!(eof, Transfer::Closed);
    pair.drain();
    // Both frames were sealed into one transport message: neither may be delivered.
    assert!(Pair::received(&pair.events_b).is_empty());
    assert!(disconnected_by(&pair.events_b, TransportFailure::Truncated));
}

#[test]
fn a_65535_byte_garbage_transport_message_is_rejected_without_delivery() {
    let mut pair = Pair::new(secure(&identity(1)), secure(&identity(2)));
    pair.pump();
    let mut garbage = vec![0xff, 0xff];
    garbage.extend(std::iter::repeat_n(0x42, 65_535));
    Pair::feed(&mut pair.b, pair.pb, pair.now, &garbage, usize::MAX);
    pair.drain();
    assert!(Pair::received(&pair.events_b).is_empty());
    assert!(disconnected_by(&pair.events_b, TransportFailure::Decrypt));
}

#[test]
fn plaintext_bytes_at_a_secure_listener_fail_the_handshake_without_connected() {
    let now = Instant::now();
    let (mut b, pb) = listener_with_stranger(now);
    // "GET / HTTP/1.1": the first two bytes announce an 18,245-byte handshake message.
    Pair::feed(&mut b, pb, now, b"GET / HTTP/1.1\r\n\r\n", usize::MAX);
    let events: Vec<Event> = std::iter::from_fn(|| b.poll_event()).collect();
    assert!(events.iter().any(|e| matches!(
        e,
        Event::HandshakeFailed {
            reason: HandshakeFailure::Malformed,
            ..
        }
    )));
    assert!(!events.iter().any(|e| matches!(e, Event::Connected { .. })));
    assert_eq!(b.global_stats().peers, 0);
}

#[test]
fn a_handshake_that_never_finishes_times_out_and_frees_its_slot() {
    let now = Instant::now();
    let (mut b, pb) = listener_with_stranger(now);
    // A slowloris: one byte a second (announcing a 257-byte first message) never completes it.
    for s in 0..12u64 {
        let at = now + Duration::from_secs(s);
        b.handle_timeout(at);
        Pair::feed(&mut b, pb, at, &[1], 1);
    }
    let events: Vec<Event> = std::iter::from_fn(|| b.poll_event()).collect();
    assert!(events.iter().any(|e| matches!(
        e,
        Event::HandshakeFailed {
            reason: HandshakeFailure::TimedOut,
            ..
        }
    )));
    assert_eq!(b.global_stats().peers, 0);
}

#[test]
fn a_secure_engine_needs_entropy_and_a_plaintext_one_cannot_pin() {
    assert!(Engine::new(secure(&identity(1))).is_err());
    let mut plain = Engine::new(Config::default()).unwrap();
    let pinned = plain.connect_pinned(
        B_ADDR.parse().unwrap(),
        identity(2).public(),
        Instant::now(),
    );
    assert_eq!(pinned, Err(openp2p_core::ConnectError::NotSecure));
}

#[test]
fn a_secure_swarm_on_the_simulated_network_repeats_exactly_from_its_seed() {
    let run = |seed: u64| {
        let mut net = SimNet::new(seed, Instant::now(), Link::default());
        let server = net.add_node(secure(&identity(1))).unwrap();
        let addr = net.listen(server).unwrap();
        let clients: Vec<_> = (0..3)
            .map(|i| net.add_node(secure(&identity(10 + i))).unwrap())
            .collect();
        let t0 = net.now();
        for &c in &clients {
            net.engine(c).connect(addr, t0).unwrap();
        }
        let mut received = 0usize;
        net.run_for(
            Duration::from_secs(2),
            |node, engine, event, at| match event {
                Event::Connected { peer, key, .. } if node != server => {
                    assert_eq!(key, Some(identity(1).public()));
                    engine
                        .send(peer, Bytes::from(vec![3u8; 100_000]), at)
                        .unwrap();
                }
                Event::Received { data, .. } => received += data.len(),
                _ => {}
            },
        );
        (received, net.trace().len())
    };
    let first = run(7);
    assert_eq!(first.0, 300_000);
    assert_eq!(first, run(7));
}

#[test]
fn strangers_trickling_handshakes_do_not_pin_the_receive_pool() {
    let now = Instant::now();
    let config = |id: &Identity| Config {
        pool_segments: 4,
        ..secure(id)
    };
    let (mut b, listener) = listening(config(&identity(2)), now);
    // Ten strangers each send the first bytes of a handshake message and go quiet.
    for i in 0..10u8 {
        let remote = SocketAddr::from(([10, 9, 0, i], 5000));
        let p = b.handle_accepted(listener, remote, now).unwrap();
        Pair::feed(&mut b, p, now, &[0, 32, 1, 2, 3], usize::MAX);
    }
    assert_eq!(
        b.pool_usage().lent,
        0,
        "no segment held for a partial handshake"
    );
    // A real peer still completes its handshake and delivers a message.
    let mut a = Engine::with_entropy(config(&identity(1)), [1; 32]).unwrap();
    let pa = a.connect(B_ADDR.parse().unwrap(), now).unwrap();
    a.handle_connected(pa, now);
    let pb = b
        .handle_accepted(listener, A_ADDR.parse().unwrap(), now)
        .unwrap();
    a.send(pa, "through".into(), now).unwrap();
    let mut got = Vec::new();
    for _ in 0..4 {
        let ab = Pair::wire(&mut a, pa, now);
        Pair::feed(&mut b, pb, now, &ab, 3);
        let ba = Pair::wire(&mut b, pb, now);
        Pair::feed(&mut a, pa, now, &ba, usize::MAX);
        got.extend(Pair::received(
            &std::iter::from_fn(|| b.poll_event()).collect::<Vec<_>>(),
        ));
    }
    assert_eq!(got, vec![Bytes::from("through")]);
    // The strangers' stashed bytes still count: finishing the first message later is parsed.
    assert_eq!(b.global_stats().peers, 11);
}

#[test]
fn a_rate_limited_secure_peer_puts_its_rate_on_the_wire_within_one_percent() {
    // A secure server limited to 64 KiB/s upload per peer sends 4 MiB to each of three clients;
    // limits count wire bytes (handshake, length prefixes and tags included).
    let limit = openp2p_core::Rate::per_second(64 * 1024);
    let mut net = SimNet::new(1, Instant::now(), Link::default());
    let server = net
        .add_node(Config {
            peer_limits: openp2p_core::Limits::upload(limit),
            ..secure(&identity(1))
        })
        .unwrap();
    let addr = net.listen(server).unwrap();
    let clients: Vec<_> = (0..3)
        .map(|i| net.add_node(secure(&identity(20 + i))).unwrap())
        .collect();
    let t0 = net.now();
    for &c in &clients {
        net.engine(c).connect(addr, t0).unwrap();
    }
    let payload = Bytes::from(vec![7u8; 4 * 1024 * 1024]);
    let mut peers = Vec::new();
    net.run_for(Duration::from_secs(1), |node, engine, event, at| {
        if let (true, Event::Connected { peer, .. }) = (node == server, event) {
            engine.send(peer, payload.clone(), at).unwrap();
            peers.push(peer);
        }
    });
    let wire_at = |net: &mut SimNet| -> Vec<u64> {
        peers
            .iter()
            .map(|&p| net.engine(server).stats(p).unwrap().sent.bytes)
            .collect()
    };
    let start = wire_at(&mut net);
    net.run_for(Duration::from_secs(10), |_, _, _, _| {});
    let end = wire_at(&mut net);
    for (s, e) in start.iter().zip(&end) {
        let rate = (e - s) as f64 / 10.0;
        let error = (rate - limit.bytes_per_sec() as f64).abs() / limit.bytes_per_sec() as f64;
        assert!(
            error < 0.01,
            "{rate:.0} B/s on the wire, error {:.3} %",
            error * 100.0
        );
    }
}

#[test]
fn the_close_of_a_failed_inbound_handshake_says_no_event_named_the_peer() {
    let now = Instant::now();
    let (mut b, stranger) = listener_with_stranger(now);
    Pair::feed(&mut b, stranger, now, b"GET / HTTP/1.1\r\n\r\n", usize::MAX);
    let closes: Vec<_> = std::iter::from_fn(|| b.poll_io())
        .filter_map(|io| match io {
            openp2p_core::Io::Close { peer, announced } => Some((peer, announced)),
            _ => None,
        })
        .collect();
    assert_eq!(closes, [(stranger, false)]);
    // A connected peer's close is announced (its `Disconnected` names it).
    let mut pair = Pair::new(secure(&identity(1)), secure(&identity(2)));
    pair.pump();
    pair.b.abort(pair.pb, pair.now).unwrap();
    let announced: Vec<_> = std::iter::from_fn(|| pair.b.poll_io())
        .filter_map(|io| match io {
            openp2p_core::Io::Close { announced, .. } => Some(announced),
            _ => None,
        })
        .collect();
    assert_eq!(announced, [true]);
}
