//! A hand-driven pair of engines: the smallest end-to-end check of the driver contract.

use openp2p_core::{Config, Engine, Event, Framing, Io, Transfer};
use std::time::Instant;

fn drain_io(engine: &mut Engine) -> Vec<Io> {
    std::iter::from_fn(|| engine.poll_io()).collect()
}

fn drain_events(engine: &mut Engine) -> Vec<Event> {
    std::iter::from_fn(|| engine.poll_event()).collect()
}

#[test]
fn a_length_prefixed_message_crosses_from_one_engine_to_another() {
    let now = Instant::now();
    let config = Config {
        framing: Framing::LengthPrefixed,
        ..Config::default()
    };
    let mut a = Engine::new(config.clone()).unwrap();
    let mut b = Engine::new(config).unwrap();

    let listener = b.listen("127.0.0.1:0".parse().unwrap()).unwrap();
    b.handle_listening(listener, "127.0.0.1:7000".parse().unwrap(), now);
    let to_b = a.connect("127.0.0.1:7000".parse().unwrap(), now).unwrap();
    a.send(to_b, "queued while connecting".into(), now).unwrap();
    assert!(matches!(drain_io(&mut a)[..], [Io::Connect { .. }]));
    a.handle_connected(to_b, now);
    let from_a = b
        .handle_accepted(listener, "127.0.0.1:7001".parse().unwrap(), now)
        .unwrap();

    let mut wire = Vec::new();
    let moved = a.write_to(to_b, now, |slices| {
        slices.iter().for_each(|s| wire.extend_from_slice(s));
        Ok(wire.len())
    });
    assert_eq!(moved, Transfer::Moved(4 + 23));
    // Deliver it to b in two reads split inside the header.
    for part in [&wire[..2], &wire[2..]] {
        let r = b.read_from(from_a, now, |buf| {
            buf[..part.len()].copy_from_slice(part);
            Ok(part.len())
        });
        assert_eq!(r, Transfer::Moved(part.len()));
    }
    let events = drain_events(&mut b);
    assert!(
        events.iter().any(
            |e| matches!(e, Event::Received { data, .. } if data == "queued while connecting")
        ),
        "{events:?}"
    );
    a.check_invariants().unwrap();
    b.check_invariants().unwrap();

    // Graceful close from a: FIN, b sees EOF, closes; a sees EOF and reports Local.
    a.disconnect(to_b, now).unwrap();
    assert!(drain_io(&mut a)
        .iter()
        .any(|io| matches!(io, Io::ShutdownWrite { .. })));
    assert_eq!(b.read_from(from_a, now, |_| Ok(0)), Transfer::Closed);
    let b_events = drain_events(&mut b);
    assert!(matches!(
        b_events.last(),
        Some(Event::Disconnected {
            reason: openp2p_core::DisconnectReason::Remote,
            unsent: 0,
            ..
        })
    ));
    assert_eq!(a.read_from(to_b, now, |_| Ok(0)), Transfer::Closed);
    let a_events = drain_events(&mut a);
    assert!(matches!(
        a_events.last(),
        Some(Event::Disconnected {
            reason: openp2p_core::DisconnectReason::Local,
            unsent: 0,
            ..
        })
    ));
    a.check_invariants().unwrap();
    b.check_invariants().unwrap();
}

fn accepted_peer(config: Config, now: Instant) -> (Engine, openp2p_core::PeerId) {
    let mut engine = Engine::new(config).unwrap();
    let listener = engine.listen("127.0.0.1:0".parse().unwrap()).unwrap();
    engine.handle_listening(listener, "127.0.0.1:7000".parse().unwrap(), now);
    let peer = engine
        .handle_accepted(listener, "127.0.0.1:7001".parse().unwrap(), now)
        .unwrap();
    drain_io(&mut engine);
    drain_events(&mut engine);
    (engine, peer)
}

#[test]
fn with_half_close_a_peer_can_answer_after_the_remote_eof() {
    let now = Instant::now();
    let (mut engine, peer) = accepted_peer(
        Config {
            half_close: true,
            ..Config::default()
        },
        now,
    );
    engine.read_from(peer, now, |b| {
        b[..4].copy_from_slice(b"ping");
        Ok(4)
    });
    assert_eq!(engine.read_from(peer, now, |_| Ok(0)), Transfer::Closed);
    let events = drain_events(&mut engine);
    assert!(
        matches!(
            events[..],
            [Event::Received { .. }, Event::ReadClosed { .. }]
        ),
        "{events:?}"
    );
    engine.send(peer, "pong".into(), now).unwrap();
    engine.disconnect(peer, now).unwrap();
    let mut wire = Vec::new();
    engine.write_to(peer, now, |s| {
        wire.extend_from_slice(&s[0]);
        Ok(s[0].len())
    });
    assert_eq!(wire, b"pong");
    let events = drain_events(&mut engine);
    assert!(matches!(
        events.last(),
        Some(Event::Disconnected {
            reason: openp2p_core::DisconnectReason::Local,
            unsent: 0,
            ..
        })
    ));
}

