//! Secure channels over loopback: pinned dials. Every scenario runs on both Tokio runtime flavours.

#[macro_use]
mod common;

use bytes::Bytes;
use common::*;
use openp2p_tokio::{
    Config, ConnectFailure, Event, Framing, HandshakeFailure, Identity, Node, PeerKey, SecureConfig,
};

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
async fn pinned_dial_to_the_right_key_connects_and_carries_both_keys() {
    let (listener_config, listener_key) = secure_config();
    let (dialer_config, dialer_key) = secure_config();
    let (listener, addr) = listening(listener_config).await;
    let dialer = Node::start(dialer_config).expect("valid config");

    let peer = dialer
        .connect_pinned(addr, listener_key)
        .await
        .expect("connect accepted");
    let seen_by_dialer = wait_for(&dialer, |e| match e {
        Event::Connected { peer: p, key, .. } if p == peer => Some(key),
        Event::ConnectFailed { reason, .. } => panic!("pinned dial failed: {reason:?}"),
        _ => None,
    })
    .await;
    assert_eq!(seen_by_dialer, Some(listener_key));
    let (remote, seen_by_listener) = wait_for(&listener, |e| match e {
        Event::Connected { peer, key, .. } => Some((peer, key)),
        _ => None,
    })
    .await;
    assert_eq!(seen_by_listener, Some(dialer_key));

    dialer
        .send(peer, Bytes::from_static(b"hello"))
        .await
        .expect("queued");
    let got = wait_for(&listener, |e| match e {
        Event::Received { peer, data } if peer == remote => Some(data),
        _ => None,
    })
    .await;
    assert_eq!(&got[..], b"hello");
    dialer.shutdown().await;
    listener.shutdown().await;
}

/// A dial pinned to a key the listener does not hold fails with `KeyMismatch` naming both keys;
/// the listener sees a failed handshake and never a peer.
async fn pinned_dial_to_a_wrong_key_fails_with_key_mismatch() {
    let (listener_config, listener_key) = secure_config();
    let (dialer_config, _) = secure_config();
    let (listener, addr) = listening(listener_config).await;
    let dialer = Node::start(dialer_config).expect("valid config");
    let wrong = Identity::generate().expect("OS entropy").public();

    let peer = dialer
        .connect_pinned(addr, wrong)
        .await
        .expect("connect accepted");
    let reason = wait_for(&dialer, |e| match e {
        Event::ConnectFailed {
            peer: p, reason, ..
        } if p == peer => Some(reason),
        Event::Connected { .. } => panic!("a pinned dial to the wrong key connected"),
        _ => None,
    })
    .await;
    assert_eq!(
        reason,
        ConnectFailure::Handshake(HandshakeFailure::KeyMismatch {
            expected: wrong,
            actual: listener_key,
        })
    );
    wait_for(&listener, |e| match e {
        Event::HandshakeFailed { .. } => Some(()),
        Event::Connected { .. } => panic!("the listener accepted a peer"),
        _ => None,
    })
    .await;
    dialer.shutdown().await;
    listener.shutdown().await;
}

on_both_flavours!(
    pinned_dial_to_the_right_key_connects_and_carries_both_keys,
    pinned_dial_to_a_wrong_key_fails_with_key_mismatch,
);
