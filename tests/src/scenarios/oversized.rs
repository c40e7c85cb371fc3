//! Scenario 4: a frame over the limit disconnects its sender with `FrameTooLarge`; other peers
//! are unaffected.

use super::{disconnected, inbound_connected, outbound_connected, KIB};
use crate::harness::{expect, v4, Harness, TestNode};
use openp2p_core::{Bytes, Config, DisconnectReason, Event, Framing};

/// A server with a 64 KiB frame limit and two clients: one sends a 100 KiB frame (its own limit
/// is higher) and is disconnected with `FrameTooLarge { len, max }`; the other goes on
/// exchanging messages both ways before and after.
pub fn oversized_frame<H: Harness>(h: &mut H) {
    let name = h.name();
    let max = 64 * KIB;
    let server = h.start(Config {
        framing: Framing::LengthPrefixed,
        max_frame_size: max,
        ..Config::default()
    });
    let addr = server.listen(v4());
    let client_config = Config {
        framing: Framing::LengthPrefixed,
        max_frame_size: 1024 * KIB,
        ..Config::default()
    };
    let good = h.start(client_config.clone());
    let bad = h.start(client_config);
    let g = good.connect(addr).expect("connect accepted");
    outbound_connected(&good, g);
    let g_at_server = inbound_connected(&server);
    let b = bad.connect(addr).expect("connect accepted");
    outbound_connected(&bad, b);
    let b_at_server = inbound_connected(&server);

    let echo = |label: &str| {
        let msg = Bytes::from(format!("{label} from the good peer"));
        good.send(g, msg.clone()).expect("send accepted");
        let got = expect(&server, "the good peer's message", |e| match e {
            Event::Received { peer, data } if *peer == g_at_server => Some(data.clone()),
            Event::Disconnected { peer, reason, .. } if *peer == g_at_server => {
                panic!("{name}: the good peer was disconnected: {reason:?}")
            }
            _ => None,
        });
        server
            .send(g_at_server, msg.clone())
            .expect("send accepted");
        assert_eq!(got, msg, "{name}");
        let got = expect(&good, "the echo", |e| match e {
            Event::Received { data, .. } => Some(data.clone()),
            Event::Disconnected { reason, .. } => panic!("{name}: good peer cut: {reason:?}"),
            _ => None,
        });
        assert_eq!(got, msg, "{name}");
    };
    echo("before");

    let big = Bytes::from(vec![0x42; 100 * KIB]);
    bad.send(b, big)
        .expect("the offender's own limit allows it");
    let (reason, _) = disconnected(&server, b_at_server);
    assert_eq!(
        reason,
        DisconnectReason::FrameTooLarge {
            len: 100 * KIB as u64,
            max: max as u64
        },
        "{name}"
    );
    // The offender learns it lost the connection (closed or reset by the server).
    let (reason, _) = disconnected(&bad, b);
    assert!(
        matches!(reason, DisconnectReason::Remote | DisconnectReason::Io(_)),
        "{name}: the offender saw {reason:?}"
    );

    echo("after");
    drop(good.shutdown());
    drop(bad.shutdown());
    drop(server.shutdown());
}
