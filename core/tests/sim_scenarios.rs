//! Multi-peer scenarios on the simulated network: virtual time, no sockets, deterministic.

use openp2p_core::sim::{Link, NodeId, SimNet};
use openp2p_core::{
    Bytes, Config, ConnectFailure, DisconnectReason, Event, Framing, Limits, PeerId, Rate,
    SendError,
};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const KIB: u64 = 1024;

fn net(seed: u64) -> SimNet {
    SimNet::new(seed, Instant::now(), Link::default())
}

/// Bytes received per node, with the virtual time of each arrival.
#[derive(Default)]
struct Arrivals(HashMap<NodeId, Vec<(Duration, u64)>>);

impl Arrivals {
    fn record(&mut self, node: NodeId, at: Duration, n: usize) {
        self.0.entry(node).or_default().push((at, n as u64));
    }

    fn between(&self, node: NodeId, from: Duration, to: Duration) -> u64 {
        self.0.get(&node).map_or(0, |v| {
            v.iter()
                .filter(|(t, _)| *t > from && *t <= to)
                .map(|(_, n)| n)
                .sum()
        })
    }
}

fn relative_error(got: f64, want: f64) -> f64 {
    (got - want).abs() / want
}

/// A server with `server_config` and `clients` nodes connected to it; on each connection the
/// server sends a payload larger than the run can carry. Returns the clients and their arrivals.
fn fan_out(
    seed: u64,
    server_config: Config,
    clients: usize,
    run: Duration,
) -> (Vec<NodeId>, Arrivals) {
    let mut net = net(seed);
    let server = net.add_node(server_config).unwrap();
    let addr = net.listen(server).unwrap();
    let clients: Vec<NodeId> = (0..clients)
        .map(|_| net.add_node(Config::default()).unwrap())
        .collect();
    let t0 = net.now();
    for &c in &clients {
        net.engine(c).connect(addr, t0).unwrap();
    }
    let mut arrivals = Arrivals::default();
    let payload = Bytes::from(vec![7u8; 4 * 1024 * 1024]);
    net.run_for(run, |node, engine, event, at| match event {
        Event::Connected { peer, .. } if node == server => {
            engine.send(peer, payload.clone(), at).unwrap();
        }
        Event::Received { data, .. } => arrivals.record(node, at - t0, data.len()),
        _ => {}
    });
    (clients, arrivals)
}

/// Bytes per second a client received between 1 s and 11 s (after the initial burst).
fn steady_rate(arrivals: &Arrivals, client: NodeId) -> f64 {
    arrivals.between(client, Duration::from_secs(1), Duration::from_secs(11)) as f64 / 10.0
}

#[test]
fn three_peers_limited_to_64_kib_per_second_each_achieve_it_within_one_percent() {
    let limit = Rate::per_second(64 * KIB);
    let config = Config {
        peer_limits: Limits::upload(limit),
        ..Config::default()
    };
    let (clients, arrivals) = fan_out(1, config, 3, Duration::from_secs(12));
    for &c in &clients {
        let rate = steady_rate(&arrivals, c);
        let error = relative_error(rate, limit.bytes_per_sec() as f64);
        println!(
            "client {c}: {rate:.0} B/s over 10 virtual s (error {:.3} %)",
            error * 100.0
        );
        assert!(
            error < 0.01,
            "client {c}: {rate:.0} B/s, error {:.3} %",
            error * 100.0
        );
    }
}

#[test]
fn a_global_upload_limit_is_shared_evenly_by_four_peers() {
    let global = Rate::per_second(256 * KIB);
    let config = Config {
        global_limits: Limits::upload(global),
        ..Config::default()
    };
    let (clients, arrivals) = fan_out(2, config, 4, Duration::from_secs(11));
    let fair = global.bytes_per_sec() as f64 / 4.0;
    let mut total = 0.0;
    for &c in &clients {
        let rate = steady_rate(&arrivals, c);
        total += rate;
        let error = relative_error(rate, fair);
        println!(
            "client {c}: {rate:.0} B/s, fair share {fair:.0} (error {:.2} %)",
            error * 100.0
        );
        assert!(error < 0.05, "client {c}: {rate:.0} B/s vs fair {fair:.0}");
    }
    assert!(
        relative_error(total, global.bytes_per_sec() as f64) < 0.02,
        "total {total:.0} B/s"
    );
}

