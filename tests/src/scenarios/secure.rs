//! Secure channels between nodes of one harness: pinned dials and allowlists, on both sides.

use super::{inbound_connected, outbound_connected};
use crate::harness::{expect, identity, v4, Harness, TestNode};
use openp2p_core::{
    Allow, Config, ConnectFailure, DisconnectReason, Event, Framing, HandshakeFailure, PeerId,
    PeerKey, SecureConfig,
};

/// A secure node config with identity number `n` (and its key), `LengthPrefixed` framing.
pub(crate) fn keyed(n: u64) -> (Config, PeerKey) {
    let id = identity(n);
    let key = id.public();
    let config = Config {
        framing: Framing::LengthPrefixed,
        secure: Some(SecureConfig::new(id)),
        ..Config::default()
    };
    (config, key)
}

/// `config` admitting only `keys`.
fn allowing(mut config: Config, keys: &[PeerKey]) -> Config {
    if let Some(secure) = &mut config.secure {
        secure.allow = Allow::Only(keys.iter().copied().collect());
    }
    config
}

/// The failure of the outbound `peer`'s connect; panics on `Connected`.
fn connect_failure<N: TestNode>(node: &N, peer: PeerId, name: &str) -> ConnectFailure {
    expect(node, "ConnectFailed", |e| match e {
        Event::ConnectFailed {
            peer: p, reason, ..
        } if *p == peer => Some(*reason),
        Event::Connected { peer: p, key, .. } if *p == peer => {
            panic!("{name}: connected (key {key:?}) where the handshake must fail")
        }
        _ => None,
    })
}

/// The next `HandshakeFailed` reason on a listening node; panics on any `Connected`.
fn handshake_failed<N: TestNode>(node: &N, name: &str) -> HandshakeFailure {
    expect(node, "HandshakeFailed", |e| match e {
        Event::HandshakeFailed { reason, .. } => Some(*reason),
        Event::Connected { peer, key, .. } => {
            panic!("{name}: the listener connected {peer} (key {key:?})")
        }
        _ => None,
    })
}

/// A dial pinned to the listener's key connects; each side's `Connected` carries the other's
/// key, and a message crosses each way.
pub fn pinned_key_matches<H: Harness>(h: &mut H) {
    let name = h.name();
    let (server_config, server_key) = keyed(1);
    let (client_config, client_key) = keyed(2);
    let server = h.start(server_config);
    let addr = server.listen(v4());
    let client = h.start(client_config);
    let c = client
        .connect_pinned(addr, server_key)
        .expect("connect accepted");
    let key = expect(&client, "Connected", |e| match e {
        Event::Connected { peer, key, .. } if *peer == c => Some(*key),
        Event::ConnectFailed { reason, .. } => panic!("{name}: pinned connect failed: {reason:?}"),
        _ => None,
    });
    assert_eq!(key, Some(server_key), "{name}: the dialer's view");
    let key = expect(&server, "Connected", |e| match e {
        Event::Connected { key, .. } => Some(*key),
        _ => None,
    });
    assert_eq!(key, Some(client_key), "{name}: the listener's view");
    let s = server.global_stats();
    assert_eq!((s.peers, s.handshake_failures), (1, 0), "{name}");
    exchange(name, &server, &client, c);
    drop(client.shutdown());
    drop(server.shutdown());
}

/// One message each way between a connected client peer `c` and the server's only peer.
fn exchange<N: TestNode>(name: &str, server: &N, client: &N, c: PeerId) -> PeerId {
    client
        .send(c, "pinned hello".into())
        .expect("send accepted");
    let s = expect(server, "the client's message", |e| match e {
        Event::Received { peer, data } => {
            assert_eq!(data, "pinned hello", "{name}");
            Some(*peer)
        }
        _ => None,
    });
    server
        .send(s, "pinned reply".into())
        .expect("send accepted");
    expect(client, "the server's reply", |e| match e {
        Event::Received { peer, data } if *peer == c => {
            assert_eq!(data, "pinned reply", "{name}");
            Some(())
        }
        _ => None,
    });
    s
}

/// A dial pinned to another key fails with `KeyMismatch { expected, actual }` carrying both
/// keys; the listener never reports `Connected` (its half-done handshake fails, `Closed`), and
/// both slots are free again.
pub fn pinned_key_mismatch<H: Harness>(h: &mut H) {
    let name = h.name();
    let (server_config, server_key) = keyed(1);
    let (client_config, _) = keyed(2);
    let wrong = identity(9).public();
    let server = h.start(server_config);
    let addr = server.listen(v4());
    let client = h.start(client_config);
    let c = client
        .connect_pinned(addr, wrong)
        .expect("connect accepted");
    assert_eq!(
        connect_failure(&client, c, name),
        ConnectFailure::Handshake(HandshakeFailure::KeyMismatch {
            expected: wrong,
            actual: server_key
        }),
        "{name}"
    );
    assert_eq!(
        handshake_failed(&server, name),
        HandshakeFailure::Closed,
        "{name}: the listener's side"
    );
    let (s, cl) = (server.global_stats(), client.global_stats());
    assert_eq!((s.peers, s.handshake_failures), (0, 1), "{name}: listener");
    assert_eq!((cl.peers, cl.failed_connects), (0, 1), "{name}: dialer");
    // An unpinned dial to the same listener still connects.
    let c = client.connect(addr).expect("connect accepted");
    outbound_connected(&client, c);
    inbound_connected(&server);
    drop(client.shutdown());
    drop(server.shutdown());
}

