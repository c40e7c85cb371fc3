//! Scenario 1 (and 11a): listen, connect, send, receive, disconnect; events paired and ordered.

use crate::harness::{identity, v4, v6, Harness, TestNode, PATIENCE};
use openp2p_core::{
    Config, Direction, DisconnectReason, Event, Framing, PeerId, PeerKey, SecureConfig,
};
use std::net::SocketAddr;

/// Takes events from `node` until `done` accepts one; returns them all, in order, without the
/// `Sent` events (whose byte counts are summed into the second value).
fn take_until<N: TestNode>(node: &N, done: impl Fn(&Event) -> bool) -> (Vec<Event>, usize) {
    let mut events = Vec::new();
    let mut sent = 0;
    let deadline = node.now() + PATIENCE;
    loop {
        let left = deadline.saturating_duration_since(node.now());
        let event = node
            .next_event(left)
            .unwrap_or_else(|| panic!("timed out; events so far: {events:?}"));
        let last = done(&event);
        match event {
            Event::Sent { bytes, .. } => sent += bytes,
            other => events.push(other),
        }
        if last {
            return (events, sent);
        }
    }
}

/// Listen, connect, a message each way, a graceful disconnect: on each node the events are
/// exactly, in order, `Listening` (server), `Connected`, `Received`, `Disconnected` (reason
/// `Local` at the closing side, `Remote` at the other, nothing unsent), and every `Sent` falls
/// between `Connected` and `Disconnected` and adds up to the framed bytes. In secure mode each
/// side's `Connected` carries the other's key (`None` in plaintext).
pub fn lifecycle<H: Harness>(h: &mut H) {
    run(h, v4());
}

/// [`lifecycle`] on the IPv6 loopback `::1`.
pub fn lifecycle_ipv6<H: Harness>(h: &mut H) {
    run(h, v6());
}

fn run<H: Harness>(h: &mut H, bind: SocketAddr) {
    let config = Config {
        framing: Framing::LengthPrefixed,
        ..Config::default()
    };
    // In secure mode the scenario picks the identities, so it knows which key each side must see.
    let keyed = |n: u64| -> (Config, Option<PeerKey>) {
        if !h.is_secure() {
            return (config.clone(), None);
        }
        let id = identity(n);
        let key = id.public();
        let secure = Some(SecureConfig::new(id));
        (
            Config {
                secure,
                ..config.clone()
            },
            Some(key),
        )
    };
    let ((server_config, server_key), (client_config, client_key)) = (keyed(1), keyed(2));
    let server = h.start(server_config);
    let addr = server.listen(bind);
    assert_eq!(
        addr.ip(),
        server_ip(h, bind, addr),
        "{}: bound address",
        h.name()
    );
    assert_ne!(addr.port(), 0, "{}: a port was chosen", h.name());
    let client = h.start(client_config);
    let c_peer = client.connect(addr).expect("connect accepted");

    let (events, sent) = take_until(&client, |e| matches!(e, Event::Connected { .. }));
    assert_eq!(sent, 0, "{}: Sent before Connected", h.name());
    assert!(
        matches!(events[..], [Event::Connected { peer, addr: a, direction: Direction::Outbound, key }]
            if peer == c_peer && a == addr && key == server_key),
        "{}: client events {events:?}",
        h.name()
    );
    let (events, sent) = take_until(&server, |e| matches!(e, Event::Connected { .. }));
    assert_eq!(sent, 0, "{}: Sent before Connected", h.name());
    let s_peer = match events[..] {
        [Event::Listening { addr: a, .. }, Event::Connected {
            peer,
            addr: remote,
            direction: Direction::Inbound,
            key,
        }] if a == addr && key == client_key => {
            if !h.is_virtual() {
                // The simulated network gives every host an IPv4 address of its own.
                assert_eq!(
                    remote.is_ipv6(),
                    addr.is_ipv6(),
                    "{}: remote family",
                    h.name()
                );
            }
            peer
        }
        _ => panic!("{}: server events {events:?}", h.name()),
    };

    client.send(c_peer, "hello".into()).expect("send accepted");
    let (events, mut s_sent) = take_until(&server, |e| matches!(e, Event::Received { .. }));
    assert_eq!(
        events,
        [Event::Received {
            peer: s_peer,
            data: "hello".into()
        }],
        "{}",
        h.name()
    );
    server.send(s_peer, "world!".into()).expect("send accepted");
    let (events, mut c_sent) = take_until(&client, |e| matches!(e, Event::Received { .. }));
    assert_eq!(
        events,
        [Event::Received {
            peer: c_peer,
            data: "world!".into()
        }],
        "{}",
        h.name()
    );

    client.disconnect(c_peer);
    let ends = |peer: PeerId| move |e: &Event| matches!(e, Event::Disconnected { peer: p, .. } if *p == peer);
    let (events, sent) = take_until(&client, ends(c_peer));
    c_sent += sent;
    assert_eq!(
        events,
        [Event::Disconnected {
            peer: c_peer,
            reason: DisconnectReason::Local,
            unsent: 0
        }],
        "{}: client",
        h.name()
    );
    let (events, sent) = take_until(&server, ends(s_peer));
    s_sent += sent;
    assert_eq!(
        events,
        [Event::Disconnected {
            peer: s_peer,
            reason: DisconnectReason::Remote,
            unsent: 0
        }],
        "{}: server",
        h.name()
    );
    // `Sent` reports the framed bytes: 4-byte prefix + payload (all of it before Disconnected).
    assert_eq!(c_sent, 4 + 5, "{}: client Sent total", h.name());
    assert_eq!(s_sent, 4 + 6, "{}: server Sent total", h.name());

    // The dead id is refused from now on, on both sides.
    assert!(client.send(c_peer, "late".into()).is_err(), "{}", h.name());
    assert!(server.send(s_peer, "late".into()).is_err(), "{}", h.name());

    let tail = client.shutdown();
    assert_eq!(
        tail,
        [Event::ShutdownComplete],
        "{}: client shutdown",
        h.name()
    );
    let tail = server.shutdown();
    assert_eq!(
        tail,
        [Event::ShutdownComplete],
        "{}: server shutdown",
        h.name()
    );
}

/// The address a listener on `bind` is expected to report: the simulated network gives each
/// host its own IPv4 address.
fn server_ip<H: Harness>(h: &H, bind: SocketAddr, got: SocketAddr) -> std::net::IpAddr {
    if h.is_virtual() && bind.is_ipv4() {
        got.ip()
    } else {
        bind.ip()
    }
}