#[test]
fn a_download_limit_throttles_by_not_reading() {
    let mut net = net(3);
    let limit = Rate::per_second(32 * KIB);
    let sender = net.add_node(Config::default()).unwrap();
    let receiver = net
        .add_node(Config {
            peer_limits: Limits::download(limit),
            ..Config::default()
        })
        .unwrap();
    let addr = net.listen(receiver).unwrap();
    let t0 = net.now();
    let peer = net.engine(sender).connect(addr, t0).unwrap();
    net.engine(sender)
        .send(peer, Bytes::from(vec![0u8; 1024 * 1024]), t0)
        .unwrap();
    let mut arrivals = Arrivals::default();
    net.run_for(Duration::from_secs(7), |node, _, event, at| {
        if let Event::Received { data, .. } = event {
            arrivals.record(node, at - t0, data.len());
        }
    });
    let rate =
        arrivals.between(receiver, Duration::from_secs(1), Duration::from_secs(6)) as f64 / 5.0;
    assert!(
        relative_error(rate, limit.bytes_per_sec() as f64) < 0.02,
        "{rate:.0} B/s"
    );
}

#[test]
fn a_limit_changed_mid_transfer_takes_effect() {
    let mut net = net(4);
    let sender = net
        .add_node(Config {
            peer_limits: Limits::upload(Rate::per_second(16 * KIB)),
            ..Config::default()
        })
        .unwrap();
    let receiver = net.add_node(Config::default()).unwrap();
    let addr = net.listen(receiver).unwrap();
    let t0 = net.now();
    let peer = net.engine(sender).connect(addr, t0).unwrap();
    net.engine(sender)
        .send(peer, Bytes::from(vec![0u8; 4 * 1024 * 1024]), t0)
        .unwrap();
    let mut arrivals = Arrivals::default();
    let mut record = |node, _: &mut openp2p_core::Engine, event, at: Instant| {
        if let Event::Received { data, .. } = event {
            arrivals.record(node, at - t0, data.len());
        }
    };
    net.run_for(Duration::from_secs(3), &mut record);
    let faster = Limits::upload(Rate::per_second(128 * KIB));
    let now = net.now();
    net.engine(sender).set_limits(peer, faster, now).unwrap();
    net.run_for(Duration::from_secs(3), &mut record);
    let before =
        arrivals.between(receiver, Duration::from_secs(1), Duration::from_secs(3)) as f64 / 2.0;
    let after =
        arrivals.between(receiver, Duration::from_secs(4), Duration::from_secs(6)) as f64 / 2.0;
    assert!(
        relative_error(before, 16.0 * 1024.0) < 0.03,
        "before: {before:.0} B/s"
    );
    assert!(
        relative_error(after, 128.0 * 1024.0) < 0.03,
        "after: {after:.0} B/s"
    );
}

/// Runs a small conversation and returns its trace.
fn conversation(seed: u64) -> Vec<String> {
    let mut net = net(seed);
    // Raw framing: chunk boundaries, and so the trace, depend on the seeded read sizes.
    let a = net.add_node(Config::default()).unwrap();
    let b = net.add_node(Config::default()).unwrap();
    let addr = net.listen(b).unwrap();
    let now = net.now();
    let peer = net.engine(a).connect(addr, now).unwrap();
    for i in 0..50u32 {
        net.engine(a)
            .send(peer, Bytes::from(vec![i as u8; (i * 977) as usize]), now)
            .unwrap();
    }
    net.engine(a).disconnect(peer, now).unwrap();
    net.run_for(Duration::from_secs(1), |node, engine, event, at| {
        if let Event::Received { peer, data } = event {
            if node == b {
                // Echo a digest back while the connection drains.
                let _ = engine.send(peer, Bytes::from(data.len().to_be_bytes().to_vec()), at);
            }
        }
    });
    net.trace()
        .iter()
        .map(|l| format!("{:?} {} {}", l.at, l.node, l.event))
        .collect()
}

#[test]
fn the_same_seed_gives_the_same_event_trace() {
    let first = conversation(42);
    assert_eq!(first, conversation(42));
    assert!(
        first.iter().any(|l| l.contains("Disconnected")),
        "{first:#?}"
    );
    assert_ne!(first, conversation(43), "read splits depend on the seed");
}

