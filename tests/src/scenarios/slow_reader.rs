//! Scenario 6: a peer that does not read. The sender's queue stays within its limit, `send`
//! answers `QueueFull`, and `Writable` follows once the reader drains; memory stays bounded.

use super::{pair, KIB, MIB};
use crate::harness::{Harness, TestNode};
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
    let throttle = Limits::download(Rate::per_second(1).with_burst(1));
    // Rate limits count wire bytes, handshake included: a secure reader throttled from the
    // start would read the 100-byte handshake at 1 B/s and time it out. In secure mode the
    // throttle comes right after `Connected`, before anything is sent.
    let reader = Config {
        peer_limits: if h.is_secure() {
            Limits::UNLIMITED
        } else {
            throttle
        },
        ..Config::default()
    };
    let p = pair(h, reader, sender);
    let (reader, sender, r_peer, s_peer) = (&p.server, &p.client, p.at_server, p.at_client);
    if h.is_secure() {
        reader.set_limits(r_peer, throttle);
    }
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
    // The reader's application now takes what arrives (drivers stop reading for an application
    // that leaves received data untaken), so the sender's queue drains: `Writable`, after which
    // a send is accepted again. A `Writable` from an earlier dip below the low-water mark may
    // come first: then the send is refused and the next `Writable` is awaited.
    let mut got: Vec<u8> = Vec::with_capacity(accepted + msg.len());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let mut writable = false;
        while !writable {
            assert!(std::time::Instant::now() < deadline, "{name}: no Writable");
            while let Some(e) = reader.next_event(std::time::Duration::ZERO) {
                if let Event::Received { peer, data } = &e {
                    if *peer == r_peer {
                        got.extend_from_slice(data);
                    }
                }
            }
            while let Some(e) = sender.next_event(std::time::Duration::from_millis(1)) {
                match e {
                    Event::Writable { peer } if peer == s_peer => writable = true,
                    Event::Disconnected { reason, .. } => {
                        panic!("{name}: disconnected: {reason:?}")
                    }
                    _ => {}
                }
            }
        }
        match sender.send(s_peer, msg.clone()) {
            Ok(()) => break,
            Err(SendError::QueueFull { queued, limit }) => {
                assert!(queued <= limit, "{name}: {queued} queued over the limit");
            }
            Err(e) => panic!("{name}: writable again: {e:?}"),
        }
    }
    accepted += msg.len();
    let rest = super::receive_bytes(reader, r_peer, accepted - got.len());
    got.extend_from_slice(&rest);
    assert_eq!(got.len(), accepted, "{name}: every accepted byte arrived");
    assert!(got.iter().all(|&b| b == 0x5a), "{name}: content");
    drop(p.client.shutdown());
    drop(p.server.shutdown());
}
