//! The frame harnesses: one accepted peer fed an arbitrary stream, split arbitrarily.

use super::reference::Reference;
use super::{Input, START};
use crate::{Config, DisconnectReason, Engine, Event, Framing, Transfer};
use bytes::Bytes;
use core::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

/// Feeds an arbitrary byte stream, split arbitrarily, to one accepted peer with `framing`, and
/// checks that the messages received equal a reference decode, that an oversized frame
/// disconnects with `FrameTooLarge` exactly when the reference sees it, that reading never
/// stalls once the application drops what it holds, and that spill memory stays bounded.
fn frame(data: &[u8], base: Instant, delimited: bool) {
    let mut input = Input(data);
    let max = input.pick(&[1usize, 5, 100, 511, 512, 700, 2_000, 5_000, 65_536]);
    let shape = input.u8();
    let delimiter = input.u8();
    let count = usize::from(input.u8() % 64);
    let splits = input.take(count);
    let stream = input.0;
    let framing = if delimited {
        Framing::Delimited(delimiter)
    } else {
        Framing::LengthPrefixed
    };
    let config = Config {
        framing,
        max_frame_size: max,
        segment_size: [512, 513, 640, 1_024, 4_096][usize::from(shape % 5)],
        pool_segments: 1 + usize::from((shape >> 3) & 3),
        ..Config::default()
    };
    let Ok(mut engine) = Engine::new(config.clone()) else {
        return;
    };
    let mut offset = START;
    let at = |offset: u64| base + Duration::from_nanos(offset);
    let addr = SocketAddr::new(Ipv4Addr::LOCALHOST.into(), 1);
    let Ok(listener) = engine.listen(addr) else {
        return;
    };
    let Ok(peer) = engine.handle_accepted(listener, addr, at(offset)) else {
        return;
    };
    let mut reference = Reference::new(framing, max);
    let mut held: Vec<Bytes> = Vec::new();
    let mut rest = stream;
    let mut split = 0;
    let mut closed = false;
    // Delivers the events to the reference; returns why the peer went away, if it did.
    let drain = |engine: &mut Engine, reference: &mut Reference, held: &mut Vec<Bytes>| {
        let mut gone = None;
        while let Some(event) = engine.poll_event() {
            match event {
                Event::Received { data, .. } => {
                    let expected = reference.expected.pop_front();
                    assert!(expected.as_deref() == Some(&data[..]), "message differs");
                    held.push(data);
                }
                Event::Disconnected { reason, .. } => gone = Some(reason),
                _ => {}
            }
        }
        while engine.poll_io().is_some() {}
        assert!(reference.expected.is_empty(), "messages not delivered");
        let g = engine.global_stats();
        assert!(
            g.spilled_bytes <= 2 * (max + config.segment_size + 8),
            "spill over bound"
        );
        if let Err(e) = engine.check_invariants() {
            panic!("engine invariant broken: {e}");
        }
        gone
    };
    drain(&mut engine, &mut reference, &mut held);
    let mut stalls = 0;
    while !rest.is_empty() && !closed {
        let control = splits.get(split).copied().unwrap_or(0xff);
        split += 1;
        let size = (usize::from(control & 0x7f) * 37 + 1).min(rest.len());
        let mut chunk = &rest[..size];
        rest = &rest[size..];
        while !chunk.is_empty() && !closed {
            let mut took = 0;
            let result = engine.read_from(peer, at(offset), |buf| {
                took = chunk.len().min(buf.len());
                buf[..took].copy_from_slice(&chunk[..took]);
                Ok(took)
            });
            reference.push(&chunk[..took]);
            chunk = &chunk[took..];
            if let Some(reason) = drain(&mut engine, &mut reference, &mut held) {
                let DisconnectReason::FrameTooLarge { len, .. } = reason else {
                    panic!("unexpected disconnect {reason:?}")
                };
                assert_eq!(reference.error, Some(len), "wrong oversized frame");
                closed = true;
            }
            match result {
                Transfer::Moved(_) => stalls = 0,
                Transfer::Paused => {
                    // Back-pressure: the application drops its data, time passes, reading resumes.
                    stalls += 1;
                    assert!(
                        stalls < 3,
                        "reading stalled after the application dropped its data"
                    );
                    held.clear();
                    offset += 3_000_000;
                    engine.handle_timeout(at(offset));
                }
                Transfer::Closed => assert!(closed, "read side closed without a disconnect"),
                Transfer::WouldBlock => panic!("WouldBlock from a read that succeeded"),
            }
        }
        if control & 0x80 != 0 {
            held.clear();
        }
    }
    assert!(
        closed == reference.error.is_some(),
        "oversized frame not rejected"
    );
    if closed {
        return;
    }
    // The remote closes: the peer must go away with `Remote` (after at most a pool wait).
    for _ in 0..3 {
        match engine.read_from(peer, at(offset), |_| Ok(0)) {
            Transfer::Closed => break,
            Transfer::Paused => {
                held.clear();
                offset += 3_000_000;
                engine.handle_timeout(at(offset));
            }
            other => panic!("EOF answered {other:?}"),
        }
    }
    let gone = drain(&mut engine, &mut reference, &mut held);
    assert_eq!(
        gone,
        Some(DisconnectReason::Remote),
        "EOF must close the peer"
    );
}

/// Length-prefixed framing: see `frame` for what is checked.
pub fn frame_length_prefixed(data: &[u8], base: Instant) {
    frame(data, base, false);
}

/// Delimited framing: see `frame` for what is checked.
pub fn frame_delimited(data: &[u8], base: Instant) {
    frame(data, base, true);
}