#[test]
fn events_are_paired_and_every_message_arrives_in_order_before_the_disconnect() {
    let mut net = net(5);
    let config = Config {
        framing: Framing::Delimited(b'\n'),
        ..Config::default()
    };
    let a = net.add_node(config.clone()).unwrap();
    let b = net.add_node(config).unwrap();
    let addr = net.listen(b).unwrap();
    let now = net.now();
    let peer = net.engine(a).connect(addr, now).unwrap();
    let lines: Vec<String> = (0..1000)
        .map(|i| format!("line {i} {}", "x".repeat(i % 300)))
        .collect();
    for l in &lines {
        net.engine(a)
            .send(peer, Bytes::from(l.clone()), now)
            .unwrap();
    }
    net.engine(a).disconnect(peer, now).unwrap();
    let mut got = Vec::new();
    let mut log: Vec<(NodeId, Event)> = Vec::new();
    net.run_for(Duration::from_secs(2), |node, _, event, _| {
        if let Event::Received { data, .. } = &event {
            got.push(String::from_utf8(data.to_vec()).unwrap());
        } else if !matches!(event, Event::Sent { .. } | Event::Listening { .. }) {
            log.push((node, event));
        }
    });
    assert_eq!(got, lines);
    let kinds: Vec<String> = log
        .iter()
        .map(|(n, e)| match e {
            Event::Connected { .. } => format!("{n}:connected"),
            Event::Disconnected { reason, unsent, .. } => {
                format!("{n}:disconnected {reason:?} {unsent}")
            }
            other => format!("{n}:{other:?}"),
        })
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| k.ends_with("connected")).count(),
        2,
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&"0:disconnected Local 0".to_string()),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&"1:disconnected Remote 0".to_string()),
        "{kinds:?}"
    );
    assert_eq!(net.engine(a).peer_count() + net.engine(b).peer_count(), 0);
    net.engine(a).check_invariants().unwrap();
    net.engine(b).check_invariants().unwrap();
}

#[test]
fn connect_refused_and_connect_timeout_each_yield_one_connect_failed() {
    let mut net = net(6);
    let config = Config {
        connect_timeout: Duration::from_secs(3),
        ..Config::default()
    };
    let a = net.add_node(config).unwrap();
    let b = net.add_node(Config::default()).unwrap();
    let c = net.add_node(Config::default()).unwrap();
    net.blackhole(net.ip(c));
    let now = net.now();
    let (closed_port, dark_host) = (SocketAddr::new(net.ip(b), 9), SocketAddr::new(net.ip(c), 9));
    let refused = net.engine(a).connect(closed_port, now).unwrap();
    let silent = net.engine(a).connect(dark_host, now).unwrap();
    let mut failures = Vec::new();
    net.run_for(Duration::from_secs(5), |_, _, event, at| {
        if let Event::ConnectFailed { peer, reason, .. } = event {
            failures.push((peer, reason, at - now));
        }
    });
    assert_eq!(failures.len(), 2, "{failures:?}");
    assert_eq!(
        (failures[0].0, failures[0].1),
        (refused, ConnectFailure::Refused)
    );
    assert_eq!(
        (failures[1].0, failures[1].1),
        (silent, ConnectFailure::TimedOut)
    );
    assert_eq!(failures[1].2, Duration::from_secs(3));
    net.engine(a).check_invariants().unwrap();
}

#[test]
fn an_idle_peer_is_disconnected_after_the_idle_timeout() {
    let mut net = net(7);
    let idle = Config {
        idle_timeout: Some(Duration::from_secs(2)),
        ..Config::default()
    };
    let a = net.add_node(idle).unwrap();
    let b = net
        .add_node(Config {
            idle_timeout: None,
            ..Config::default()
        })
        .unwrap();
    let addr = net.listen(b).unwrap();
    let now = net.now();
    let peer = net.engine(a).connect(addr, now).unwrap();
    net.engine(a).send(peer, "ping".into(), now).unwrap();
    let mut reasons = Vec::new();
    net.run_for(Duration::from_secs(5), |node, _, event, at| {
        if let Event::Disconnected { reason, .. } = event {
            reasons.push((node, reason, at - now));
        }
    });
    assert_eq!(reasons[0].0, a);
    assert_eq!(reasons[0].1, DisconnectReason::IdleTimeout);
    assert!(reasons[0].2 >= Duration::from_secs(2) && reasons[0].2 < Duration::from_millis(2100));
    assert_eq!((reasons[1].0, reasons[1].1), (b, DisconnectReason::Remote));
}

