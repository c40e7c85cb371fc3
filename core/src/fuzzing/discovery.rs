//! The discovery harness: the beacon codec and the LAN discovery state machine.

use super::{Input, START};
use crate::discovery::{
    Beacon, Discovery, DiscoveryConfig, NodeKey, DEFAULT_PORT, MAX_BEACON, MAX_NAME, MIN_INTERVAL,
};
use crate::Event;
use core::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

/// Announcement intervals tried by the discovery harness. `Duration::MAX` ("never announce") joins
/// once the core no longer overflows on it (/work/notes/core-requests-fuzz.md, request 3).
/// All are at least the 10 ms the core accepts, and the expiry is always at least one interval,
/// so the configuration the harness models is the one the core uses.
const DISCOVERY_INTERVALS: [Duration; 5] = [
    Duration::from_millis(10),
    Duration::from_millis(25),
    Duration::from_millis(2_000),
    Duration::from_secs(1 << 30),
    // Overflowed the announce schedule once (fixed; regression input
    // fuzz/corpus/discovery/regress-interval-max).
    Duration::MAX,
];

/// What the discovery harness expects one known node to look like.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Heard {
    addr: SocketAddr,
    name: String,
    last_seen: u64,
}

/// Checks the beacon codec on one datagram: decoding never panics, and whatever decodes
/// re-encodes to the same bytes.
fn beacon_round_trip(datagram: &[u8]) -> Option<Beacon> {
    let beacon = Beacon::decode(datagram).ok()?;
    let mut out = [0u8; MAX_BEACON];
    let n = beacon.encode(&mut out);
    assert_eq!(
        &out[..n],
        datagram,
        "a decoded beacon re-encodes differently"
    );
    Some(beacon)
}

