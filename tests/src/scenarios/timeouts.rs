//! Scenario 9: the idle timeout, and a graceful shutdown that delivers everything queued.

use super::{disconnected, pair, receive_bytes, MIB};
use crate::harness::{Harness, TestNode, PATIENCE};
use crate::payload::{random, Checksum};
use openp2p_core::{Config, DisconnectReason, Event, Framing, SimRng};
use std::time::Duration;

/// A server with a 500 ms idle timeout cuts a peer that sends nothing: `IdleTimeout` on the
/// server no earlier than 500 ms after the connection, a closed connection at the client.
pub fn idle_timeout<H: Harness>(h: &mut H) {
    let name = h.name();
    let idle = Duration::from_millis(500);
    let server = Config {
        idle_timeout: Some(idle),
        ..Config::default()
    };
    let p = pair(h, server, Config::default());
    let since = p.server.now();
    let (reason, unsent) = disconnected(&p.server, p.at_server);
    let took = p.server.now() - since;
    assert_eq!(reason, DisconnectReason::IdleTimeout, "{name}");
    assert_eq!(unsent, 0, "{name}");
    assert!(
        took + Duration::from_millis(50) >= idle,
        "{name}: cut after {took:?}"
    );
    if h.is_virtual() {
        assert!(
            took <= idle + Duration::from_millis(1),
            "{name}: cut after {took:?}"
        );
    }
    let (reason, _) = disconnected(&p.client, p.at_client);
    assert!(
        matches!(reason, DisconnectReason::Remote | DisconnectReason::Io(_)),
        "{name}: the client saw {reason:?}"
    );
    drop(p.client.shutdown());
    drop(p.server.shutdown());
}

/// The client queues 3 MiB in 16 messages and shuts down at once: every message arrives intact,
/// the client reports `Disconnected { Shutdown, unsent: 0 }` then `ShutdownComplete`, and the server
/// sees the remote close.
pub fn graceful_shutdown<H: Harness>(h: &mut H) {
    let _cpu = super::exclusive();
    let name = h.name();
    let config = Config {
        framing: Framing::LengthPrefixed,
        ..Config::default()
    };
    let p = pair(h, config.clone(), config);
    let mut rng = SimRng::new(9);
    let mut sum = Checksum::default();
    let mut total = 0;
    for i in 0..16 {
        let msg = random(&mut rng, 3 * MIB / 16 + i, None);
        sum.update(&msg);
        total += msg.len();
        p.client.send(p.at_client, msg).expect("send accepted");
    }
    let at_client = p.at_client;
    // The shutdown runs while the server's application takes its data (as it would).
    p.client.begin_shutdown();
    let got = receive_bytes(&p.server, p.at_server, total);
    assert_eq!(got.len(), total, "{name}: everything queued arrived");
    assert_eq!(Checksum::of(&got), sum, "{name}: checksum");
    let (reason, _) = disconnected(&p.server, p.at_server);
    assert_eq!(reason, DisconnectReason::Remote, "{name}");
    let mut ends = Vec::new();
    while ends.last() != Some(&Event::ShutdownComplete) {
        match p.client.next_event(PATIENCE) {
            Some(Event::Sent { .. }) => {}
            Some(event) => ends.push(event),
            None => panic!("{name}: no ShutdownComplete; got {ends:?}"),
        }
    }
    assert_eq!(
        ends,
        [
            Event::Disconnected {
                peer: at_client,
                reason: DisconnectReason::Shutdown,
                unsent: 0
            },
            Event::ShutdownComplete
        ],
        "{name}: the client's last events"
    );
    drop(p.client.shutdown());
    drop(p.server.shutdown());
}
