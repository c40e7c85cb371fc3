//! Secure channels over loopback: pinned dials, under async-std and smol.

mod common;

use common::{expect, within};
use openp2p_async_std::{
    Config, ConnectFailure, Event, Framing, HandshakeFailure, Identity, Node, PeerKey, SecureConfig,
};
use std::net::SocketAddr;

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().expect("loopback address")
}

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

/// A dial pinned to the listener's key connects; each side's `Connected` carries the other's
/// key, and a framed message crosses intact.
async fn pinned_dial_to_the_right_key_connects_and_carries_both_keys(start: fn(Config) -> Node) {
    let (listener_config, listener_key) = secure_config();
    let (dialer_config, dialer_key) = secure_config();
    let listener = start(listener_config);
    let addr = within("listen", listener.listen(loopback()))
        .await
        .expect("bind loopback");
    let dialer = start(dialer_config);

    let peer = within("connect_pinned", dialer.connect_pinned(addr, listener_key))
        .await
        .expect("connect accepted");
    let outcome = expect(&dialer, "the dial's outcome", |e| e.peer() == Some(peer)).await;
    let Event::Connected { key, .. } = outcome else {
        panic!("pinned dial failed: {outcome:?}")
    };
    assert_eq!(key, Some(listener_key));
    let Event::Connected {
        peer: remote, key, ..
    } = expect(&listener, "listener Connected", |e| {
        matches!(e, Event::Connected { .. })
    })
    .await
    else {
        unreachable!("matched Connected")
    };
    assert_eq!(key, Some(dialer_key));

    within("send", dialer.send(peer, "hello".into()))
        .await
        .expect("queued");
    let received = expect(
        &listener,
        "the message",
        |e| matches!(e, Event::Received { peer, .. } if *peer == remote),
    )
    .await;
    let Event::Received { data, .. } = received else {
        unreachable!("matched Received")
    };
    assert_eq!(&data[..], b"hello");
    dialer.shutdown().await;
    listener.shutdown().await;
}

/// A dial pinned to a key the listener does not hold fails with `KeyMismatch` naming both keys;
/// the listener sees a failed handshake and never a peer.
async fn pinned_dial_to_a_wrong_key_fails_with_key_mismatch(start: fn(Config) -> Node) {
    let (listener_config, listener_key) = secure_config();
    let (dialer_config, _) = secure_config();
    let listener = start(listener_config);
    let addr = within("listen", listener.listen(loopback()))
        .await
        .expect("bind loopback");
    let dialer = start(dialer_config);
    let wrong = Identity::generate().expect("OS entropy").public();

    let peer = within("connect_pinned", dialer.connect_pinned(addr, wrong))
        .await
        .expect("connect accepted");
    let outcome = expect(&dialer, "the dial's outcome", |e| e.peer() == Some(peer)).await;
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
    let failed = expect(&listener, "the listener's handshake outcome", |e| {
        matches!(e, Event::HandshakeFailed { .. } | Event::Connected { .. })
    })
    .await;
    assert!(
        matches!(failed, Event::HandshakeFailed { .. }),
        "the listener accepted a peer: {failed:?}"
    );
    dialer.shutdown().await;
    listener.shutdown().await;
}

on_both_runtimes!(
    pinned_dial_to_the_right_key_connects_and_carries_both_keys,
    pinned_dial_to_a_wrong_key_fails_with_key_mismatch,
);