#[test]
fn an_oversized_frame_disconnects_only_its_sender() {
    let mut net = net(8);
    let strict = Config {
        framing: Framing::LengthPrefixed,
        max_frame_size: 1024,
        ..Config::default()
    };
    let server = net.add_node(strict).unwrap();
    let addr = net.listen(server).unwrap();
    let raw = net.add_node(Config::default()).unwrap();
    let good = net
        .add_node(Config {
            framing: Framing::LengthPrefixed,
            ..Config::default()
        })
        .unwrap();
    let now = net.now();
    let bad_peer = net.engine(raw).connect(addr, now).unwrap();
    // A raw client forges a header announcing 1 MiB.
    net.engine(raw)
        .send(bad_peer, Bytes::from_static(&[0, 16, 0, 0, 1, 2, 3]), now)
        .unwrap();
    let good_peer = net.engine(good).connect(addr, now).unwrap();
    let mut server_events = Vec::new();
    net.run_for(Duration::from_millis(100), |node, _, event, _| {
        if node == server {
            server_events.push(event);
        }
    });
    let too_large = server_events.iter().find_map(|e| match e {
        Event::Disconnected { reason, .. } => Some(*reason),
        _ => None,
    });
    assert_eq!(
        too_large,
        Some(DisconnectReason::FrameTooLarge {
            len: 1 << 20,
            max: 1024
        })
    );
    let now = net.now();
    net.engine(good)
        .send(good_peer, "still here".into(), now)
        .unwrap();
    let mut got = Vec::new();
    net.run_for(Duration::from_millis(100), |node, _, event, _| {
        if let (true, Event::Received { data, .. }) = (node == server, event) {
            got.push(data);
        }
    });
    assert_eq!(got, vec![Bytes::from("still here")]);
}

#[test]
fn a_slow_reader_fills_the_queue_to_its_limit_then_writable_follows_when_it_drains() {
    let mut net = SimNet::new(
        9,
        Instant::now(),
        Link {
            window: 64 * 1024,
            ..Link::default()
        },
    );
    let high = 256 * 1024;
    let sender = net
        .add_node(Config {
            send_queue_high_water: high,
            send_queue_low_water: 64 * 1024,
            ..Config::default()
        })
        .unwrap();
    // The reader reads 8 KiB/s: practically stalled.
    let reader = net
        .add_node(Config {
            peer_limits: Limits::download(Rate::per_second(8 * KIB)),
            ..Config::default()
        })
        .unwrap();
    let addr = net.listen(reader).unwrap();
    let now = net.now();
    let peer = net.engine(sender).connect(addr, now).unwrap();
    net.run_for(Duration::from_millis(10), |_, _, _, _| {});
    let chunk = Bytes::from(vec![0u8; 16 * 1024]);
    let mut accepted = 0;
    let full = loop {
        match net.engine(sender).send(peer, chunk.clone(), now) {
            Ok(()) => accepted += chunk.len(),
            Err(e) => break e,
        }
    };
    assert!(
        matches!(full, SendError::QueueFull { limit, .. } if limit == high as u64),
        "{full:?}"
    );
    assert!(accepted <= high);
    let queued = net.engine(sender).stats(peer).unwrap().queued;
    assert!(queued <= high as u64);
    // Speed the reader up: the queue drains and Writable arrives.
    let now = net.now();
    let reader_peer = net.engine(reader).peer_ids()[0];
    net.engine(reader)
        .set_limits(reader_peer, Limits::UNLIMITED, now)
        .unwrap();
    let mut writable = false;
    net.run_for(Duration::from_secs(1), |node, _, event, _| {
        writable |= node == sender && matches!(event, Event::Writable { peer: p } if p == peer);
    });
    assert!(writable);
}