/// A listener whose allowlist lacks the dialer's key: `HandshakeFailed { NotAllowed { key } }`
/// with the dialer's key on the listener, `handshake_failures == 1`, its slot free; an allowed
/// dialer connects afterwards.
///
/// The dialer's view: in Noise XX the initiator proves its key in the last handshake message,
/// after which its handshake is complete; the listener's verdict comes later. So the dialer
/// either fails its connect or reports `Connected` and then loses the connection (`Remote` or
/// `Io`), and nothing it sends reaches the listener's application.
pub fn allowlist_refused_by_listener<H: Harness>(h: &mut H) {
    let name = h.name();
    let (server_config, _) = keyed(1);
    let (client_config, client_key) = keyed(2);
    let (friend_config, friend_key) = keyed(3);
    let server = h.start(allowing(server_config, &[friend_key]));
    let addr = server.listen(v4());
    let client = h.start(client_config);
    let c = client.connect(addr).expect("connect accepted");
    assert_eq!(
        handshake_failed(&server, name),
        HandshakeFailure::NotAllowed { key: client_key },
        "{name}: the listener's verdict"
    );
    let s = server.global_stats();
    assert_eq!((s.peers, s.handshake_failures), (0, 1), "{name}: listener");
    let ended = expect(&client, "the dialer's end", |e| match e {
        Event::ConnectFailed { peer, reason, .. } if *peer == c => {
            Some(format!("ConnectFailed({reason:?})"))
        }
        Event::Connected { peer, .. } if *peer == c => {
            // Sent after the listener's verdict: it must never be delivered.
            let _ = client.send(c, "refused".into());
            None
        }
        Event::Disconnected { peer, reason, .. } if *peer == c => {
            assert!(
                matches!(reason, DisconnectReason::Remote | DisconnectReason::Io(_)),
                "{name}: the dialer saw {reason:?}"
            );
            Some(format!("Disconnected({reason:?})"))
        }
        _ => None,
    });
    println!("{name}: the refused dialer saw {ended}");
    assert_eq!(client.global_stats().peers, 0, "{name}: dialer");
    let friend = h.start(friend_config);
    let f = friend.connect(addr).expect("connect accepted");
    outbound_connected(&friend, f);
    let at_server = expect(&server, "the friend's Connected", |e| match e {
        Event::Connected { peer, key, .. } => {
            assert_eq!(*key, Some(friend_key), "{name}: only the friend connects");
            Some(*peer)
        }
        Event::Received { peer, data } => {
            panic!("{name}: {peer} delivered {data:?} from a refused dialer")
        }
        _ => None,
    });
    friend.send(f, "friend".into()).expect("send accepted");
    let got = expect(&server, "the friend's message", |e| match e {
        Event::Received { peer, data } => Some((*peer, data.clone())),
        _ => None,
    });
    assert_eq!(
        got,
        (at_server, "friend".into()),
        "{name}: the only message delivered"
    );
    drop(friend.shutdown());
    drop(client.shutdown());
    drop(server.shutdown());
}

/// A dialer whose allowlist lacks the listener's key: `ConnectFailed` with
/// `Handshake(NotAllowed { key })` carrying the listener's key; the listener never reports
/// `Connected` and frees its slot.
pub fn allowlist_refused_by_dialer<H: Harness>(h: &mut H) {
    let name = h.name();
    let (server_config, server_key) = keyed(1);
    let (client_config, _) = keyed(2);
    let server = h.start(server_config);
    let addr = server.listen(v4());
    let client = h.start(allowing(client_config, &[identity(9).public()]));
    let c = client.connect(addr).expect("connect accepted");
    assert_eq!(
        connect_failure(&client, c, name),
        ConnectFailure::Handshake(HandshakeFailure::NotAllowed { key: server_key }),
        "{name}"
    );
    let reason = handshake_failed(&server, name);
    assert_eq!(
        reason,
        HandshakeFailure::Closed,
        "{name}: the listener's side"
    );
    assert_eq!(server.global_stats().peers, 0, "{name}: listener");
    let cl = client.global_stats();
    assert_eq!((cl.peers, cl.failed_connects), (0, 1), "{name}: dialer");
    drop(client.shutdown());
    drop(server.shutdown());
}
