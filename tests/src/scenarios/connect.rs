//! Scenario 8: a connect refused, and (on the simulated network) a connect timing out.

use crate::harness::{expect, Harness, SimHarness, TestNode};
use openp2p_core::{Bytes, Config, ConnectFailure, Event, SendError};
use std::net::SocketAddr;
use std::time::Duration;

/// A connect to an address where nothing listens yields exactly one
/// `ConnectFailed { Refused, unsent: 0 }` for the address tried; the id is dead afterwards.
pub fn connect_refused<H: Harness>(h: &mut H) {
    let name = h.name();
    let addr = h.closed_addr();
    let node = h.start(Config::default());
    let peer = node.connect(addr).expect("connect accepted");
    let (reason, unsent, at) = expect(&node, "ConnectFailed", |e| match e {
        Event::ConnectFailed {
            peer: p,
            addr,
            reason,
            unsent,
        } if *p == peer => Some((*reason, *unsent, *addr)),
        Event::Connected { .. } => panic!("{name}: connected to a closed port"),
        _ => None,
    });
    assert_eq!(reason, ConnectFailure::Refused, "{name}");
    assert_eq!(unsent, 0, "{name}: nothing was queued");
    assert_eq!(at, addr, "{name}: the address tried");
    assert!(
        node.send(peer, "late".into()).is_err(),
        "{name}: a dead id accepts sends"
    );
    assert_eq!(node.global_stats().failed_connects, 1, "{name}");
    assert_eq!(node.shutdown(), [Event::ShutdownComplete], "{name}");
}

/// A message sent while a connect is still in flight, then refused: every byte `send` accepted
/// is accounted for, as `ConnectFailed::unsent` or handed back as `SendRefused`. (On a real
/// loopback the refusal may come before the send; `send` then answers `UnknownPeer`.)
pub fn connect_refused_queued<H: Harness>(h: &mut H) {
    let name = h.name();
    let addr = h.closed_addr();
    let node = h.start(Config::default());
    let peer = node.connect(addr).expect("connect accepted");
    let queued = match node.send(peer, Bytes::from_static(b"queued while connecting")) {
        Ok(()) => 23,
        Err(SendError::UnknownPeer) if !h.is_virtual() => 0,
        Err(e) => panic!("{name}: send while connecting: {e:?}"),
    };
    let unsent = expect(&node, "ConnectFailed", |e| match e {
        Event::ConnectFailed {
            peer: p,
            reason,
            unsent,
            ..
        } if *p == peer => {
            assert_eq!(*reason, ConnectFailure::Refused, "{name}");
            Some(*unsent)
        }
        _ => None,
    });
    let mut refused = 0;
    for event in node.shutdown() {
        if let Event::SendRefused { peer: p, data, .. } = event {
            assert_eq!(p, peer, "{name}: a refusal for another peer");
            refused += data.len() as u64;
        }
    }
    assert_eq!(
        unsent + refused,
        queued,
        "{name}: accepted bytes = unsent ({unsent}) + handed back ({refused})"
    );
}

/// On the simulated network a connect to a host that never answers fails with `TimedOut`
/// exactly `connect_timeout` (2 s of virtual time) after it started.
pub fn connect_timeout(h: &mut SimHarness) {
    let silent: SocketAddr = "10.0.9.9:4000".parse().expect("a literal address");
    h.blackhole(silent);
    let timeout = Duration::from_secs(2);
    let node = h.start(Config {
        connect_timeout: timeout,
        ..Config::default()
    });
    let start = h.elapsed();
    let peer = node.connect(silent).expect("connect accepted");
    let reason = expect(&node, "ConnectFailed", |e| match e {
        Event::ConnectFailed {
            peer: p, reason, ..
        } if *p == peer => Some(*reason),
        _ => None,
    });
    let took = h.elapsed() - start;
    assert_eq!(reason, ConnectFailure::TimedOut);
    assert!(
        took >= timeout && took <= timeout + Duration::from_millis(1),
        "timed out after {took:?}, configured {timeout:?}"
    );
    assert_eq!(node.shutdown(), [Event::ShutdownComplete]);
}
