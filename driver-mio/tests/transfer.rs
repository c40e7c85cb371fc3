//! Bulk transfers over loopback: many peers both ways, graceful close, reset mid-transfer.

mod common;

use common::{expect, pattern, PATIENCE};
use openp2p_mio::{Bytes, Config, DisconnectReason, Event, Events, Limits, Node, PeerId, Rate};
use std::collections::HashMap;
use std::io::Read;
use std::time::Instant;

const MIB: usize = 1024 * 1024;
const PEERS: usize = 100;

/// What one side knows about one peer's incoming stream.
#[derive(Default)]
struct Incoming {
    /// The sender's seed (its first byte), once known.
    seed: Option<usize>,
    received: usize,
}

/// Checks a chunk against the pattern stream with `seed`, starting at `offset`.
fn verify(base: &[u8], seed: usize, offset: usize, chunk: &[u8]) {
    let start = seed + offset;
    assert!(start + chunk.len() <= base.len(), "more than 1 MiB arrived");
    assert!(
        base[start..start + chunk.len()] == *chunk,
        "corrupt data at offset {offset}"
    );
}

/// Server side: sends each peer the stream seeded by `seed + PEERS` once it learns `seed` from
/// the peer's first byte; verifies what arrives; returns once every peer has disconnected.
fn serve(node: Node, mut events: Events, base: Bytes) -> usize {
    let mut incoming: HashMap<PeerId, Incoming> = HashMap::new();
    let mut finished = 0;
    let deadline = Instant::now() + PATIENCE;
    while finished < PEERS {
        let event = events
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("server events within the deadline");
        match event {
            Event::Received { peer, data } => {
                let state = incoming.entry(peer).or_default();
                let seed = *state.seed.get_or_insert_with(|| {
                    let seed = usize::from(data[0]);
                    let reply = base.slice(seed + PEERS..seed + PEERS + MIB);
                    node.send(peer, reply).expect("running");
                    seed
                });
                verify(&base, seed, state.received, &data);
                state.received += data.len();
            }
            Event::Disconnected {
                peer,
                reason,
                unsent,
            } => {
                assert_eq!(reason, DisconnectReason::Remote);
                assert_eq!(unsent, 0);
                assert_eq!(incoming.get(&peer).map(|s| s.received), Some(MIB));
                finished += 1;
            }
            _ => {}
        }
        assert!(events.send_failure().is_none(), "no send is refused");
    }
    node.shutdown();
    incoming.values().filter(|s| s.received == MIB).count()
}

#[test]
fn hundred_peers_each_exchange_one_mebibyte_both_ways_intact() {
    let base = Bytes::from(pattern(MIB + 2 * 251));
    let (server, server_events) = Node::start(Config::default()).expect("start");
    let addr = server
        .listen("127.0.0.1:0".parse().expect("addr"))
        .expect("listen");
    let server_base = base.clone();
    let server_thread = std::thread::spawn(move || serve(server, server_events, server_base));

    let (client, mut events) = Node::start(Config::default()).expect("start");
    let mut seeds = HashMap::new();
    for seed in 0..PEERS {
        let peer = client.connect(addr).expect("connect");
        // Queued before the connection completes: sent once it does.
        client
            .send(peer, base.slice(seed..seed + MIB))
            .expect("running");
        seeds.insert(peer, (seed, 0usize));
    }
    let mut complete = 0;
    let deadline = Instant::now() + PATIENCE;
    while complete < PEERS {
        let event = events
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("client events within the deadline");
        match event {
            Event::Received { peer, data } => {
                let (seed, received) = seeds.get_mut(&peer).expect("a peer we connected");
                verify(&base, *seed + PEERS, *received, &data);
                *received += data.len();
                if *received == MIB {
                    complete += 1;
                }
            }
            Event::ConnectFailed { reason, .. } => panic!("connect failed: {reason:?}"),
            Event::Disconnected { reason, .. } => panic!("early disconnect: {reason}"),
            _ => {}
        }
    }
    for &peer in seeds.keys() {
        client.disconnect(peer).expect("running");
    }
    for _ in 0..PEERS {
        let gone = expect(&mut events, "Disconnected", |e| {
            matches!(e, Event::Disconnected { .. })
        });
        assert!(
            matches!(
                gone,
                Event::Disconnected {
                    reason: DisconnectReason::Local,
                    unsent: 0,
                    ..
                }
            ),
            "{gone:?}"
        );
    }
    assert_eq!(
        server_thread.join().expect("server verified everything"),
        PEERS
    );
    let stats = client.global_stats().expect("running");
    assert_eq!(stats.sent.bytes, (PEERS * MIB) as u64);
    assert_eq!(stats.received.bytes, (PEERS * MIB) as u64);
    client.shutdown();
}

