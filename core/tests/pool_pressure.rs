//! The receive pool under pressure: no peer waits on memory only it holds, and remotes that
//! trickle partial messages cannot pin the pool.

use openp2p_core::{Config, Engine, Event, Framing, PeerId, Transfer};
use std::time::{Duration, Instant};

fn engine(config: Config, peers: usize, now: Instant) -> (Engine, Vec<PeerId>) {
    let mut engine = Engine::new(config).unwrap();
    let listener = engine.listen("127.0.0.1:1".parse().unwrap()).unwrap();
    let ids = (0..peers)
        .map(|i| {
            let remote = format!("127.0.0.{}:1", i + 2).parse().unwrap();
            engine.handle_accepted(listener, remote, now).unwrap()
        })
        .collect();
    (engine, ids)
}

fn feed(engine: &mut Engine, peer: PeerId, bytes: &[u8], now: Instant) -> Transfer {
    engine.read_from(peer, now, |buf| {
        let n = bytes.len().min(buf.len());
        buf[..n].copy_from_slice(&bytes[..n]);
        Ok(n)
    })
}

fn received(engine: &mut Engine) -> Vec<Vec<u8>> {
    while engine.poll_io().is_some() {}
    std::iter::from_fn(|| engine.poll_event())
        .filter_map(|e| match e {
            Event::Received { data, .. } => Some(data.to_vec()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_peer_that_exhausts_a_pool_of_one_segment_keeps_reading() {
    for framing in [Framing::Delimited(0), Framing::LengthPrefixed] {
        let now = Instant::now();
        let config = Config {
            framing,
            max_frame_size: 512,
            segment_size: 512,
            pool_segments: 1,
            ..Config::default()
        };
        let (mut engine, peers) = engine(config, 1, now);
        let peer = peers[0];
        // One message that fills the segment exactly, then more.
        let first: Vec<u8> = match framing {
            Framing::LengthPrefixed => [&508u32.to_be_bytes()[..], &[b'a'; 508]].concat(),
            _ => [&[b'a'; 511][..], &[0]].concat(),
        };
        assert_eq!(feed(&mut engine, peer, &first, now), Transfer::Moved(512));
        assert_eq!(
            received(&mut engine).len(),
            1,
            "{framing:?}: the first message, dropped at once"
        );
        let second: Vec<u8> = match framing {
            Framing::LengthPrefixed => [&2u32.to_be_bytes()[..], b"hi"].concat(),
            _ => b"hi\0".to_vec(),
        };
        // A partial message first, then the rest: the peer must never wait on itself.
        assert_eq!(
            feed(&mut engine, peer, &second[..1], now),
            Transfer::Moved(1),
            "{framing:?}"
        );
        assert_eq!(
            feed(&mut engine, peer, &second[1..], now),
            Transfer::Moved(second.len() - 1)
        );
        assert_eq!(received(&mut engine), vec![b"hi".to_vec()], "{framing:?}");
        engine.check_invariants().unwrap();
    }
}

#[test]
fn remotes_trickling_partial_messages_cannot_pin_the_pool() {
    let now = Instant::now();
    let config = Config {
        framing: Framing::LengthPrefixed,
        pool_segments: 2,
        ..Config::default()
    };
    let (mut engine, peers) = engine(config, 3, now);
    let (attackers, victim) = (&peers[..2], peers[2]);
    for &a in attackers {
        // One byte of a length prefix, then silence.
        assert_eq!(feed(&mut engine, a, &[0], now), Transfer::Moved(1));
        let idle = engine.read_from(a, now, |_| Err(std::io::ErrorKind::WouldBlock.into()));
        assert_eq!(idle, Transfer::WouldBlock);
    }
    assert_eq!(
        engine.pool_usage().free,
        0,
        "both segments pinned by partial prefixes"
    );
    let message = [&5u32.to_be_bytes()[..], b"hello"].concat();
    assert_eq!(feed(&mut engine, victim, &message, now), Transfer::Moved(9));
    assert_eq!(received(&mut engine), vec![b"hello".to_vec()]);
    // The attackers' partial messages were kept (outside the pool) and still complete.
    let later = now + Duration::from_millis(1);
    assert_eq!(
        feed(&mut engine, attackers[0], &[0, 0, 2, b'o', b'k'], later),
        Transfer::Moved(5)
    );
    assert_eq!(received(&mut engine), vec![b"ok".to_vec()]);
    engine.check_invariants().unwrap();
}
