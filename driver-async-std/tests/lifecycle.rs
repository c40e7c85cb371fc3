//! A node's life over loopback, and the failure paths: listen, connect, send, receive,
//! disconnect, shutdown; a closed port; a connection past `max_peers`; a peer as a byte stream.

mod common;

use common::{collect, expect, inbound, next, within};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use openp2p_async_std::{
    BindError, Config, ConnectError, ConnectFailure, Direction, DisconnectReason, Event, Node,
    PeerId, Refusal, SendError,
};
use std::net::SocketAddr;

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().expect("loopback address")
}

/// The events of one peer, in the order its node reported them.
async fn events_of(node: &Node, peer: PeerId, until_gone: bool) -> Vec<Event> {
    let mut seen = Vec::new();
    loop {
        let event = expect(node, "peer event", |e| e.peer() == Some(peer)).await;
        let last = matches!(
            event,
            Event::Disconnected { .. } | Event::ConnectFailed { .. }
        );
        seen.push(event);
        if last || !until_gone {
            return seen;
        }
    }
}

async fn lifecycle_events_are_paired_and_ordered(start: fn(Config) -> Node) {
    let server = start(Config::default());
    let addr = within("server.listen(loopback())", server.listen(loopback()))
        .await
        .expect("listen");
    assert_ne!(addr.port(), 0, "port 0 is replaced by the bound port");
    let listening = next(&server, "Listening").await;
    assert!(matches!(listening, Event::Listening { addr: a, .. } if a == addr));

    let client = start(Config::default());
    let peer = within("client.connect(addr)", client.connect(addr))
        .await
        .expect("connect starts");
    let connected = events_of(&client, peer, false).await;
    assert!(matches!(
        connected[..],
        [Event::Connected { direction: Direction::Outbound, addr: a, .. }] if a == addr
    ));
    let remote = inbound(&server).await;

    within(
        "client.send(peer, 'ping'.into())",
        client.send(peer, "ping".into()),
    )
    .await
    .expect("send");
    assert_eq!(collect(&server, remote, 4).await, b"ping");
    within(
        "server.send(remote, 'pong!'.into())",
        server.send(remote, "pong!".into()),
    )
    .await
    .expect("send");
    assert_eq!(collect(&client, peer, 5).await, b"pong!");

    let stats = within("server.stats(remote)", server.stats(remote))
        .await
        .expect("peer is live");
    assert_eq!(stats.received.bytes, 4);
    assert_eq!(
        within("client.global_stats()", client.global_stats())
            .await
            .expect("running")
            .outbound_connections,
        1
    );
    assert_eq!(
        within("client.peer_info(peer)", client.peer_info(peer))
            .await
            .expect("peer is live")
            .addr,
        addr
    );

    within("client.disconnect(peer)", client.disconnect(peer))
        .await
        .expect("disconnect");
    let late = within(
        "client.send(peer, 'late'.into())",
        client.send(peer, "late".into()),
    )
    .await;
    assert!(
        matches!(late, Err(SendError::Closing | SendError::UnknownPeer)),
        "{late:?}"
    );
    let client_tail = events_of(&client, peer, true).await;
    assert_eq!(
        client_tail.last(),
        Some(&Event::Disconnected {
            peer,
            reason: DisconnectReason::Local,
            unsent: 0
        })
    );
    assert!(
        client_tail[..client_tail.len() - 1]
            .iter()
            .all(|e| matches!(e, Event::Sent { .. } | Event::Received { .. })),
        "only traffic before the one Disconnected: {client_tail:?}"
    );
    let server_tail = events_of(&server, remote, true).await;
    assert_eq!(
        server_tail.last(),
        Some(&Event::Disconnected {
            peer: remote,
            reason: DisconnectReason::Remote,
            unsent: 0
        })
    );
    assert_eq!(
        within("client.stats(peer)", client.stats(peer)).await,
        None,
        "a stale id has no statistics"
    );
    assert!(
        within("client.disconnect(peer)", client.disconnect(peer))
            .await
            .is_err(),
        "a stale id is unknown"
    );

    within("client.shutdown()", client.shutdown()).await;
    expect(&client, "ShutdownComplete", |e| {
        *e == Event::ShutdownComplete
    })
    .await;
    assert_eq!(within("end of events", client.next_event()).await, None);
    assert_eq!(
        within(
            "client.send(peer, 'late'.into())",
            client.send(peer, "late".into())
        )
        .await,
        Err(SendError::UnknownPeer)
    );
    assert_eq!(
        within("client.connect(addr)", client.connect(addr)).await,
        Err(ConnectError::ShuttingDown)
    );
    assert_eq!(
        within("client.listen(loopback())", client.listen(loopback())).await,
        Err(BindError::ShuttingDown)
    );
    within("server.shutdown()", server.shutdown()).await;
}

