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