/// Drives LAN discovery with well-formed, mutated and arbitrary datagrams from a few sources,
/// announcement polls, timeouts and time steps (forward and backward), checking it against a
/// model after every step: the beacon codec round-trips, malformed datagrams change nothing, our
/// own beacon is ignored, `Discovered` comes for a new or changed node only and `Lost` only for a
/// known one once its expiry has passed, the table never exceeds `max_nodes` (beacons over it are
/// counted as ignored), and `poll_timeout` never lets a driver spin.
pub fn discovery(data: &[u8], base: Instant) {
    beacon_round_trip(data);
    let mut input = Input(data);
    let ms = Duration::from_millis;
    let shape = input.u8();
    let interval = input.pick(&DISCOVERY_INTERVALS);
    let config = DiscoveryConfig {
        interval,
        jitter: input.pick(&[ms(0), ms(1), ms(500), ms(5_000), Duration::MAX]),
        expiry: match input.u8() % 4 {
            3 => Duration::MAX,
            k => interval.saturating_mul(1 + 2 * u32::from(k)),
        },
        max_nodes: 1 + usize::from(shape % 6),
        auto_connect: shape & 0x80 != 0,
    };
    let me = NodeKey([input.u8() % 4; 16]);
    let mine = Beacon {
        node: me,
        tcp_port: input.u16(),
        name: "me".into(),
    };
    let seed = u64::from(input.u32());
    let mut d = Discovery::new(config, mine.clone(), seed);
    let mut known: BTreeMap<NodeKey, Heard> = BTreeMap::new();
    let mut dials = VecDeque::new();
    // The dialling side's view of each offered node (see `Discovery::dial_outcome`).
    let mut links: BTreeMap<NodeKey, Link> = BTreeMap::new();
    let interval_ns =
        u64::try_from(config.interval.max(MIN_INTERVAL).as_nanos()).unwrap_or(u64::MAX);
    let (mut ignored, mut offset, mut latest, mut epoch) = (0u64, START, 0u64, None::<u64>);
    let mut ops = 0;
    while !input.is_empty() && ops < 500 {
        ops += 1;
        let now = base + Duration::from_nanos(offset);
        // The discovery clock: nanoseconds since its first input, never going back.
        let mut observe = |offset: u64| {
            let epoch = *epoch.get_or_insert(offset);
            latest = latest.max(offset.saturating_sub(epoch));
            latest
        };
        let src = SocketAddr::new(
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1 + input.u8() % 3)),
            DEFAULT_PORT,
        );
        match input.u8() % 8 {
            op @ 0..=2 => {
                let datagram = match op {
                    0 | 1 => {
                        let node = NodeKey([input.u8() % 6; 16]);
                        let tcp_port = input.u16();
                        let len = usize::from(input.u8() % 80);
                        let name = String::from_utf8_lossy(input.take(len)).into_owned();
                        let mut out = [0u8; MAX_BEACON];
                        let n = Beacon {
                            node,
                            tcp_port,
                            name: name.clone(),
                        }
                        .encode(&mut out);
                        let mut datagram = out[..n].to_vec();
                        if op == 1 && !datagram.is_empty() {
                            let at = usize::from(input.u8()) % datagram.len();
                            datagram[at] ^= input.u8() | 1;
                        }
                        datagram
                    }
                    _ => {
                        let len = usize::from(input.u8());
                        input.take(len).to_vec()
                    }
                };
                let decoded = beacon_round_trip(&datagram);
                let result = d.handle_datagram(src, &datagram, now);
                let t = observe(offset);
                assert_eq!(
                    result.is_ok(),
                    decoded.is_some(),
                    "handle_datagram and decode disagree"
                );
                let Some(beacon) = decoded else { continue };
                assert!(beacon.name.len() <= MAX_NAME);
                if beacon.node == me {
                    continue;
                }
                let heard = Heard {
                    addr: SocketAddr::new(src.ip(), beacon.tcp_port),
                    name: beacon.name,
                    last_seen: t,
                };
                let full = known.len() >= config.max_nodes;
                let changed = match known.get_mut(&beacon.node) {
                    Some(old) => {
                        let changed = old.addr != heard.addr || old.name != heard.name;
                        *old = heard.clone();
                        changed
                    }
                    None if full => {
                        ignored += 1;
                        assert_eq!(d.poll_event(), None, "event for an ignored node");
                        continue;
                    }
                    None => {
                        known.insert(beacon.node, heard.clone());
                        true
                    }
                };
                if config.auto_connect && me < beacon.node {
                    let due = match links.get(&beacon.node) {
                        None => true,
                        Some(Link::Apart(retry_at)) => t >= *retry_at,
                        Some(Link::Dialing | Link::Connected) => false,
                    };
                    if due {
                        links.insert(beacon.node, Link::Dialing);
                        dials.push_back((beacon.node, heard.addr));
                    }
                }
                let expected = changed.then(|| Event::Discovered {
                    node: beacon.node,
                    addr: heard.addr,
                    name: heard.name,
                });
                assert_eq!(d.poll_event(), expected, "wrong discovery event");
            }
            3 => {
                let sent = d.poll_transmit(now).map(<[u8]>::to_vec);
                observe(offset);
                if let Some(sent) = sent {
                    let beacon = beacon_round_trip(&sent);
                    assert_eq!(beacon.as_ref(), Some(&mine), "we announce someone else");
                }
            }
            4 | 5 => {
                if op_is_jump(input.u8()) {
                    if let Some(at) = d.poll_timeout() {
                        let target = at.saturating_duration_since(base).as_nanos();
                        let target = u64::try_from(target).unwrap_or(u64::MAX).min(START * 1_000);
                        offset = offset.max(target);
                    }
                }
                let now = base + Duration::from_nanos(offset);
                d.handle_timeout(now);
                let t = observe(offset);
                let expiry = u64::try_from(config.expiry.as_nanos()).unwrap_or(u64::MAX);
                let gone: Vec<NodeKey> = known
                    .iter()
                    .filter(|(_, h)| h.last_seen.saturating_add(expiry) <= t)
                    .map(|(k, _)| *k)
                    .collect();
                for node in gone {
                    if links.get(&node) != Some(&Link::Connected) {
                        links.remove(&node);
                    }
                    let addr = known.remove(&node).map(|h| h.addr);
                    assert!(
                        matches!(d.poll_event(), Some(Event::Lost { node: n, addr: a }) if n == node && Some(a) == addr),
                        "{node:?} not lost"
                    );
                }
                if d.poll_transmit(now).is_some() {
                    continue;
                }
                if let Some(at) = d.poll_timeout() {
                    assert!(at > now || expiry == 0, "poll_timeout stays in the past");
                }
            }
            6 => {
                offset = offset
                    .saturating_add(u64::from(input.u32()) * 1_000)
                    .min(START * 1_000)
            }
            _ => offset = offset.saturating_sub(u64::from(input.u32()) * 1_000),
        }
        assert_eq!(d.poll_event(), None, "unexpected discovery event");
        // The application dials now and then; what it is offered must match, in order.
        if input.u8() & 1 == 1 {
            while let Some(dial) = d.poll_dial() {
                assert_eq!(Some(dial), dials.pop_front(), "unexpected dial offer");
            }
            assert!(dials.is_empty(), "dial offers missing: {dials:?}");
        }
        // ... and reports what became of a dial (or of its connection), or of a node it never
        // dialled.
        let report = input.u8();
        if report & 3 != 0 {
            let node = NodeKey([(report >> 2) % 6; 16]);
            let connected = report & 3 == 1;
            d.dial_outcome(node, connected, base + Duration::from_nanos(offset));
            let t = observe(offset);
            if let Some(link) = links.get_mut(&node) {
                if connected {
                    *link = Link::Connected;
                } else if known.contains_key(&node) {
                    *link = Link::Apart(t.saturating_add(interval_ns));
                } else {
                    links.remove(&node);
                }
            }
        }
        assert!(d.nodes().count() <= config.max_nodes);
        assert!(
            d.nodes()
                .eq(known.iter().map(|(k, h)| (*k, h.addr, h.name.as_str()))),
            "known nodes differ from the model"
        );
        assert_eq!(d.ignored(), ignored);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    Dialing,
    Connected,
    Apart(u64),
}

fn op_is_jump(byte: u8) -> bool {
    byte & 1 == 1
}