async fn a_closed_port_yields_connect_failed(start: fn(Config) -> Node) {
    let closed = std::net::TcpListener::bind(loopback()).expect("bind");
    let addr = closed.local_addr().expect("addr");
    drop(closed);
    let node = start(Config::default());
    let peer = node.connect(addr).await.expect("connect starts");
    let events = events_of(&node, peer, true).await;
    assert!(
        matches!(
            events[..],
            [Event::ConnectFailed { peer: p, addr: a, reason: ConnectFailure::Refused, .. }]
                if p == peer && a == addr
        ),
        "{events:?}"
    );
    node.shutdown().await;
}

async fn a_taken_address_reports_the_bind_error(start: fn(Config) -> Node) {
    let node = start(Config::default());
    let addr = node.listen(loopback()).await.expect("listen");
    assert_eq!(
        node.listen(addr).await,
        Err(BindError::Io(std::io::ErrorKind::AddrInUse))
    );
    node.shutdown().await;
}

async fn a_connection_past_max_peers_is_refused_while_the_others_carry_on(
    start: fn(Config) -> Node,
) {
    let server = start(Config {
        max_peers: 3,
        ..Config::default()
    });
    let addr = server.listen(loopback()).await.expect("listen");
    let client = start(Config::default());
    let mut accepted = Vec::new();
    let mut peers = Vec::new();
    for _ in 0..3 {
        peers.push(client.connect(addr).await.expect("connect"));
        accepted.push(inbound(&server).await);
    }
    let extra = client.connect(addr).await.expect("connect starts");
    let refused = expect(&server, "Refused", |e| {
        matches!(e, Event::Refused { .. } | Event::Connected { .. })
    })
    .await;
    assert!(
        matches!(
            refused,
            Event::Refused {
                reason: Refusal::MaxPeers,
                ..
            }
        ),
        "{refused:?}"
    );
    // The refused connection is dropped by the server: the client sees it end.
    let gone = expect(&client, "refused peer's end", |e| {
        e.peer() == Some(extra)
            && matches!(e, Event::Disconnected { .. } | Event::ConnectFailed { .. })
    })
    .await;
    assert!(
        matches!(
            gone,
            Event::Disconnected { .. } | Event::ConnectFailed { .. }
        ),
        "{gone:?}"
    );

    for (i, &peer) in peers.iter().enumerate() {
        client
            .send(peer, vec![i as u8; 3].into())
            .await
            .expect("send to a live peer");
    }
    for &remote in &accepted {
        let got = collect(&server, remote, 3).await;
        assert!(got.iter().all(|&b| b == got[0]) && got[0] < 3, "{got:?}");
        server.send(remote, got.into()).await.expect("echo");
    }
    for (i, &peer) in peers.iter().enumerate() {
        assert_eq!(collect(&client, peer, 3).await, vec![i as u8; 3]);
    }
    assert_eq!(
        server
            .global_stats()
            .await
            .expect("running")
            .refused_connections,
        1
    );
    client.shutdown().await;
    server.shutdown().await;
}

