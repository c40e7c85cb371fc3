//! Scenario 5: connections past `max_peers` and past `max_peers_per_ip` are refused cleanly;
//! existing peers carry on.

use super::{disconnected, inbound_connected, outbound_connected};
use crate::harness::{expect, v4, Harness, TestNode};
use openp2p_core::{Bytes, Config, DisconnectReason, Event, Framing, PeerId, Refusal};

/// Four peers fill `max_peers = 4`; three more are refused (`Refused { MaxPeers }` on the
/// server, a closed connection on the client); the four still exchange data.
pub fn flood_max_peers<H: Harness>(h: &mut H) {
    flood(
        h,
        Config {
            max_peers: 4,
            ..Config::default()
        },
        4,
        Refusal::MaxPeers,
    );
}

/// Two peers from one address fill `max_peers_per_ip = 2`; three more from it are refused
/// (`Refused { MaxPeersPerIp }`); the two still exchange data.
pub fn flood_max_per_ip<H: Harness>(h: &mut H) {
    flood(
        h,
        Config {
            max_peers_per_ip: 2,
            ..Config::default()
        },
        2,
        Refusal::MaxPeersPerIp,
    );
}

fn flood<H: Harness>(h: &mut H, server: Config, admitted: usize, why: Refusal) {
    let name = h.name();
    let framing = Framing::LengthPrefixed;
    let server = h.start(Config { framing, ..server });
    let addr = server.listen(v4());
    let client = h.start(Config {
        framing,
        ..Config::default()
    });
    let mut peers: Vec<(PeerId, PeerId)> = Vec::new();
    for _ in 0..admitted {
        let c = client.connect(addr).expect("connect accepted");
        outbound_connected(&client, c);
        peers.push((c, inbound_connected(&server)));
    }
    let refused = 3;
    let extra: Vec<PeerId> = (0..refused)
        .map(|_| {
            client
                .connect(addr)
                .expect("the client's own limits allow it")
        })
        .collect();
    for _ in 0..refused {
        let reason = expect(&server, "Refused", |e| match e {
            Event::Refused { reason, .. } => Some(*reason),
            Event::Connected { peer, .. } => panic!("{name}: {peer} admitted past the limit"),
            Event::Disconnected { peer, reason, .. } => {
                panic!("{name}: existing {peer} disconnected: {reason:?}")
            }
            _ => None,
        });
        assert_eq!(reason, why, "{name}: refusal reason");
    }
    // Each refused connect ends cleanly at the client: connected then closed by the server, or
    // failed outright; never left hanging.
    let mut pending: Vec<PeerId> = extra.clone();
    while !pending.is_empty() {
        let ended = expect(&client, "the refused connections' ends", |e| match e {
            Event::ConnectFailed { peer, .. } if pending.contains(peer) => Some(*peer),
            Event::Disconnected { peer, reason, .. } if pending.contains(peer) => {
                assert!(
                    matches!(reason, DisconnectReason::Remote | DisconnectReason::Io(_)),
                    "{name}: {reason:?}"
                );
                Some(*peer)
            }
            Event::Disconnected { peer, reason, .. } => {
                panic!("{name}: admitted {peer} disconnected: {reason:?}")
            }
            _ => None,
        });
        pending.retain(|p| *p != ended);
    }
    let stats = server.global_stats();
    assert_eq!(stats.peers, admitted, "{name}: peers");
    assert_eq!(stats.refused_connections, refused as u64, "{name}: refused");

    // The admitted peers carry on, both ways.
    for (i, &(c, s)) in peers.iter().enumerate() {
        let msg = Bytes::from(format!("still here {i}"));
        client.send(c, msg.clone()).expect("send accepted");
        let got = expect(&server, "data from an admitted peer", |e| match e {
            Event::Received { peer, data } if *peer == s => Some(data.clone()),
            _ => None,
        });
        assert_eq!(got, msg, "{name}");
        server.send(s, msg.clone()).expect("send accepted");
        let got = expect(&client, "data to an admitted peer", |e| match e {
            Event::Received { peer, data } if *peer == c => Some(data.clone()),
            _ => None,
        });
        assert_eq!(got, msg, "{name}");
    }
    // And once one leaves, a newcomer is admitted again.
    let (gone, gone_at_server) = peers[0];
    client.disconnect(gone);
    disconnected(&server, gone_at_server);
    let c = client.connect(addr).expect("connect accepted");
    outbound_connected(&client, c);
    inbound_connected(&server);
    drop(client.shutdown());
    drop(server.shutdown());
}
