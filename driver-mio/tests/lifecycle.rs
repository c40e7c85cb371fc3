//! A node's whole life over loopback: listen, connect, exchange, statistics, disconnect,
//! shutdown; and the failure paths of each command.

mod common;

use common::expect;
use openp2p_mio::{
    BindError, Config, ConnectFailure, DialError, Direction, DisconnectReason, Event, Node, PeerId,
    SendError, SendWaitError, Stopped, TryRecvError,
};
use std::net::SocketAddr;

fn lifecycle(bind: &str) {
    let bind: SocketAddr = bind.parse().expect("test address");
    let (server, mut server_events) = Node::start(Config::default()).expect("server starts");
    let addr = match server.listen(bind) {
        Ok(addr) => addr,
        Err(BindError::Io { kind, .. }) if bind.is_ipv6() => {
            eprintln!("skipped: IPv6 loopback unavailable here ({kind})");
            return;
        }
        Err(e) => panic!("listen: {e}"),
    };
    assert_ne!(addr.port(), 0, "port 0 is replaced by the bound port");
    assert_eq!(addr.ip(), bind.ip());
    let listening = expect(&mut server_events, "Listening", |e| {
        matches!(e, Event::Listening { .. })
    });
    assert!(matches!(listening, Event::Listening { addr: a, .. } if a == addr));

    let (client, mut client_events) = Node::start(Config::default()).expect("client starts");
    let peer = client.connect(addr).expect("connect starts");
    let connected = expect(&mut client_events, "client Connected", |e| {
        e.peer() == Some(peer)
    });
    assert!(matches!(
        connected,
        Event::Connected { direction: Direction::Outbound, addr: a, .. } if a == addr
    ));
    let Event::Connected {
        peer: remote,
        direction: Direction::Inbound,
        ..
    } = expect(&mut server_events, "server Connected", |e| {
        matches!(e, Event::Connected { .. })
    })
    else {
        unreachable!("matched Connected")
    };

    client.send(peer, "ping").expect("send");
    let got = collect(&mut server_events, remote, 4);
    assert_eq!(got, b"ping");
    server.send(remote, "pong!").expect("send");
    assert_eq!(collect(&mut client_events, peer, 5), b"pong!");

    let stats = server
        .stats(remote)
        .expect("running")
        .expect("peer is live");
    assert_eq!(stats.received.bytes, 4);
    let global = client.global_stats().expect("running");
    assert_eq!(global.peers, 1);
    assert_eq!(global.outbound_connections, 1);
    let info = client.peer(peer).expect("running").expect("peer is live");
    assert_eq!(info.addr, addr);

    // An idle node sleeps: a connected, quiet peer costs no wake-ups.
    let before = client.driver_stats().expect("running").wakeups;
    assert_eq!(
        client_events.recv_timeout(std::time::Duration::from_millis(200)),
        Err(openp2p_mio::RecvTimeoutError::Timeout)
    );
    let idle = client.driver_stats().expect("running").wakeups - before;
    assert!(idle <= 3, "{idle} wake-ups while idle");

    client.disconnect(peer).expect("disconnect");
    let gone = expect(&mut client_events, "client Disconnected", |e| {
        matches!(e, Event::Disconnected { .. })
    });
    assert_eq!(
        gone,
        Event::Disconnected {
            peer,
            reason: DisconnectReason::Local,
            unsent: 0
        }
    );
    let gone = expect(&mut server_events, "server Disconnected", |e| {
        matches!(e, Event::Disconnected { .. })
    });
    assert_eq!(
        gone,
        Event::Disconnected {
            peer: remote,
            reason: DisconnectReason::Remote,
            unsent: 0
        }
    );
    assert_eq!(client.stats(peer), Ok(None), "a stale id has no statistics");

    client.shutdown();
    expect(&mut client_events, "ShutdownComplete", |e| {
        *e == Event::ShutdownComplete
    });
    assert_eq!(
        client_events.recv(),
        Err(Stopped),
        "the queue ends after the node stops"
    );
    assert_eq!(client.send(peer, "late"), Err(Stopped));
    assert_eq!(client.connect(addr), Err(DialError::Stopped));
    server.shutdown();
    expect(&mut server_events, "ShutdownComplete", |e| {
        *e == Event::ShutdownComplete
    });
}

/// Concatenates `peer`'s received chunks until `len` bytes arrived.
fn collect(events: &mut openp2p_mio::Events, peer: PeerId, len: usize) -> Vec<u8> {
    let mut got = Vec::new();
    while got.len() < len {
        if let Event::Received { data, .. } = expect(
            events,
            "Received",
            |e| matches!(e, Event::Received { peer: p, .. } if *p == peer),
        ) {
            got.extend_from_slice(&data);
        }
    }
    got
}