async fn a_peer_stream_reads_and_writes_bytes(start: fn(Config) -> Node) {
    let server = start(Config::default());
    let addr = server.listen(loopback()).await.expect("listen");
    let client = start(Config::default());
    let peer = client.connect(addr).await.expect("connect");
    let mut stream = client.stream(peer).expect("stream");
    assert!(client.stream(peer).is_err(), "one stream per peer");
    let remote = inbound(&server).await;
    let mut remote_stream = server.stream(remote).expect("stream");

    let message = common::pattern(7, 300_000);
    within("write", stream.write_all(&message))
        .await
        .expect("write_all");
    within("flush", stream.flush()).await.expect("flush");
    let mut got = vec![0; message.len()];
    within("read", remote_stream.read_exact(&mut got))
        .await
        .expect("read_exact");
    assert_eq!(got, message);

    within("reply", remote_stream.write_all(b"bye"))
        .await
        .expect("reply");
    let mut reply = [0; 3];
    within("read reply", stream.read_exact(&mut reply))
        .await
        .expect("read reply");
    assert_eq!(&reply, b"bye");

    within("close", stream.close()).await.expect("close");
    let mut rest = Vec::new();
    let n = within("EOF", remote_stream.read_to_end(&mut rest))
        .await
        .expect("clean EOF");
    assert_eq!(n, 0, "nothing after the close");
    client.shutdown().await;
    server.shutdown().await;
}

async fn a_lagging_stream_pauses_its_peer_instead_of_buffering(start: fn(Config) -> Node) {
    const TOTAL: usize = 8 << 20;
    let server = start(Config::default());
    let addr = within("listen", server.listen(loopback()))
        .await
        .expect("listen");
    let client = start(Config {
        send_queue_high_water: 16 << 20,
        ..Config::default()
    });
    let peer = within("connect", client.connect(addr))
        .await
        .expect("connect");
    let remote = inbound(&server).await;
    let mut stream = server.stream(remote).expect("stream");
    let data = common::pattern(11, TOTAL);
    for start in (0..TOTAL).step_by(1 << 20) {
        within(
            "send",
            client.send(peer, data.slice(start..start + (1 << 20))),
        )
        .await
        .expect("send");
    }
    // Nobody reads the stream: once a mebibyte is buffered for it, reading pauses.
    let received = || async {
        within("stats", server.global_stats())
            .await
            .expect("running")
            .received
            .bytes
    };
    while received().await < 1 << 20 {}
    for _ in 0..50 {
        let now = received().await;
        assert!(
            now <= 3 << 19,
            "{now} bytes read for a stream that reads nothing"
        );
    }
    let mut got = vec![0; TOTAL];
    within("read everything", stream.read_exact(&mut got))
        .await
        .expect("read_exact");
    assert!(got == data, "the stream delivers every byte in order");
    client.shutdown().await;
    server.shutdown().await;
}

async fn ipv6_loopback_carries_data(start: fn(Config) -> Node) {
    let server = start(Config::default());
    let addr = match within("listen", server.listen("[::1]:0".parse().expect("addr"))).await {
        Ok(addr) => addr,
        Err(BindError::Io(kind)) => {
            eprintln!("skipped: IPv6 loopback unavailable here ({kind})");
            return;
        }
        Err(e) => panic!("listen: {e}"),
    };
    assert!(addr.is_ipv6());
    let client = start(Config::default());
    let peer = within("connect", client.connect(addr))
        .await
        .expect("connect");
    let remote = inbound(&server).await;
    within("send", client.send(peer, "over v6".into()))
        .await
        .expect("send");
    assert_eq!(collect(&server, remote, 7).await, b"over v6");
    client.shutdown().await;
    server.shutdown().await;
}

on_both_runtimes!(
    ipv6_loopback_carries_data,
    a_lagging_stream_pauses_its_peer_instead_of_buffering,
    lifecycle_events_are_paired_and_ordered,
    a_closed_port_yields_connect_failed,
    a_taken_address_reports_the_bind_error,
    a_connection_past_max_peers_is_refused_while_the_others_carry_on,
    a_peer_stream_reads_and_writes_bytes,
);
