//! The secure-channel harnesses: a secure engine's handshake fed arbitrary bytes
//! ([`secure_handshake`]), and an honest sender's encrypted stream tampered with on its way to
//! the receiver ([`secure_stream`]).
//!
//! Both keep each input cheap: the identities are built once per process, pools are the smallest
//! a secure engine accepts (two to four segments of
//! [`MIN_SECURE_SEGMENT_SIZE`](crate::MIN_SECURE_SEGMENT_SIZE)), and no work is done that the
//! input does not ask for. The only fixed cost is the X25519 arithmetic of the handshakes.

mod handshake;
mod stream;

pub use handshake::secure_handshake;
pub use stream::secure_stream;

use crate::{Config, Engine, Framing, Identity, PeerId, SecureConfig, Suite, Transfer};
use core::net::{Ipv4Addr, SocketAddr};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The node under test, the honest remote, and a third key nobody uses (for pins and allowlists
/// that must refuse).
struct Keys {
    local: Identity,
    remote: Identity,
    stranger: Identity,
}

/// The identities, derived once per process (each costs a base-point multiplication).
fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| Keys {
        local: Identity::from_entropy([0x4c; 32]),
        remote: Identity::from_entropy([0x52; 32]),
        stranger: Identity::from_entropy([0x53; 32]),
    })
}

/// A secure configuration with the smallest pool the harnesses need.
fn secure_config(identity: &Identity, suite: Suite, framing: Framing, segments: usize) -> Config {
    Config {
        framing,
        segment_size: crate::MIN_SECURE_SEGMENT_SIZE,
        pool_segments: segments,
        secure: Some(SecureConfig {
            suite,
            ..SecureConfig::new(identity.clone())
        }),
        ..Config::default()
    }
}

/// The listener's address and the dialer's.
fn listen_addr() -> SocketAddr {
    SocketAddr::new(Ipv4Addr::new(10, 0, 0, 2).into(), 4000)
}
fn dial_addr() -> SocketAddr {
    SocketAddr::new(Ipv4Addr::new(10, 0, 0, 1).into(), 5000)
}

/// The instant `offset` nanoseconds after `base`.
fn at(base: Instant, offset: u64) -> Instant {
    base + Duration::from_nanos(offset)
}

/// Appends everything `engine` writes to `peer` now to `out`; returns how many bytes. Caps the
/// rounds, so a write path that never stops is a failure, not a hang.
fn take_output(engine: &mut Engine, peer: PeerId, now: Instant, out: &mut Vec<u8>) -> usize {
    let before = out.len();
    for _ in 0..4_096 {
        let moved = engine.write_to(peer, now, |slices| {
            let n: usize = slices.iter().map(|s| s.len()).sum();
            slices.iter().for_each(|s| out.extend_from_slice(s));
            Ok(n)
        });
        match moved {
            Transfer::Moved(0) | Transfer::WouldBlock | Transfer::Paused | Transfer::Closed => {
                return out.len() - before
            }
            Transfer::Moved(_) => {}
        }
    }
    panic!("the write path never ran dry");
}

/// One socket read of at most `bytes.len()` (non-zero) bytes into `peer`, through `read_from`
/// or (when `buf` is set) `read_buf_from`: what the engine answered, and how many bytes it took
/// (also when it answers `Closed` because those bytes ended the peer).
fn read_once(
    engine: &mut Engine,
    peer: PeerId,
    now: Instant,
    bytes: &[u8],
    buf: bool,
) -> (Transfer, usize) {
    let mut took = 0;
    let answer = if buf {
        engine.read_buf_from(peer, now, |dst| {
            took = bytes.len().min(bytes::BufMut::remaining_mut(dst));
            bytes::BufMut::put_slice(dst, &bytes[..took]);
            Ok(took)
        })
    } else {
        engine.read_from(peer, now, |dst| {
            took = bytes.len().min(dst.len());
            dst[..took].copy_from_slice(&bytes[..took]);
            Ok(took)
        })
    };
    if let Transfer::Moved(n) = answer {
        assert_eq!(n, took, "the engine miscounted a read");
    }
    (answer, took)
}

/// [`Engine::check_invariants`], with the harness's name in the failure.
fn check_invariants(engine: &Engine, who: &str) {
    if let Err(e) = engine.check_invariants() {
        panic!("{who} invariant broken: {e}");
    }
}
