//! Scenario 6: a peer that does not read. The sender's queue stays within its limit, `send`
//! answers `QueueFull`, and `Writable` follows once the reader drains; memory stays bounded.

use super::{pair, KIB, MIB};
use crate::harness::{expect, Harness, TestNode};
use openp2p_core::{Bytes, Config, Event, Limits, Rate, SendError};

/// The reader's download is throttled to one byte per second (it does not read, in effect);
/// the sender (high water 256 KiB, low water 64 KiB) sends 32 KiB messages until `QueueFull`.
/// Its queue never exceeds the high-water mark, further sends are refused too, the refusal
/// costs no memory; then the reader's limit is lifted, `Writable` arrives, and every accepted
/// byte reaches the reader.
pub fn slow_reader<H: Harness>(h: &mut H) {
    let _cpu = super::exclusive();
    let name = h.name();
    let high = 256 * KIB;
    let sender = Config {
        send_queue_high_water: high,
        send_queue_low_water: 64 * KIB,
        ..Config::default()
    };
    let reader = Config {
        peer_limits: Limits::download(Rate::per_second(1).with_burst(1)),
        ..Config::default()
    };
    let p = pair(h, reader, sender);
    let (reader, sender, r_peer, s_peer) = (&p.server, &p.client, p.at_server, p.at_client);
    let msg = Bytes::from(vec![0x5a; 32 * KIB]);
    let mut accepted = 0usize;
    // Loopback socket buffers take a few MiB before the queue fills; stop at 64 MiB.
    let refusal = loop {
        assert!(
            accepted < 64 * MIB,
            "{name}: no QueueFull after {accepted} bytes"
        );
        match sender.send(s_peer, msg.clone()) {
            Ok(()) => accepted += msg.len(),
            Err(e) => break e,
        }
        // Let the driver write between sends, as an application would.
        while sender.next_event(std::time::Duration::ZERO).is_some() {}
    };
    match refusal {
        SendError::QueueFull { queued, limit } => {
            assert_eq!(limit, high as u64, "{name}: the limit reported");
            assert!(queued <= limit, "{name}: {queued} queued over the limit");
        }
        other => panic!("{name}: expected QueueFull, got {other:?}"),
    }
    let stats = sender.global_stats();
    assert!(
        stats.queued_bytes <= high as u64,
        "{name}: {} bytes queued, limit {high}",
        stats.queued_bytes
    );
    assert_eq!(
        stats.accepted_bytes, accepted as u64,
        "{name}: accepted bytes"
    );
    // Sends go on being refused or, as the socket takes a little more, accepted without the
    // queue passing the mark.
    for _ in 0..10 {
        match sender.send(s_peer, msg.clone()) {
            Ok(()) => accepted += msg.len(),
            Err(SendError::QueueFull { queued, limit }) => {
                assert!(queued <= limit, "{name}: {queued} queued over the limit");
            }
            Err(e) => panic!("{name}: {e:?}"),
        }
    }
    let after = sender.global_stats();
    assert!(
        after.queued_bytes <= high as u64,
        "{name}: queue grew past the limit"
    );
    // The reader holds at most its receive pool (bounded by configuration).
    let pool = reader.global_stats().pool_bytes_in_use;
    assert!(pool <= 256 * 128 * KIB, "{name}: reader pool {pool}");

    reader.set_limits(r_peer, Limits::UNLIMITED);
    expect(sender, "Writable", |e| match e {
        Event::Writable { peer } if *peer == s_peer => Some(()),
        Event::Disconnected { reason, .. } => panic!("{name}: disconnected: {reason:?}"),
        _ => None,
    });
    sender.send(s_peer, msg.clone()).expect("writable again");
    accepted += msg.len();
    let got = super::receive_bytes(reader, r_peer, accepted);
    assert_eq!(got.len(), accepted, "{name}: every accepted byte arrived");
    assert!(got.iter().all(|&b| b == 0x5a), "{name}: content");
    drop(p.client.shutdown());
    drop(p.server.shutdown());
}
