//! Scenario 7: a reset mid-transfer: `Disconnected` with the unsent byte count, and bytes
//! accepted = bytes written + bytes unsent.

use super::{disconnected, pair, MIB};
use crate::harness::{expect, wait_for, Harness, TestNode};
use openp2p_core::{Bytes, Config, DisconnectReason, Event, FlowStats, Limits, PeerId, Rate};
use std::time::Duration;

/// The receiver reads at 1 MiB/s; the sender queues 16 MiB; once 256 KiB have arrived the
/// receiver aborts (a reset). The sender sees `Disconnected { Io(_), unsent > 0 }` and its
/// `Sent` reports plus `unsent` add up to the 16 MiB accepted; the global counters agree.
pub fn reset_mid_transfer<H: Harness>(h: &mut H) {
    let _cpu = super::exclusive();
    let name = h.name();
    let receiver = Config {
        peer_limits: Limits::download(Rate::per_second(MIB as u64)),
        ..Config::default()
    };
    let sender = Config {
        send_queue_high_water: 16 * MIB,
        ..Config::default()
    };
    let p = pair(h, receiver, sender);
    let total = 16 * MIB;
    for _ in 0..16 {
        p.client
            .send(p.at_client, Bytes::from(vec![1u8; MIB]))
            .expect("send accepted");
    }
    let mut got = 0;
    while got < 256 * 1024 {
        got += super::receive_bytes(&p.server, p.at_server, 1).len();
    }
    let aborted_at = p.server.now();
    p.server.abort(p.at_server);
    let (reason, unsent_here) = disconnected(&p.server, p.at_server);
    // An abort is local: nothing to wait for on the network.
    let took = p.server.now() - aborted_at;
    assert!(
        took < Duration::from_secs(1),
        "{name}: Aborted reported {took:?} after abort"
    );
    assert_eq!(reason, DisconnectReason::Aborted, "{name}");
    assert_eq!(unsent_here, 0, "{name}: the receiver had nothing queued");

    let mut written = 0u64;
    let unsent = sender_reset(&p.client, p.at_client, total, &mut written, name);
    let stats = p.client.global_stats();
    assert_eq!(stats.accepted_bytes, total as u64, "{name}: accepted");
    assert_eq!(stats.unsent_bytes, unsent, "{name}: global unsent");
    assert_eq!(stats.sent.payload_bytes, written, "{name}: global sent");
    wire_covers_payload(h, &stats.sent, name);
    drop(p.client.shutdown());
    drop(p.server.shutdown());
}

/// The remote sends FIN and then resets (it closes with data unread) while the node is still
/// writing to it: the node's socket is in `CLOSE_WAIT`, where the kernel answers the next write
/// with `EPIPE` and raises `SIGPIPE` unless the write passes `MSG_NOSIGNAL`. The node must see
/// `Disconnected { Io(_), unsent > 0 }` and live on. Run it in a process where `SIGPIPE` has its
/// default disposition (the conformance binary restores it for every cell, as a program that did
/// not ignore the signal has): a write that raises the signal then kills the process and fails
/// the run. The sender's `Sent` reports plus `unsent` add up to what it accepted.
pub fn reset_after_fin<H: Harness>(h: &mut H) {
    let name = h.name();
    // The remote reads 1 MiB/s of the 128 MiB queued (far more than loopback's socket buffers
    // hold), so the sender is still writing when the reset comes.
    let remote = Config {
        peer_limits: Limits::download(Rate::per_second(MIB as u64)),
        ..Config::default()
    };
    let sender = Config {
        send_queue_high_water: 256 * MIB,
        ..Config::default()
    };
    let p = pair(h, remote, sender);
    let total = 128 * MIB;
    let chunk = Bytes::from(vec![2u8; MIB]);
    for _ in 0..total / MIB {
        p.client
            .send(p.at_client, chunk.clone())
            .expect("send accepted");
    }
    let mut written = 0u64;
    // The sender is writing: the queue is in its engine.
    expect(&p.client, "the sender's first Sent", |e| {
        count_sent(e, p.at_client, &mut written);
        (written > 0).then_some(())
    });
    // FIN (the queue of the remote's side is empty), then the reset.
    p.server.disconnect(p.at_server);
    p.server.abort(p.at_server);
    sender_reset(&p.client, p.at_client, total, &mut written, name);
    drop(p.client.shutdown());
    drop(p.server.shutdown());
}

/// A flow's wire bytes equal its payload bytes on a plaintext peer; on a secure one they are
/// more (the handshake, the Noise length prefixes and tags).
pub(crate) fn wire_covers_payload<H: Harness>(h: &H, flow: &FlowStats, name: &str) {
    if h.is_secure() {
        assert!(
            flow.bytes > flow.payload_bytes,
            "{name}: {} wire bytes carry {} payload bytes",
            flow.bytes,
            flow.payload_bytes
        );
    } else {
        assert_eq!(flow.bytes, flow.payload_bytes, "{name}: wire = payload");
    }
}

/// Adds `peer`'s `Sent` bytes to `written`.
fn count_sent(e: &Event, peer: PeerId, written: &mut u64) {
    if let Event::Sent { peer: p, bytes } = e {
        if *p == peer {
            *written += *bytes as u64;
        }
    }
}

/// The sending side of a reset: waits for `peer`'s `Disconnected` (counting its `Sent` bytes
/// into `written` meanwhile) and checks it reports a socket error, bytes unsent, and that the
/// bytes written plus unsent are the `total` accepted. Returns the unsent count.
fn sender_reset<N: TestNode>(
    node: &N,
    peer: PeerId,
    total: usize,
    written: &mut u64,
    name: &str,
) -> u64 {
    let (reason, unsent) = wait_for(
        node,
        "the sender's Disconnected",
        |e| count_sent(&e, peer, written),
        |e| match e {
            Event::Disconnected {
                peer: p,
                reason,
                unsent,
            } if *p == peer => Some((*reason, *unsent)),
            _ => None,
        },
    );
    assert!(
        matches!(reason, DisconnectReason::Io(_)),
        "{name}: sender saw {reason:?}"
    );
    assert!(unsent > 0, "{name}: the reset left nothing unsent");
    assert_eq!(
        *written + unsent,
        total as u64,
        "{name}: written + unsent = accepted"
    );
    unsent
}
