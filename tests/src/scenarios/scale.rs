//! Scenario 3: 1,000 concurrent peers exchanging data.

use super::KIB;
use crate::harness::{v4, Harness, TestNode, PATIENCE};
use crate::payload::Checksum;
use openp2p_core::{Bytes, Config, Direction, Event, Framing, PeerId};
use std::collections::HashMap;

/// Peers in the scale scenario.
pub const PEERS: usize = 1_000;

/// One client node opens 1,000 connections to one server node (2,000 sockets in one process
/// on the real drivers; the open-files limit is raised first). Each connection sends a 4 KiB
/// message of its own; the server echoes every message back; each arrives intact at the peer
/// that sent it. Then the client shuts down and the server sees 1,000 `Disconnected`.
pub fn scale<H: Harness>(h: &mut H) {
    let _cpu = super::exclusive();
    let name = h.name();
    if !h.is_virtual() {
        raise_open_files(4 * PEERS as u64 + 256);
    }
    let config = Config {
        framing: Framing::LengthPrefixed,
        max_peers_per_ip: 2 * PEERS,
        max_pending_connects: 2 * PEERS,
        sent_events: false,
        ..Config::default()
    };
    let server = h.start(config.clone());
    let addr = server.listen(v4());
    let client = h.start(config);
    let message = |i: usize| Bytes::from(vec![(i % 251) as u8; 4 * KIB - i % 64]);
    let mut expected: HashMap<PeerId, (usize, u64)> = HashMap::new();
    for i in 0..PEERS {
        let peer = client.connect(addr).expect("connect accepted");
        let m = message(i);
        expected.insert(peer, (m.len(), Checksum::of(&m).value()));
        client
            .send(peer, m)
            .expect("sends are queued while connecting");
    }
    let deadline = client.now() + PATIENCE;
    let (mut connected, mut echoed, mut accepted) = (0, 0, 0);
    while echoed < PEERS {
        assert!(
            client.now() < deadline,
            "{name}: {connected} connected, {accepted} accepted, {echoed} echoed in time\n\
             server: {:?}\nclient: {:?}",
            server.global_stats(),
            client.global_stats()
        );
        let short = std::time::Duration::from_millis(5);
        while let Some(e) = server.next_event(short) {
            match e {
                Event::Connected {
                    direction: Direction::Inbound,
                    ..
                } => accepted += 1,
                Event::Received { peer, data } => server.send(peer, data).expect("echo accepted"),
                Event::Disconnected { reason, .. } => {
                    panic!("{name}: server lost a peer: {reason:?}")
                }
                _ => {}
            }
        }
        while let Some(e) = client.next_event(short) {
            match e {
                Event::Connected { .. } => connected += 1,
                Event::Received { peer, data } => {
                    let want = expected
                        .remove(&peer)
                        .unwrap_or_else(|| panic!("{name}: a second echo"));
                    assert_eq!(
                        want,
                        (data.len(), Checksum::of(&data).value()),
                        "{name}: echo of {peer}"
                    );
                    echoed += 1;
                }
                Event::ConnectFailed { reason, .. } => panic!("{name}: connect failed: {reason:?}"),
                Event::Disconnected { reason, .. } => {
                    panic!("{name}: client lost a peer: {reason:?}")
                }
                _ => {}
            }
        }
    }
    assert_eq!(connected, PEERS, "{name}: connected");
    assert_eq!(
        server.global_stats().peers,
        PEERS,
        "{name}: peers at the server"
    );
    let tail = client.shutdown();
    let closed = tail
        .iter()
        .filter(|e| matches!(e, Event::Disconnected { .. }))
        .count();
    assert_eq!(closed, PEERS, "{name}: every client peer closed");
    let mut gone = 0;
    while gone < PEERS {
        match server.next_event(PATIENCE) {
            Some(Event::Disconnected { .. }) => gone += 1,
            Some(_) => {}
            None => panic!("{name}: only {gone} peers closed at the server"),
        }
    }
    drop(server.shutdown());
}

/// Raises the soft open-files limit to at least `want` (capped by the hard limit).
pub fn raise_open_files(want: u64) {
    let (soft, hard) = rlimit::Resource::NOFILE.get().expect("getrlimit");
    if soft < want {
        let new = want.min(hard);
        rlimit::Resource::NOFILE
            .set(new, hard)
            .expect("setrlimit within the hard limit");
        assert!(
            new >= want,
            "the hard open-files limit {hard} is below {want}"
        );
    }
}
