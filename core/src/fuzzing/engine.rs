//! The engine harness: commands, driver byte events and time steps against one engine, with a
//! model of every peer (see [`engine`]).

mod checks;

use super::reference::{framed, Reference};
use super::{framing, io_error, limits, Input, START};
use crate::{
    Config, Engine, Event, Framing, Interest, Limits, ListenerId, PeerId, SendError, Transfer,
};
use bytes::Bytes;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::collections::{HashMap, VecDeque};
use std::io::{self, IoSlice};
use std::time::{Duration, Instant};

/// Operations per engine input, and rounds of the final flush.
const MAX_OPS: usize = 400;
const FLUSH_ROUNDS: usize = 256;
/// Received messages the application holds before it drops the oldest.
const MAX_HELD: usize = 64;
/// Generous upper bound on one send-queue ring entry (a `Bytes` plus a flag).
const RING_ENTRY: usize = 64;

fn engine_config(input: &mut Input<'_>) -> Config {
    let shape = input.u8();
    let high = input.pick(&[1usize, 16, 256, 1_024, 4_096, 65_536]);
    let low = high * usize::from(input.u8() % 5) / 4;
    let sizes = input.u8();
    let times = input.u8();
    let ms = Duration::from_millis;
    let framing = framing(input, Framing::LengthPrefixed);
    let switches = input.u8();
    Config {
        half_close: switches & 1 != 0,
        sent_events: switches & 2 == 0,
        max_peers: 1 + usize::from(shape & 7),
        max_pending_connects: 1 + usize::from((shape >> 3) & 3),
        max_peers_per_ip: 1 + usize::from(shape >> 5),
        send_queue_high_water: high,
        send_queue_low_water: low,
        max_frame_size: [1, 16, 300, 1_000, 5_000, 70_000][usize::from(sizes % 6)],
        segment_size: [512, 600, 1_024, 4_096][usize::from((sizes >> 3) & 3)],
        pool_segments: 1 + usize::from(sizes >> 5),
        connect_timeout: [ms(1), ms(1_000), ms(10_000), ms(60_000)][usize::from(times & 3)],
        idle_timeout: [None, Some(ms(5)), Some(ms(1_000)), Some(ms(300_000))]
            [usize::from((times >> 2) & 3)],
        linger_timeout: [ms(1), ms(1_000), ms(10_000), ms(120_000)][usize::from((times >> 4) & 3)],
        framing,
        peer_limits: if times & 0x40 != 0 {
            limits(input)
        } else {
            Limits::UNLIMITED
        },
        global_limits: if times & 0x80 != 0 {
            limits(input)
        } else {
            Limits::UNLIMITED
        },
        ..Config::default()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Life {
    /// `connect` returned or `handle_accepted` succeeded; `Connected` not seen yet.
    Pending,
    Connected,
    Dead,
}

/// What the harness knows about one peer, from its own calls and the engine's outputs.
#[derive(Debug)]
struct PeerModel {
    outbound: bool,
    framing: Framing,
    life: Life,
    connect_io: bool,
    close_io: bool,
    shutdown_write: bool,
    interest: Interest,
    accepted: u64,
    written: u64,
    /// Largest framed message accepted (a lone message may exceed the high-water mark).
    largest: u64,
    /// Framed bytes accepted and not yet written, in order.
    unwritten: VecDeque<u8>,
    queue_full: bool,
    expect_writable: bool,
    eof: bool,
    read_closed: bool,
    /// Read interest turned on since the last read attempt: an edge-triggered driver reads now.
    read_armed: bool,
    /// The application paused reading (`pause_reading`).
    read_paused: bool,
    /// Bytes reported by `Event::Sent`.
    sent_events: u64,
    reference: Reference,
}

/// The engine harness: one engine, the model, and the application's held data.
struct Harness {
    engine: Engine,
    config: Config,
    base: Instant,
    offset: u64,
    peers: Vec<PeerModel>,
    ids: Vec<PeerId>,
    index: HashMap<PeerId, usize>,
    listeners: Vec<ListenerId>,
    /// Each listener's life: 0 asked for, 1 bound, 2 gone.
    listener_state: HashMap<ListenerId, u8>,
    held: VecDeque<Bytes>,
    accepted: u64,
    written: u64,
    unsent: u64,
    received: u64,
    shutdown: bool,
    shutdown_seen: bool,
    /// `AcceptFailed` events due (one per accept error on a live listener) and seen.
    accept_errors_expected: u64,
    accept_errors_seen: u64,
    /// Events already taken from the engine in this step, to be checked before any others.
    early: VecDeque<Event>,
}

/// Runs the engine state machine on an arbitrary sequence of application commands, driver byte
/// events and time steps, checking after every step: no panic, [`Engine::check_invariants`],
/// bytes accepted = written + queued + reported unsent (per peer and in total), event pairing
/// (one `Connected` or `ConnectFailed` per connect, one `Disconnected` per `Connected`, nothing
/// after it), the bytes written equal the framed bytes accepted, the messages received equal a
/// reference decode of the bytes read, interest matching the `Io::Interest` stream, and memory
/// within the configured limits. It ends by flushing (checking that no throttled peer is left
/// without a wake-up) and aborting every peer.
pub fn engine(data: &[u8], base: Instant) {
    let mut input = Input(data);
    let config = engine_config(&mut input);
    let Ok(engine) = Engine::new(config.clone()) else {
        return;
    };
    let mut h = Harness {
        engine,
        config,
        base,
        offset: START,
        peers: Vec::new(),
        ids: Vec::new(),
        index: HashMap::new(),
        listeners: Vec::new(),
        listener_state: HashMap::new(),
        held: VecDeque::new(),
        accepted: 0,
        written: 0,
        unsent: 0,
        received: 0,
        shutdown: false,
        shutdown_seen: false,
        accept_errors_expected: 0,
        accept_errors_seen: 0,
        early: VecDeque::new(),
    };
    let mut ops = 0;
    while !input.is_empty() && ops < MAX_OPS {
        ops += 1;
        h.step(&mut input);
        h.settle();
    }
    h.flush();
    h.finish();
}

impl Harness {
    fn now(&self) -> Instant {
        self.base + Duration::from_nanos(self.offset)
    }

    fn pick_peer(&self, input: &mut Input<'_>) -> Option<PeerId> {
        let i = usize::from(input.u8());
        (!self.ids.is_empty()).then(|| self.ids[i % self.ids.len()])
    }

    fn pick_listener(&self, input: &mut Input<'_>) -> Option<ListenerId> {
        let i = usize::from(input.u8());
        (!self.listeners.is_empty()).then(|| self.listeners[i % self.listeners.len()])
    }

    fn model(&mut self, peer: PeerId) -> &mut PeerModel {
        match self.index.get(&peer) {
            Some(&i) => &mut self.peers[i],
            None => panic!("the engine named {peer:?}, which it never issued"),
        }
    }

    fn add_peer(&mut self, id: PeerId, outbound: bool, framing: Framing) {
        assert!(!self.index.contains_key(&id), "{id:?} issued twice");
        self.index.insert(id, self.peers.len());
        self.ids.push(id);
        self.peers.push(PeerModel {
            outbound,
            framing,
            life: Life::Pending,
            connect_io: false,
            close_io: false,
            shutdown_write: false,
            interest: Interest::default(),
            accepted: 0,
            written: 0,
            largest: 0,
            unwritten: VecDeque::new(),
            queue_full: false,
            expect_writable: false,
            eof: false,
            read_closed: false,
            read_armed: false,
            read_paused: false,
            sent_events: 0,
            reference: Reference::new(framing, self.config.max_frame_size),
        });
    }

    fn payload(&self, input: &mut Input<'_>, peer: Option<PeerId>) -> Vec<u8> {
        let len = usize::from(input.u16()) % 9_000;
        let mode = input.u8();
        let mut data = if mode & 1 == 0 {
            input.take(len).to_vec()
        } else {
            (0..len).map(|i| mode.wrapping_add(i as u8)).collect()
        };
        let framing = peer
            .and_then(|p| self.index.get(&p))
            .map(|&i| self.peers[i].framing);
        if let (true, Some(Framing::Delimited(d))) = (mode & 2 != 0, framing) {
            data.iter_mut().filter(|b| **b == d).for_each(|b| *b ^= 1);
        }
        data
    }

    fn step(&mut self, input: &mut Input<'_>) {
        let now = self.now();
        match input.u8() % 27 {
            0 => {
                let framing = framing(input, self.config.framing);
                let addr = SocketAddr::new(Ipv4Addr::LOCALHOST.into(), 0);
                match self.engine.listen_with(addr, framing) {
                    Ok(l) => {
                        assert!(
                            self.listener_state.insert(l, 0).is_none(),
                            "{l:?} issued twice"
                        );
                        self.listeners.push(l);
                    }
                    Err(_) => assert!(self.shutdown, "listen refused before shutdown"),
                }
            }
            1 => {
                let addr =
                    SocketAddr::new(Ipv4Addr::LOCALHOST.into(), 4000 + u16::from(input.u8()));
                if let Some(l) = self.pick_listener(input) {
                    self.engine.handle_listening(l, addr, now);
                }
            }
            2 => {
                let (l, error) = (self.pick_listener(input), io_error(input));
                if let Some(l) = l {
                    self.engine.handle_listen_failed(l, error, now);
                }
            }
            3 => {
                if let Some(l) = self.pick_listener(input) {
                    let closed = self.engine.close_listener(l).is_ok();
                    assert_eq!(
                        closed,
                        self.listener_state.get(&l) != Some(&2),
                        "{l:?}: close"
                    );
                }
            }
            4 => self.accept(input, now),
            5 => {
                let framing = framing(input, self.config.framing);
                let ip = Ipv4Addr::new(192, 0, 2, 1 + input.u8() % 4);
                let addr = SocketAddr::new(ip.into(), 7000);
                let before = self.engine.peer_count();
                match self.engine.connect_with(addr, framing, now) {
                    Ok(id) => self.add_peer(id, true, framing),
                    Err(crate::ConnectError::MaxPeers) => {
                        assert!(before >= self.config.max_peers, "MaxPeers below the limit")
                    }
                    Err(_) => {}
                }
            }
            6 => {
                if let Some(p) = self.pick_peer(input) {
                    self.engine.handle_connected(p, now);
                }
            }
            7 => {
                let (p, error) = (self.pick_peer(input), io_error(input));
                if let Some(p) = p {
                    self.engine.handle_connect_failed(p, error, now);
                }
            }
            8 => {
                let peer = self.pick_peer(input);
                let data = self.payload(input, peer);
                if let Some(peer) = peer {
                    let result = self.engine.send(peer, Bytes::from(data.clone()), now);
                    self.on_send(peer, &data, result);
                }
            }
            9 => {
                let mask = input.u8();
                let data = self.payload(input, None);
                let peers: Vec<PeerId> = self
                    .ids
                    .iter()
                    .rev()
                    .take(8)
                    .enumerate()
                    .filter(|(i, _)| mask & (1 << i) != 0)
                    .map(|(_, p)| *p)
                    .collect();
                let failures = self
                    .engine
                    .send_many(&peers, Bytes::from(data.clone()), now);
                for &peer in &peers {
                    let result = match failures.iter().find(|(p, _)| *p == peer) {
                        Some((_, e)) => Err(*e),
                        None => Ok(()),
                    };
                    self.on_send(peer, &data, result);
                }
            }
            10 => {
                if let Some(p) = self.pick_peer(input) {
                    let _ = self.engine.disconnect(p, now);
                }
            }
            11 => {
                if let Some(p) = self.pick_peer(input) {
                    let _ = self.engine.abort(p, now);
                }
            }
            12 => {
                let (p, limits) = (self.pick_peer(input), limits(input));
                if let Some(p) = p {
                    let _ = self.engine.set_limits(p, limits, now);
                }
            }
            13 => {
                let limits = limits(input);
                self.engine.set_global_limits(limits, now);
            }
            14 => {
                if input.u8() % 4 == 0 {
                    self.shutdown = true;
                    self.engine.shutdown(now);
                }
            }
            24 => {
                let (p, paused) = (self.pick_peer(input), input.u8() & 1 == 1);
                if let Some(p) = p {
                    if self.engine.pause_reading(p, paused).is_ok() {
                        self.model(p).read_paused = paused;
                    }
                }
            }
            25 => {
                let (l, error) = (self.pick_listener(input), io_error(input));
                if let Some(l) = l {
                    self.engine.handle_accept_error(l, error, now);
                    let live = matches!(self.listener_state.get(&l), Some(0 | 1));
                    self.accept_errors_expected += u64::from(live);
                }
            }
            26 => {
                let peer = self.pick_peer(input);
                let data = self.payload(input, peer);
                if let Some(peer) = peer {
                    self.send_or_report(peer, data, now);
                }
            }
            15 | 16 => self.read(input, now),
            17 | 18 => self.write(input, now),
            19 => {
                let (p, error) = (self.pick_peer(input), io_error(input));
                if let Some(p) = p {
                    self.engine.handle_error(p, error, now);
                }
            }
            20 => {
                let step = input.pick(&[
                    0u64,
                    1,
                    1_000,
                    1_000_000,
                    2_000_000,
                    50_000_000,
                    1_000_000_000,
                    10_000_000_000,
                    400_000_000_000,
                ]);
                let extra = u64::from(input.u8()) * 1_000_000;
                self.offset = (self.offset + step + extra).min(START * 1_000);
            }
            21 => {
                let back = u64::from(input.u16()) * 1_000_000_000;
                self.offset = self.offset.saturating_sub(back);
            }
            22 => {
                if input.u8() & 1 == 1 {
                    if let Some(at) = self.engine.poll_timeout() {
                        self.advance_to(at);
                    }
                }
                self.engine.handle_timeout(self.now());
            }
            _ => {
                let n = usize::from(input.u8());
                for _ in 0..n.min(self.held.len()) {
                    self.held.pop_front();
                }
            }
        }
    }

    fn advance_to(&mut self, at: Instant) {
        let target = at.saturating_duration_since(self.base).as_nanos();
        let target = u64::try_from(target).unwrap_or(u64::MAX).min(START * 1_000);
        self.offset = self.offset.max(target);
    }

    fn accept(&mut self, input: &mut Input<'_>, now: Instant) {
        let Some(l) = self.pick_listener(input) else {
            return;
        };
        let ip: IpAddr = match input.u8() % 3 {
            0 => Ipv4Addr::LOCALHOST.into(),
            1 => Ipv4Addr::new(127, 0, 0, 2).into(),
            _ => Ipv6Addr::LOCALHOST.into(),
        };
        let remote = SocketAddr::new(ip, 5000 + u16::from(input.u8()));
        let before = self.engine.peer_count();
        let result = self.engine.handle_accepted(l, remote, now);
        let gone = self.listener_state.get(&l) == Some(&2);
        match result {
            Ok(_) => assert!(!gone, "{l:?}: accepted on a closed listener"),
            Err(crate::Refusal::UnknownListener) => assert!(gone, "{l:?}: live listener unknown"),
            Err(_) => {}
        }
        match result {
            Ok(id) => {
                let framing = self
                    .engine
                    .peer(id)
                    .map_or(self.config.framing, |p| p.framing);
                self.add_peer(id, false, framing);
            }
            Err(crate::Refusal::MaxPeers) => {
                assert!(
                    before >= self.config.max_peers,
                    "MaxPeers refusal below the limit"
                )
            }
            Err(_) => {}
        }
    }

    /// `send_or_report`: a refusal must come back as `Event::SendRefused` carrying the message,
    /// in order with the peer's other events, also for a dead peer (as `UnknownPeer`).
    fn send_or_report(&mut self, peer: PeerId, data: Vec<u8>, now: Instant) {
        self.engine
            .send_or_report(peer, Bytes::from(data.clone()), now);
        let events: VecDeque<Event> = std::iter::from_fn(|| self.engine.poll_event()).collect();
        let refusal = events.iter().find_map(|e| match e {
            Event::SendRefused {
                peer: p,
                error,
                data: d,
            } if *p == peer => Some((*error, d)),
            _ => None,
        });
        let result = match refusal {
            Some((error, returned)) => {
                assert_eq!(
                    &returned[..],
                    &data[..],
                    "SendRefused hands back another message"
                );
                Err(error)
            }
            None => {
                assert_ne!(
                    self.model(peer).life,
                    Life::Dead,
                    "a message for a dead peer dropped without SendRefused"
                );
                Ok(())
            }
        };
        self.on_send(peer, &data, result);
        self.early = events;
    }

    /// Checks `send`'s answer against the documented rules and records what it accepted.
    fn on_send(&mut self, peer: PeerId, data: &[u8], result: Result<(), SendError>) {
        let high = self.config.send_queue_high_water as u64;
        let max = self.config.max_frame_size;
        let (framing, queued) = {
            let m = self.model(peer);
            (m.framing, m.accepted - m.written)
        };
        if !matches!(result, Err(SendError::UnknownPeer | SendError::Closing)) {
            // Drivers answer sends from a mirror of the queue with `Config::admit`: it must agree.
            let admitted = self.config.admit(framing, data, queued).map(|_| ());
            assert_eq!(
                admitted, result,
                "{peer:?}: Config::admit disagrees with send"
            );
        }
        let m = self.model(peer);
        let wire = framed(framing, data);
        let len = wire.len() as u64;
        let framed_mode = framing != Framing::Raw;
        match result {
            Ok(()) => {
                assert_ne!(m.life, Life::Dead, "send to dead {peer:?} accepted");
                assert!(!framed_mode || data.len() <= max, "oversized send accepted");
                assert!(
                    queued == 0 || queued + len <= high,
                    "send past the high-water mark"
                );
                if let Framing::Delimited(d) = m.framing {
                    assert!(!data.contains(&d), "payload with the delimiter accepted");
                }
                m.accepted += len;
                m.largest = m.largest.max(len);
                m.unwritten.extend(wire);
                self.accepted += len;
            }
            Err(SendError::UnknownPeer) => assert_eq!(m.life, Life::Dead, "live peer unknown"),
            Err(SendError::Closing) => assert_ne!(m.life, Life::Dead, "dead peer closing"),
            Err(SendError::FrameTooLarge { len: l, max: x }) => {
                assert!(framed_mode && l == data.len() as u64 && l > x && x == max as u64);
            }
            Err(SendError::DelimiterInPayload) => {
                assert!(matches!(m.framing, Framing::Delimited(d) if data.contains(&d)));
            }
            Err(SendError::QueueFull { queued: q, limit }) => {
                assert!(
                    q == queued && limit == high && q > 0 && q + len > high,
                    "bad QueueFull"
                );
                m.queue_full = true;
            }
        }
    }

    fn read(&mut self, input: &mut Input<'_>, now: Instant) {
        let Some(peer) = self.pick_peer(input) else {
            return;
        };
        let mode = input.u8();
        let want = usize::from(input.u16());
        let data = input.take(want);
        let error = io_error(input);
        let wanted = self.engine.interest(peer).is_some_and(|i| i.read);
        let mut called = false;
        let mut took = 0;
        let result = self.engine.read_from(peer, now, |buf| {
            called = true;
            match mode % 8 {
                0 => Ok(0),
                1 => Err(io::ErrorKind::WouldBlock.into()),
                2 => Err(io::ErrorKind::Interrupted.into()),
                3 => Err(error.into()),
                4 => {
                    // A lying driver: claims more than the buffer holds.
                    let k = data.len().min(buf.len());
                    buf[..k].copy_from_slice(&data[..k]);
                    buf[k..].fill(0x5a);
                    took = buf.len();
                    Ok(buf.len() + 100)
                }
                _ => {
                    let k = data.len().min(buf.len());
                    buf[..k].copy_from_slice(&data[..k]);
                    took = k;
                    Ok(k)
                }
            }
        });
        if called {
            assert!(
                wanted,
                "{peer:?} was read although its interest had no read"
            );
        } else {
            assert!(
                matches!(result, Transfer::Paused | Transfer::Closed),
                "{result:?} uncalled"
            );
            return;
        }
        let Some(&i) = self.index.get(&peer) else {
            return;
        };
        let m = &mut self.peers[i];
        if result == Transfer::WouldBlock {
            m.read_armed = false;
        }
        if took > 0 {
            let mut chunk = data[..took.min(data.len())].to_vec();
            chunk.resize(took, 0x5a);
            m.reference.push(&chunk);
            self.received += took as u64;
            assert!(
                matches!(result, Transfer::Moved(n) if n == took) || m.reference.error.is_some()
            );
        } else if mode % 8 == 0 || (mode % 8 >= 4) {
            m.eof = true;
            assert_eq!(result, Transfer::Closed, "EOF must close the read side");
        }
    }

    fn write(&mut self, input: &mut Input<'_>, now: Instant) {
        let Some(peer) = self.pick_peer(input) else {
            return;
        };
        let mode = input.u8();
        let partial = usize::from(input.u16());
        let error = io_error(input);
        let wanted = self.engine.interest(peer).is_some_and(|i| i.write);
        let mut offered = None;
        let mut took = 0;
        let result = self.engine.write_to(peer, now, |slices: &[IoSlice<'_>]| {
            let bytes: Vec<u8> = slices.iter().flat_map(|s| s.iter().copied()).collect();
            let n = bytes.len();
            offered = Some(bytes);
            match mode % 8 {
                0 => Ok(0),
                1 => Err(io::ErrorKind::WouldBlock.into()),
                2 => Err(io::ErrorKind::Interrupted.into()),
                3 => Err(error.into()),
                4 => {
                    took = n;
                    Ok(n + 7)
                }
                5 => {
                    took = partial % (n + 1);
                    Ok(took)
                }
                _ => {
                    took = n;
                    Ok(n)
                }
            }
        });
        let Some(offered) = offered else {
            assert!(
                matches!(result, Transfer::Paused | Transfer::Closed),
                "{result:?} uncalled"
            );
            return;
        };
        assert!(
            wanted,
            "{peer:?} was written although its interest had no write"
        );
        let gone = self.engine.peer(peer).is_none();
        let m = self.model(peer);
        assert!(!offered.is_empty(), "empty write offered");
        assert!(
            m.unwritten.iter().take(offered.len()).eq(offered.iter()),
            "{peer:?}: offered bytes are not the front of what was accepted"
        );
        if took > 0 {
            // `Closed` when this write finished a graceful close.
            let expected = if gone {
                Transfer::Closed
            } else {
                Transfer::Moved(took)
            };
            assert_eq!(
                result, expected,
                "{peer:?}: write of {took} answered {result:?}"
            );
            self.record_written(peer, took);
        }
    }

    /// The socket took `n` bytes of the peer's queue.
    fn record_written(&mut self, peer: PeerId, n: usize) {
        if n == 0 {
            return;
        }
        let low = self.config.send_queue_low_water as u64;
        let m = self.model(peer);
        assert!(n <= m.unwritten.len(), "{peer:?}: wrote more than accepted");
        m.unwritten.drain(..n);
        m.written += n as u64;
        m.expect_writable = m.queue_full && m.accepted - m.written <= low;
        self.written += n as u64;
    }
}