#[test]
fn full_lifecycle_over_ipv4() {
    lifecycle("127.0.0.1:0");
}

#[test]
fn full_lifecycle_over_ipv6() {
    lifecycle("[::1]:0");
}

#[test]
fn connect_to_a_closed_port_yields_connect_failed_refused() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = closed.local_addr().expect("addr");
    drop(closed);
    let (node, mut events) = Node::start(Config::default()).expect("start");
    let peer = node.connect(addr).expect("connect starts");
    let failed = expect(&mut events, "ConnectFailed", |e| e.peer() == Some(peer));
    assert_eq!(
        failed,
        Event::ConnectFailed {
            peer,
            addr,
            reason: ConnectFailure::Refused,
            unsent: 0
        }
    );
    assert_eq!(
        node.connect_wait(addr),
        Err(DialError::Failed(ConnectFailure::Refused))
    );
    node.shutdown();
}

#[test]
fn connect_wait_returns_a_connected_peer() {
    let (server, _server_events) = Node::start(Config::default()).expect("start");
    let addr = server
        .listen("127.0.0.1:0".parse().expect("addr"))
        .expect("listen");
    let (client, mut client_events) = Node::start(Config::default()).expect("start");
    let peer = client.connect_wait(addr).expect("connects");
    assert!(matches!(
        client_events.try_recv(),
        Ok(Event::Connected { peer: p, .. }) if p == peer
    ));
    assert_eq!(client_events.try_recv(), Err(TryRecvError::Empty));
    client.shutdown();
    server.shutdown();
}

#[test]
fn listening_on_a_taken_address_reports_the_bind_error() {
    let (node, _events) = Node::start(Config::default()).expect("start");
    let addr = node
        .listen("127.0.0.1:0".parse().expect("addr"))
        .expect("listen");
    let again = node.listen(addr);
    assert_eq!(
        again,
        Err(BindError::Io {
            addr,
            kind: std::io::ErrorKind::AddrInUse
        })
    );
    node.shutdown();
    assert_eq!(node.listen(addr), Err(BindError::Stopped));
}

#[test]
fn sends_to_an_unknown_peer_are_refused_with_the_payload_returned() {
    let (server, _server_events) = Node::start(Config::default()).expect("start");
    let addr = server
        .listen("127.0.0.1:0".parse().expect("addr"))
        .expect("listen");
    let (client, mut events) = Node::start(Config::default()).expect("start");
    let peer = client.connect_wait(addr).expect("connects");
    client.abort(peer).expect("abort");
    expect(&mut events, "Disconnected", |e| {
        matches!(e, Event::Disconnected { .. })
    });

    assert_eq!(
        client.send_wait(peer, "x"),
        Err(SendWaitError::Rejected(SendError::UnknownPeer))
    );
    client
        .send(peer, "payload")
        .expect("queued for the IO thread");
    client
        .send_many(&[peer, peer], "both")
        .expect("queued for the IO thread");
    // Failures travel with the event batches: a round trip guarantees they were handed over.
    client.global_stats().expect("running");
    let mut failures = Vec::new();
    let deadline = std::time::Instant::now() + common::PATIENCE;
    while failures.len() < 3 && std::time::Instant::now() < deadline {
        match events.send_failure() {
            Some(f) => failures.push(f),
            None => std::thread::yield_now(),
        }
    }
    assert_eq!(failures.len(), 3);
    assert!(failures
        .iter()
        .all(|f| f.peer == peer && f.error == SendError::UnknownPeer));
    assert_eq!(&failures[0].data[..], b"payload");
    assert_eq!(&failures[2].data[..], b"both");
    client.shutdown();
    server.shutdown();
}

#[test]
fn dropping_every_handle_stops_the_node() {
    let (node, mut events) = Node::start(Config::default()).expect("start");
    let other = node.clone();
    drop(node);
    other
        .listen("127.0.0.1:0".parse().expect("addr"))
        .expect("still running");
    drop(other);
    expect(&mut events, "ShutdownComplete", |e| {
        *e == Event::ShutdownComplete
    });
    assert_eq!(events.recv(), Err(Stopped));
}

#[test]
fn a_panicking_query_reaches_the_caller_and_the_node_keeps_running() {
    let (node, _events) = Node::start(Config::default()).expect("start");
    let probe = node.clone();
    let caught =
        std::panic::catch_unwind(move || probe.query(|_, _| -> u32 { panic!("in query") }));
    assert!(caught.is_err(), "the panic is resumed in the caller");
    assert!(
        node.listen("127.0.0.1:0".parse().expect("addr")).is_ok(),
        "the node still runs"
    );
    node.shutdown();
}