#[test]
fn a_reset_mid_transfer_reports_the_unsent_bytes() {
    let mut net = SimNet::new(
        10,
        Instant::now(),
        Link {
            window: 32 * 1024,
            ..Link::default()
        },
    );
    let sender = net.add_node(Config::default()).unwrap();
    let receiver = net
        .add_node(Config {
            peer_limits: Limits::download(Rate::per_second(64 * KIB)),
            ..Config::default()
        })
        .unwrap();
    let addr = net.listen(receiver).unwrap();
    let now = net.now();
    let peer = net.engine(sender).connect(addr, now).unwrap();
    let total = 1024 * 1024;
    net.engine(sender)
        .send(peer, Bytes::from(vec![3u8; total]), now)
        .unwrap();
    net.run_for(Duration::from_millis(500), |_, _, _, _| {});
    net.reset(sender, peer);
    let mut outcome = None;
    let mut sent = 0u64;
    net.run_for(
        Duration::from_millis(100),
        |node, _, event, _| match event {
            Event::Disconnected {
                peer: p,
                reason,
                unsent,
            } if node == sender && p == peer => {
                outcome = Some((reason, unsent));
            }
            _ => {}
        },
    );
    let (reason, unsent) = outcome.expect("sender saw the reset");
    assert_eq!(
        reason,
        DisconnectReason::Io(std::io::ErrorKind::ConnectionReset)
    );
    let stats = net.engine(sender).global_stats();
    sent += stats.sent.bytes;
    assert!(unsent > 0 && unsent < total as u64);
    assert_eq!(sent + unsent, total as u64, "accepted = written + unsent");
    net.engine(sender).check_invariants().unwrap();
}

#[test]
fn connections_past_max_peers_and_max_per_ip_are_refused_while_others_carry_on() {
    let mut net = net(11);
    let server = net
        .add_node(Config {
            max_peers: 3,
            max_peers_per_ip: 2,
            ..Config::default()
        })
        .unwrap();
    let addr = net.listen(server).unwrap();
    let a = net.add_node(Config::default()).unwrap();
    let b = net.add_node(Config::default()).unwrap();
    let now = net.now();
    let a_peers: Vec<PeerId> = (0..3)
        .map(|_| net.engine(a).connect(addr, now).unwrap())
        .collect();
    let b_peers: Vec<PeerId> = (0..2)
        .map(|_| net.engine(b).connect(addr, now).unwrap())
        .collect();
    let mut refusals = Vec::new();
    net.run_for(Duration::from_millis(50), |node, _, event, _| {
        if let (true, Event::Refused { reason, .. }) = (node == server, &event) {
            refusals.push(*reason);
        }
    });
    assert_eq!(refusals.len(), 2, "{refusals:?}");
    assert!(refusals.contains(&openp2p_core::Refusal::MaxPeersPerIp));
    assert!(refusals.contains(&openp2p_core::Refusal::MaxPeers));
    assert_eq!(net.engine(server).peer_count(), 3);
    // The admitted peers still talk.
    let now = net.now();
    // Ids are per engine: each client sends on its own peers (refused ones are already gone).
    for (node, peers) in [(a, &a_peers), (b, &b_peers)] {
        for p in peers {
            let _ = net.engine(node).send(*p, "hi".into(), now);
        }
    }
    let mut received = 0;
    net.run_for(Duration::from_millis(50), |node, _, event, _| {
        received += usize::from(node == server && matches!(event, Event::Received { .. }));
    });
    assert_eq!(received, 3);
    net.engine(server).check_invariants().unwrap();
}

#[test]
fn a_refused_connection_ends_at_the_dialler() {
    let mut net = net(12);
    let server = net
        .add_node(Config {
            max_peers: 1,
            ..Config::default()
        })
        .unwrap();
    let client = net.add_node(Config::default()).unwrap();
    let addr = net.listen(server).unwrap();
    let now = net.now();
    net.engine(client).connect(addr, now).unwrap();
    let refused = net.engine(client).connect(addr, now).unwrap();
    let mut ended = None;
    net.run_for(Duration::from_secs(1), |node, _, e, _| {
        if let Event::Disconnected { peer, reason, .. } = e {
            if node == client && peer == refused {
                ended = Some(reason);
            }
        }
    });
    assert_eq!(ended, Some(DisconnectReason::Remote));
}