#[test]
fn graceful_disconnect_delivers_every_queued_byte() {
    const TOTAL: usize = 32 * MIB;
    let base = Bytes::from(pattern(TOTAL + 251));
    // A slow reader, so most of the data is still in the sender's queue at `disconnect`.
    let server_config = Config {
        peer_limits: Limits::download(Rate::per_second(16 * MIB as u64)),
        ..Config::default()
    };
    let (server, mut server_events) = Node::start(server_config).expect("start");
    let addr = server
        .listen("127.0.0.1:0".parse().expect("addr"))
        .expect("listen");
    let client_config = Config {
        send_queue_high_water: TOTAL,
        ..Config::default()
    };
    let (client, mut client_events) = Node::start(client_config).expect("start");
    let peer = client.connect_wait(addr).expect("connects");
    for i in 0..TOTAL / (4 * MIB) {
        client
            .send(peer, base.slice(i * 4 * MIB..(i + 1) * 4 * MIB))
            .expect("running");
    }
    client.disconnect(peer).expect("running");
    let queued = client.stats(peer).expect("running").map_or(0, |s| s.queued);
    assert!(
        queued > 0,
        "the disconnect was issued with bytes still queued"
    );

    let mut received = 0;
    loop {
        match expect(&mut server_events, "data, then Disconnected", |e| {
            e.peer().is_some()
        }) {
            Event::Received { data, .. } => {
                verify(&base, 0, received, &data);
                received += data.len();
            }
            Event::Disconnected { reason, unsent, .. } => {
                assert_eq!(reason, DisconnectReason::Remote);
                assert_eq!(unsent, 0);
                break;
            }
            _ => {}
        }
    }
    assert_eq!(
        received, TOTAL,
        "every queued byte arrived before the close"
    );
    let gone = expect(&mut client_events, "Disconnected", |e| {
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
    assert!(client_events.send_failure().is_none());
    client.shutdown();
    server.shutdown();
}

#[test]
fn a_reset_mid_transfer_reports_disconnected_with_the_unsent_count() {
    const TOTAL: usize = 32 * MIB;
    let remote = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = remote.local_addr().expect("addr");
    let config = Config {
        send_queue_high_water: TOTAL,
        ..Config::default()
    };
    let (client, mut events) = Node::start(config).expect("start");
    let peer = client.connect(addr).expect("connect");
    client.send(peer, vec![7u8; TOTAL]).expect("running");

    // The remote reads a little, then resets the connection (SO_LINGER 0 sends RST on close).
    let (mut socket, _) = remote.accept().expect("accept");
    let mut buf = vec![0u8; 64 * 1024];
    socket.read_exact(&mut buf).expect("some data arrives");
    socket2::SockRef::from(&socket)
        .set_linger(Some(std::time::Duration::ZERO))
        .expect("linger");
    drop(socket);

    let mut written = 0u64;
    let (reason, unsent) = loop {
        match expect(&mut events, "Sent or Disconnected", |e| {
            e.peer() == Some(peer)
        }) {
            Event::Sent { bytes, .. } => written += bytes as u64,
            Event::Disconnected { reason, unsent, .. } => break (reason, unsent),
            _ => {}
        }
    };
    assert!(
        matches!(
            reason,
            DisconnectReason::Io(
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
            )
        ),
        "reason: {reason:?}"
    );
    assert!(unsent > 0, "the reset interrupted the transfer");
    assert_eq!(
        unsent + written,
        TOTAL as u64,
        "every accepted byte is written or unsent"
    );
    let stats = client.global_stats().expect("running");
    assert_eq!(stats.unsent_bytes, unsent);
    client.shutdown();
}

#[test]
fn a_full_send_queue_refuses_until_writable() {
    const HIGH: usize = 64 * 1024;
    let remote = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = remote.local_addr().expect("addr");
    let config = Config {
        send_queue_high_water: HIGH,
        send_queue_low_water: HIGH / 4,
        ..Config::default()
    };
    let (client, mut events) = Node::start(config).expect("start");
    let peer = client.connect_wait(addr).expect("connects");
    let (mut socket, _) = remote.accept().expect("accept");

    // The remote does not read: socket buffers fill, then the queue.
    let chunk = Bytes::from(vec![3u8; 16 * 1024]);
    let mut accepted = 0usize;
    let refusal = loop {
        match client.send_wait(peer, chunk.clone()) {
            Ok(()) => accepted += chunk.len(),
            Err(e) => break e,
        }
        assert!(accepted < 256 * MIB, "the queue never filled");
    };
    assert!(matches!(
        refusal,
        openp2p_mio::SendWaitError::Rejected(openp2p_mio::SendError::QueueFull { .. })
    ));
    // A fire-and-forget send is refused the same way, and its payload comes back.
    client.send(peer, chunk.clone()).expect("running");
    // A round trip: the send above was applied while the queue was still full.
    client.driver_stats().expect("running");

    // The remote drains everything: the queue falls to its low-water mark, `Writable` follows.
    let reader = std::thread::spawn(move || {
        let mut buf = vec![0u8; 256 * 1024];
        let mut total = 0;
        while let Ok(n) = socket.read(&mut buf) {
            if n == 0 {
                break;
            }
            total += n;
        }
        total
    });
    expect(&mut events, "Writable", |e| *e == Event::Writable { peer });
    let failure = events
        .send_failure()
        .expect("the refused fire-and-forget send");
    assert_eq!(failure.peer, peer);
    assert!(matches!(
        failure.error,
        openp2p_mio::SendError::QueueFull { .. }
    ));
    assert_eq!(failure.data, chunk);
    client
        .send_wait(peer, chunk.clone())
        .expect("accepted again");
    accepted += chunk.len();
    client.disconnect(peer).expect("running");
    expect(&mut events, "Disconnected", |e| {
        matches!(e, Event::Disconnected { .. })
    });
    assert_eq!(
        reader.join().expect("reader"),
        accepted,
        "every accepted byte arrived"
    );
    client.shutdown();
}

#[test]
fn idle_peers_give_their_receive_segments_back_to_the_pool() {
    // Four segments for sixteen peers: every peer must return its segment once idle.
    const CLIENTS: usize = 16;
    let config = Config {
        pool_segments: 4,
        ..Config::default()
    };
    let (server, mut server_events) = Node::start(config).expect("start");
    let addr = server
        .listen("127.0.0.1:0".parse().expect("addr"))
        .expect("listen");
    let (client, mut client_events) = Node::start(Config::default()).expect("start");
    for _ in 0..CLIENTS {
        let peer = client.connect(addr).expect("connect");
        client.send(peer, vec![9u8; 4096]).expect("running");
    }
    let mut echoed = 0;
    let deadline = Instant::now() + PATIENCE;
    while echoed < CLIENTS * 4096 {
        let left = deadline.saturating_duration_since(Instant::now());
        if let Event::Received { peer, data } = server_events.recv_timeout(left).expect("data") {
            echoed += data.len();
            server.send(peer, data).expect("running");
        }
    }
    let mut back = 0;
    while back < CLIENTS * 4096 {
        if let Event::Received { data, .. } = expect(&mut client_events, "echo", |e| {
            matches!(e, Event::Received { .. })
        }) {
            back += data.len();
        }
    }
    let pool = server.pool_usage().expect("running");
    assert_eq!(pool.lent, 0, "idle peers hold no segment: {pool:?}");
    client.shutdown();
    server.shutdown();
}

#[test]
fn send_many_wait_reports_each_refusing_peer() {
    let (server, _server_events) = Node::start(Config::default()).expect("start");
    let addr = server
        .listen("127.0.0.1:0".parse().expect("addr"))
        .expect("listen");
    let (client, mut events) = Node::start(Config::default()).expect("start");
    let live = client.connect_wait(addr).expect("connects");
    let gone = client.connect_wait(addr).expect("connects");
    client.abort(gone).expect("running");
    expect(&mut events, "Disconnected", |e| {
        matches!(e, Event::Disconnected { .. })
    });
    let failures = client
        .send_many_wait(&[live, gone], "hello")
        .expect("running");
    assert_eq!(
        failures.as_slice(),
        &[(gone, openp2p_mio::SendError::UnknownPeer)]
    );
    client.shutdown();
    server.shutdown();
}
