//! Scenario 11b: `send_many` to 50 peers.

use super::{inbound_connected, outbound_connected};
use crate::harness::{expect, v4, Harness, TestNode};
use openp2p_core::{Bytes, Config, Event, Framing, PeerId, SendError};
use std::collections::HashSet;

/// A server with 50 inbound peers sends one message to all of them (plus one dead id) with
/// one `send_many`: the dead id alone is refused (`UnknownPeer`), each of the 50 receives the
/// message exactly once, and the server's payload byte count is 50 framed copies (its wire
/// count too in plaintext; more in secure mode).
pub fn send_many<H: Harness>(h: &mut H) {
    let name = h.name();
    let config = Config {
        framing: Framing::LengthPrefixed,
        ..Config::default()
    };
    let server = h.start(config.clone());
    let addr = server.listen(v4());
    let client = h.start(config);
    let mut at_client = HashSet::new();
    let mut at_server = Vec::new();
    for _ in 0..50 {
        let c = client.connect(addr).expect("connect accepted");
        outbound_connected(&client, c);
        at_client.insert(c);
        at_server.push(inbound_connected(&server));
    }
    // A dead id: a peer that connected and left.
    let gone = client.connect(addr).expect("connect accepted");
    outbound_connected(&client, gone);
    let dead: PeerId = inbound_connected(&server);
    client.abort(gone);
    super::disconnected(&server, dead);
    let mut targets = at_server.clone();
    targets.insert(25, dead);

    let msg = Bytes::from(vec![0x33; 10_000]);
    let failures = server.send_many(&targets, msg.clone());
    assert_eq!(
        failures.as_slice(),
        [(dead, SendError::UnknownPeer)],
        "{name}: refusals"
    );
    let mut waiting = at_client.clone();
    while !waiting.is_empty() {
        expect(&client, "the message at every peer", |e| match e {
            Event::Received { peer, data } => {
                assert_eq!(data, &msg, "{name}: content");
                assert!(waiting.remove(peer), "{name}: {peer} got it twice");
                Some(())
            }
            _ => None,
        });
    }
    assert!(
        client
            .next_event(std::time::Duration::from_millis(100))
            .is_none_or(|e| !matches!(e, Event::Received { .. })),
        "{name}: an extra message"
    );
    let stats = server.global_stats();
    let framed = 50 * (10_000 + 4);
    assert_eq!(stats.sent.payload_bytes, framed, "{name}: payload written");
    if h.is_secure() {
        // Per accepted connection (51) the responder's handshake message (2 + 96 bytes), per
        // copy at least one Noise length prefix and tag (2 + 16).
        let least = framed + 51 * (2 + 96) + 50 * (2 + 16);
        assert!(
            stats.sent.bytes >= least,
            "{name}: {} bytes written, at least {least} expected",
            stats.sent.bytes
        );
    } else {
        assert_eq!(stats.sent.bytes, framed, "{name}: bytes written");
    }
    drop(client.shutdown());
    drop(server.shutdown());
}
