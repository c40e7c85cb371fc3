//! Secure channels over loopback: pinned dials.

mod common;

use common::expect;
use openp2p_mio::{
    Config, ConnectFailure, Event, Framing, HandshakeFailure, Identity, Node, PeerKey, SecureConfig,
};
use std::net::SocketAddr;

/// A framed, secure node with a fresh identity, and its public key.
fn secure_config() -> (Config, PeerKey) {
    let identity = Identity::generate().expect("OS entropy");
    let key = identity.public();
    let config = Config {
        framing: Framing::LengthPrefixed,
        secure: Some(SecureConfig::new(identity)),
        ..Config::default()
    };
    (config, key)
}

fn localhost() -> SocketAddr {
    "127.0.0.1:0".parse().expect("a literal address")
}

/// A dial pinned to the listener's key connects; each side's `Connected` carries the other's
/// key, and a framed message crosses intact.
#[test]
fn pinned_dial_to_the_right_key_connects_and_carries_both_keys() {
    let (listener_config, listener_key) = secure_config();
    let (dialer_config, dialer_key) = secure_config();
    let (listener, mut listener_events) = Node::start(listener_config).expect("starts");
    let addr = listener.listen(localhost()).expect("bind loopback");
    let (dialer, mut dialer_events) = Node::start(dialer_config).expect("starts");

    let peer = dialer
        .connect_pinned(addr, listener_key)
        .expect("connect accepted");
    let outcome = expect(&mut dialer_events, "the dial's outcome", |e| {
        e.peer() == Some(peer)
    });
    let Event::Connected { key, .. } = outcome else {
        panic!("pinned dial failed: {outcome:?}")
    };
    assert_eq!(key, Some(listener_key));
    let Event::Connected {
        peer: remote, key, ..
    } = expect(&mut listener_events, "listener Connected", |e| {
        matches!(e, Event::Connected { .. })
    })
    else {
        unreachable!("matched Connected")
    };
    assert_eq!(key, Some(dialer_key));

    dialer.send(peer, "hello").expect("running");
    let received = expect(
        &mut listener_events,
        "the message",
        |e| matches!(e, Event::Received { peer, .. } if *peer == remote),
    );
    let Event::Received { data, .. } = received else {
        unreachable!("matched Received")
    };
    assert_eq!(&data[..], b"hello");
    dialer.shutdown();
    listener.shutdown();
}

/// A dial pinned to a key the listener does not hold fails with `KeyMismatch` naming both keys;
/// the listener sees a failed handshake and never a peer.
#[test]
fn pinned_dial_to_a_wrong_key_fails_with_key_mismatch() {
    let (listener_config, listener_key) = secure_config();
    let (dialer_config, _) = secure_config();
    let (listener, mut listener_events) = Node::start(listener_config).expect("starts");
    let addr = listener.listen(localhost()).expect("bind loopback");
    let (dialer, mut dialer_events) = Node::start(dialer_config).expect("starts");
    let wrong = Identity::generate().expect("OS entropy").public();

    let peer = dialer
        .connect_pinned(addr, wrong)
        .expect("connect accepted");
    let outcome = expect(&mut dialer_events, "the dial's outcome", |e| {
        e.peer() == Some(peer)
    });
    let Event::ConnectFailed { reason, .. } = outcome else {
        panic!("a pinned dial to the wrong key did not fail: {outcome:?}")
    };
    assert_eq!(
        reason,
        ConnectFailure::Handshake(HandshakeFailure::KeyMismatch {
            expected: wrong,
            actual: listener_key,
        })
    );
    let failed = expect(
        &mut listener_events,
        "the listener's handshake outcome",
        |e| matches!(e, Event::HandshakeFailed { .. } | Event::Connected { .. }),
    );
    assert!(
        matches!(failed, Event::HandshakeFailed { .. }),
        "the listener accepted a peer: {failed:?}"
    );
    dialer.shutdown();
    listener.shutdown();
}