#[test]
fn without_half_close_the_remote_eof_flushes_and_closes() {
    let now = Instant::now();
    let (mut engine, peer) = accepted_peer(Config::default(), now);
    engine.send(peer, "bye".into(), now).unwrap();
    assert_eq!(engine.read_from(peer, now, |_| Ok(0)), Transfer::Closed);
    assert_eq!(
        engine.send(peer, "late".into(), now),
        Err(openp2p_core::SendError::Closing)
    );
    engine.write_to(peer, now, |s| Ok(s[0].len()));
    assert!(drain_events(&mut engine)
        .iter()
        .any(|e| matches!(e, Event::Disconnected { unsent: 0, .. })));
}

#[test]
fn a_paused_peer_is_not_read_until_resumed() {
    let now = Instant::now();
    let (mut engine, peer) = accepted_peer(Config::default(), now);
    engine.pause_reading(peer, true).unwrap();
    assert!(drain_io(&mut engine)
        .iter()
        .any(|io| matches!(io, Io::Interest { interest, .. } if !interest.read)));
    assert_eq!(
        engine.read_from(peer, now, |_| panic!("must not read")),
        Transfer::Paused
    );
    engine.pause_reading(peer, false).unwrap();
    assert!(drain_io(&mut engine)
        .iter()
        .any(|io| matches!(io, Io::Interest { interest, .. } if interest.read)));
    assert_eq!(
        engine.read_from(peer, now, |b| {
            b[0] = 1;
            Ok(1)
        }),
        Transfer::Moved(1)
    );
}

#[test]
fn refused_pipelined_sends_and_accept_errors_are_reported_as_events() {
    let now = Instant::now();
    let config = Config {
        framing: Framing::Delimited(0),
        ..Config::default()
    };
    let mut engine = Engine::new(config).unwrap();
    let listener = engine.listen("127.0.0.1:0".parse().unwrap()).unwrap();
    engine.handle_listening(listener, "127.0.0.1:7000".parse().unwrap(), now);
    engine.handle_accept_error(listener, std::io::ErrorKind::Other, now);
    let peer = engine
        .handle_accepted(listener, "127.0.0.1:7001".parse().unwrap(), now)
        .unwrap();
    engine.send_or_report(peer, "fine".into(), now);
    engine.send_or_report(peer, "bad\0".into(), now);
    let events = drain_events(&mut engine);
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::AcceptFailed { .. })));
    assert!(events.iter().any(|e| matches!(
        e,
        Event::SendRefused { error: openp2p_core::SendError::DelimiterInPayload, data, .. } if data == "bad\0"
    )));
    assert_eq!(engine.global_stats().accept_errors, 1);
    assert_eq!(engine.stats(peer).unwrap().queued, 5);
}

#[test]
fn write_at_most_offers_no_more_than_its_limit_across_queued_messages() {
    let now = Instant::now();
    let mut engine = Engine::new(Config::default()).unwrap();
    let listener = engine.listen("127.0.0.1:1".parse().unwrap()).unwrap();
    engine.handle_listening(listener, "127.0.0.1:1".parse().unwrap(), now);
    let peer = engine
        .handle_accepted(listener, "10.0.0.1:5".parse().unwrap(), now)
        .unwrap();
    for part in ["abc", "defg", "hij"] {
        engine.send(peer, part.into(), now).unwrap();
    }
    let mut wire = Vec::new();
    let mut write = |engine: &mut Engine, limit| {
        engine.write_at_most(peer, now, limit, |slices| {
            let n: usize = slices.iter().map(|s| s.len()).sum();
            slices.iter().for_each(|s| wire.extend_from_slice(s));
            Ok(n)
        })
    };
    assert_eq!(write(&mut engine, 5), Transfer::Moved(5));
    assert_eq!(write(&mut engine, 0), Transfer::Paused);
    assert_eq!(write(&mut engine, 100), Transfer::Moved(5));
    assert_eq!(wire, b"abcdefghij");
}

#[test]
fn a_peers_limits_read_back_as_configured_and_as_changed() {
    use openp2p_core::{Limits, Rate};
    let now = Instant::now();
    let configured = Limits {
        upload: Some(Rate::per_second(64 * 1024).with_burst(3000)),
        download: None,
    };
    let mut engine = Engine::new(Config {
        peer_limits: configured,
        ..Config::default()
    })
    .unwrap();
    let peer = engine
        .connect("127.0.0.1:7000".parse().unwrap(), now)
        .unwrap();
    assert_eq!(engine.peer(peer).unwrap().limits, configured);

    let changed = Limits {
        upload: None,
        download: Some(Rate::per_second(1000)),
    };
    engine.set_limits(peer, changed, now).unwrap();
    assert_eq!(engine.peer(peer).unwrap().limits, changed);
    engine.set_limits(peer, Limits::UNLIMITED, now).unwrap();
    assert_eq!(engine.peer(peer).unwrap().limits, Limits::UNLIMITED);
}
