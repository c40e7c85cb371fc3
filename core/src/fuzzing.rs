//! Fuzzing harnesses: the engine's state machine, the frame decoders and the token bucket, driven
//! by arbitrary bytes and checked against models after every step.
//!
//! Each entry point takes the fuzzer's input and panics when an invariant breaks, so the same
//! harness serves `cargo fuzz` (the `fuzz/` targets are thin wrappers), the committed corpus
//! replay and the proptests in `core/tests/fuzz_*.rs`. Every input is valid: bytes are read
//! through a cursor that yields zeros once exhausted, and every choice is taken modulo its range.
//! Work per input is capped, so no input runs long. The base `Instant` comes from the caller (the
//! engine itself never reads a clock, and neither does this module).
//!
//! Input layouts (so that seeds can be written by hand):
//! - [`engine`]: 7 configuration bytes (4 more per enabled limit set), then operations, each an
//!   opcode byte (modulo 25) and its
//!   arguments. Payloads and read data come from the input itself: the same bytes serve as data
//!   and as time steps.
//! - [`frame_length_prefixed`], [`frame_delimited`]: 4 setup bytes (max frame size, segment size
//!   and pool, delimiter, split count `k`), `k` split bytes (chunk size; bit 7: the application
//!   drops what it holds afterwards), then the byte stream the remote sends.
//! - [`discovery`]: the whole input is first decoded as one beacon; then 4 configuration
//!   bytes, our node id, port and jitter seed, then operations (opcode modulo 8 and arguments).
//! - [`bucket`]: 4 setup bytes (rate and burst of a bucket and of a shared budget), then
//!   operations (opcode modulo 10 and arguments).

use crate::bucket::Bucket;
use crate::discovery::{
    Beacon, Discovery, DiscoveryConfig, NodeKey, DEFAULT_PORT, MAX_BEACON, MAX_NAME,
};
use crate::fair::{Share, SharedBudget};
use crate::{
    Config, Direction, DisconnectReason, Engine, Event, Framing, Interest, Io, Limits, ListenerId,
    PeerId, PeerState, Rate, SendError, Transfer,
};
use bytes::Bytes;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::{self, IoSlice};
use std::time::{Duration, Instant};

/// Operations per engine input, and rounds of the final flush.
const MAX_OPS: usize = 400;
const FLUSH_ROUNDS: usize = 256;
/// Received messages the application holds before it drops the oldest.
const MAX_HELD: usize = 64;
/// Announcement intervals tried by the discovery harness. `Duration::MAX` ("never announce") joins
/// once the core no longer overflows on it (/work/notes/core-requests-fuzz.md, request 3).
const DISCOVERY_INTERVALS: [Duration; 4] = [
    Duration::from_millis(0),
    Duration::from_millis(1),
    Duration::from_millis(2_000),
    Duration::from_secs(1 << 30),
];
/// Time starts this far after the base, so backward steps can go before the engine's epoch.
const START: u64 = 1_000_000_000_000;
/// Generous upper bound on one send-queue ring entry (a `Bytes` plus a flag).
const RING_ENTRY: usize = 64;
const NS: u128 = 1_000_000_000;

/// A cursor over the fuzzer's bytes; reads past the end yield zeros.
struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }
    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }
    fn u32(&mut self) -> u32 {
        u32::from_be_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
    fn pick<T: Copy>(&mut self, table: &[T]) -> T {
        table[usize::from(self.u8()) % table.len()]
    }
    /// Up to `n` bytes of input (fewer when it runs out).
    fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        head
    }
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn rate(input: &mut Input<'_>) -> Option<Rate> {
    let per_sec = input.pick(&[0u64, 1, 100, 1_000, 10_000, 65_536, 1 << 20, 10_000_000]);
    let burst = input.pick(&[0u64, 1, 7, 64, 1_000, 4_096, 100_000, 0]);
    match (per_sec, burst) {
        (0, _) => None,
        (r, 0) => Some(Rate::per_second(r)),
        (r, b) => Some(Rate::per_second(r).with_burst(b)),
    }
}

fn limits(input: &mut Input<'_>) -> Limits {
    Limits {
        upload: rate(input),
        download: rate(input),
    }
}

fn framing(input: &mut Input<'_>, default: Framing) -> Framing {
    match input.u8() % 6 {
        0 | 1 => default,
        2 => Framing::Raw,
        3 => Framing::LengthPrefixed,
        4 => Framing::Delimited(0),
        _ => Framing::Delimited(b'\n'),
    }
}

fn io_error(input: &mut Input<'_>) -> io::ErrorKind {
    input.pick(&[
        io::ErrorKind::ConnectionReset,
        io::ErrorKind::ConnectionRefused,
        io::ErrorKind::BrokenPipe,
        io::ErrorKind::TimedOut,
        io::ErrorKind::WouldBlock,
        io::ErrorKind::Interrupted,
        io::ErrorKind::Other,
    ])
}

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

/// Wire form of one message.
fn framed(framing: Framing, payload: &[u8]) -> Vec<u8> {
    let mut wire = Vec::with_capacity(payload.len() + 4);
    if framing == Framing::LengthPrefixed {
        wire.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    }
    wire.extend_from_slice(payload);
    if let Framing::Delimited(d) = framing {
        wire.push(d);
    }
    wire
}

/// The obvious decoder, fed the same chunks as the engine: the messages it expects, or the
/// length of the first oversized frame.
#[derive(Debug)]
struct Reference {
    framing: Framing,
    max: usize,
    partial: Vec<u8>,
    /// Length-prefixed: the announced payload length once the header is complete.
    need: Option<usize>,
    error: Option<u64>,
    expected: VecDeque<Vec<u8>>,
}

impl Reference {
    fn new(framing: Framing, max: usize) -> Self {
        Reference {
            framing,
            max,
            partial: Vec::new(),
            need: None,
            error: None,
            expected: VecDeque::new(),
        }
    }

    fn push(&mut self, chunk: &[u8]) {
        if self.error.is_some() || chunk.is_empty() {
            return;
        }
        match self.framing {
            Framing::Raw => self.expected.push_back(chunk.to_vec()),
            Framing::LengthPrefixed => {
                let mut rest = chunk;
                while !rest.is_empty() {
                    let want = self.need.unwrap_or(4);
                    let k = (want - self.partial.len()).min(rest.len());
                    self.partial.extend_from_slice(&rest[..k]);
                    rest = &rest[k..];
                    self.lp_progress();
                    if self.error.is_some() {
                        return;
                    }
                }
                self.lp_progress();
            }
            Framing::Delimited(d) => {
                for &b in chunk {
                    if b != d {
                        self.partial.push(b);
                        continue;
                    }
                    let message = std::mem::take(&mut self.partial);
                    if message.len() > self.max {
                        self.error = Some(message.len() as u64);
                        return;
                    }
                    self.expected.push_back(message);
                }
                if self.partial.len() > self.max {
                    self.error = Some(self.partial.len() as u64);
                }
            }
        }
    }

    fn lp_progress(&mut self) {
        loop {
            match self.need {
                None if self.partial.len() == 4 => {
                    let len = u32::from_be_bytes([
                        self.partial[0],
                        self.partial[1],
                        self.partial[2],
                        self.partial[3],
                    ]) as usize;
                    self.partial.clear();
                    if len > self.max {
                        self.error = Some(len as u64);
                        return;
                    }
                    self.need = Some(len);
                }
                Some(n) if self.partial.len() == n => {
                    self.expected.push_back(std::mem::take(&mut self.partial));
                    self.need = None;
                }
                _ => return,
            }
        }
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
        match input.u8() % 25 {
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
        let m = self.model(peer);
        assert!(!offered.is_empty(), "empty write offered");
        assert!(
            m.unwritten.iter().take(offered.len()).eq(offered.iter()),
            "{peer:?}: offered bytes are not the front of what was accepted"
        );
        if took > 0 {
            assert_eq!(result, Transfer::Moved(took));
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

    /// Drains the engine's outputs into the model and checks every invariant.
    fn settle(&mut self) {
        while let Some(io) = self.engine.poll_io() {
            self.on_io(io);
        }
        while let Some(event) = self.engine.poll_event() {
            self.on_event(event);
        }
        if let Err(e) = self.engine.check_invariants() {
            panic!("engine invariant broken: {e}");
        }
        self.check();
    }

    fn on_io(&mut self, io: Io) {
        match io {
            Io::Connect { peer, .. } => {
                let m = self.model(peer);
                assert!(
                    m.outbound && !m.connect_io,
                    "unexpected Io::Connect for {peer:?}"
                );
                m.connect_io = true;
            }
            Io::Interest { peer, interest } => {
                let m = self.model(peer);
                assert!(!m.close_io, "Io::Interest for closed {peer:?}");
                m.read_armed |= interest.read && !m.interest.read;
                m.interest = interest;
            }
            Io::ShutdownWrite { peer } => {
                let m = self.model(peer);
                assert!(
                    !m.close_io && !m.shutdown_write,
                    "bad Io::ShutdownWrite for {peer:?}"
                );
                assert!(m.unwritten.is_empty(), "FIN before the queue was flushed");
                m.shutdown_write = true;
            }
            Io::Close { peer } => {
                let m = self.model(peer);
                assert!(!m.close_io, "Io::Close twice for {peer:?}");
                m.close_io = true;
            }
            Io::Listen { listener, .. } => {
                assert_eq!(
                    self.listener_state.get(&listener),
                    Some(&0),
                    "stray Io::Listen"
                );
            }
            Io::CloseListener { listener } => {
                let state = self.listener_state.insert(listener, 2);
                assert!(
                    matches!(state, Some(0 | 1)),
                    "{listener:?}: Io::CloseListener when gone"
                );
            }
        }
    }

    fn on_event(&mut self, event: Event) {
        let low = self.config.send_queue_low_water as u64;
        let max = self.config.max_frame_size as u64;
        let (half_close, sent_events) = (self.config.half_close, self.config.sent_events);
        let Some(peer) = event.peer() else {
            match event {
                Event::ShutdownComplete => {
                    assert!(
                        self.shutdown && !self.shutdown_seen,
                        "unexpected ShutdownComplete"
                    );
                    assert_eq!(
                        self.engine.peer_count(),
                        0,
                        "ShutdownComplete with live peers"
                    );
                    self.shutdown_seen = true;
                }
                Event::Listening { listener, .. } => {
                    let state = self.listener_state.insert(listener, 1);
                    assert_eq!(state, Some(0), "{listener:?}: Listening twice or when gone");
                }
                Event::ListenFailed { listener, .. } => {
                    let state = self.listener_state.insert(listener, 2);
                    assert!(
                        matches!(state, Some(0 | 1)),
                        "{listener:?}: ListenFailed when gone"
                    );
                }
                Event::Refused { .. } => {}
                other => panic!("unexpected event {other:?}"),
            }
            return;
        };
        let m = self.model(peer);
        match event {
            Event::Connected { direction, .. } => {
                assert_eq!(
                    m.life,
                    Life::Pending,
                    "{peer:?}: Connected twice or after its end"
                );
                assert_eq!(direction == Direction::Outbound, m.outbound);
                m.life = Life::Connected;
            }
            Event::ConnectFailed { unsent, .. } => {
                assert!(
                    m.outbound && m.life == Life::Pending,
                    "{peer:?}: stray ConnectFailed"
                );
                assert_eq!(
                    (m.written, unsent),
                    (0, m.accepted),
                    "{peer:?}: wrong unsent count"
                );
                m.life = Life::Dead;
                self.unsent += unsent;
            }
            Event::Received { data, .. } => {
                assert_eq!(
                    m.life,
                    Life::Connected,
                    "{peer:?}: Received while not connected"
                );
                assert!(!m.read_closed, "{peer:?}: Received after ReadClosed");
                let expected = m.reference.expected.pop_front();
                assert_eq!(
                    expected.as_deref(),
                    Some(&data[..]),
                    "{peer:?}: wrong message"
                );
                self.held.push_back(data);
                if self.held.len() > MAX_HELD {
                    self.held.pop_front();
                }
            }
            Event::ReadClosed { .. } => {
                assert!(half_close, "{peer:?}: ReadClosed without half_close");
                assert!(
                    m.life == Life::Connected && m.eof && !m.read_closed,
                    "{peer:?}: ReadClosed"
                );
                m.read_closed = true;
            }
            Event::Sent { bytes, .. } => {
                assert_eq!(
                    m.life,
                    Life::Connected,
                    "{peer:?}: Sent while not connected"
                );
                assert!(sent_events && bytes > 0, "{peer:?}: Sent {bytes}");
                m.sent_events += bytes as u64;
            }
            Event::Writable { .. } => {
                assert!(
                    m.queue_full && m.accepted - m.written <= low,
                    "{peer:?}: early Writable"
                );
                m.queue_full = false;
                m.expect_writable = false;
            }
            Event::Disconnected { reason, unsent, .. } => {
                assert_eq!(
                    m.life,
                    Life::Connected,
                    "{peer:?}: Disconnected without Connected"
                );
                assert_eq!(
                    unsent,
                    m.accepted - m.written,
                    "{peer:?}: wrong unsent count"
                );
                if let DisconnectReason::FrameTooLarge { len, max: x } = reason {
                    assert_eq!(x, max);
                    assert_eq!(
                        m.reference.error,
                        Some(len),
                        "{peer:?}: wrong oversized frame"
                    );
                }
                m.life = Life::Dead;
                self.unsent += unsent;
            }
            other => panic!("unexpected event {other:?}"),
        }
    }

    fn check(&mut self) {
        let c = &self.config;
        let high = c.send_queue_high_water as u64;
        let spill_bound = 2 * (c.max_frame_size + c.segment_size + 8);
        let (mut live, mut queued, mut pending, mut ring_bound) = (0, 0, 0, 0);
        for (id, m) in self.ids.iter().zip(&self.peers) {
            let info = self.engine.peer(*id);
            assert_eq!(
                info.is_some(),
                m.life != Life::Dead,
                "{id:?}: engine and model disagree"
            );
            assert_eq!(
                m.close_io,
                m.life == Life::Dead,
                "{id:?}: Io::Close without its event"
            );
            assert!(
                m.reference.expected.is_empty(),
                "{id:?}: messages not delivered"
            );
            assert!(!m.expect_writable, "{id:?}: Writable missing");
            if self.config.sent_events {
                assert_eq!(
                    m.sent_events, m.written,
                    "{id:?}: Sent events disagree with writes"
                );
            }
            let Some(info) = info else { continue };
            live += 1;
            let q = m.accepted - m.written;
            queued += q;
            ring_bound += RING_ENTRY * (4 * (high.max(m.largest) as usize) + 16);
            pending += usize::from(info.state == PeerState::Connecting);
            assert_eq!(m.unwritten.len() as u64, q);
            assert!(
                m.reference.error.is_none(),
                "{id:?}: oversized frame not rejected"
            );
            assert!(q <= high.max(m.largest), "{id:?}: queue {q} over its bound");
            assert_eq!(self.engine.stats(*id).map(|s| s.queued), Some(q));
            if info.state != PeerState::Connecting {
                assert_eq!(
                    self.engine.interest(*id),
                    Some(m.interest),
                    "{id:?}: interest"
                );
            }
        }
        let g = self.engine.global_stats();
        assert_eq!(g.accepted_bytes, self.accepted);
        assert_eq!(g.unsent_bytes, self.unsent);
        assert_eq!(g.sent.bytes, self.written);
        assert_eq!(g.received.bytes, self.received);
        assert_eq!(g.queued_bytes, queued);
        assert_eq!(self.accepted, self.written + queued + self.unsent);
        assert!(live <= c.max_peers && pending <= c.max_pending_connects);
        assert!(
            g.spilled_bytes <= live * spill_bound,
            "spill {} over bound",
            g.spilled_bytes
        );
        assert!(self.engine.peer_heap_bytes() <= g.spilled_bytes + ring_bound);
        let pool = self.engine.pool_usage();
        assert!(
            pool.total == c.pool_segments && pool.lent <= live,
            "{pool:?}"
        );
        if self.shutdown && live == 0 {
            assert!(self.shutdown_seen, "shut down without ShutdownComplete");
        }
    }

    /// Lets every peer write what it can, advancing time to each wake-up, and fails if a peer
    /// with queued bytes is left with no way forward (no write interest and no deadline).
    fn flush(&mut self) {
        let mut spins = 0;
        for _ in 0..FLUSH_ROUNDS {
            self.held.clear();
            let mut progressed = false;
            for id in self.engine.peer_ids() {
                let Some(interest) = self.engine.interest(id) else {
                    continue;
                };
                let now = self.now();
                if interest.write {
                    let mut took = 0;
                    self.engine.write_to(id, now, |s: &[IoSlice<'_>]| {
                        took = s.iter().map(|s| s.len()).sum();
                        Ok(took)
                    });
                    self.record_written(id, took);
                    progressed |= took > 0;
                }
                // Reads as an edge-triggered driver: once each time read interest turns on.
                if interest.read && std::mem::take(&mut self.model(id).read_armed) {
                    self.engine
                        .read_from(id, now, |_| Err(io::ErrorKind::WouldBlock.into()));
                }
            }
            self.settle();
            if progressed {
                spins = 0;
                continue;
            }
            let Some(at) = self.engine.poll_timeout() else {
                self.check_nothing_stuck();
                return;
            };
            if at <= self.now() {
                spins += 1;
                assert!(
                    spins < 4,
                    "poll_timeout stays in the past: the driver would spin"
                );
            }
            self.advance_to(at);
            self.engine.handle_timeout(self.now());
            self.settle();
            if self.offset >= START * 1_000 {
                return;
            }
        }
    }

    /// With nothing to do and no deadline, every peer that may write has written everything,
    /// and every peer that may read wants to.
    fn check_nothing_stuck(&self) {
        for (id, m) in self.ids.iter().zip(&self.peers) {
            let Some(info) = self.engine.peer(*id) else {
                continue;
            };
            if info.state == PeerState::Connecting {
                continue;
            }
            assert!(
                m.unwritten.is_empty(),
                "{id:?}: queued bytes stuck, no wake-up"
            );
            let wants = self.engine.interest(*id).is_some_and(|i| i.read);
            assert!(
                m.eof || m.read_paused || wants,
                "{id:?}: reading paused with no wake-up"
            );
        }
    }

    /// Aborts every peer: each id must end with exactly one terminal event and the engine must
    /// return to empty, with every pool segment back.
    fn finish(&mut self) {
        let now = self.now();
        for id in self.ids.clone() {
            let _ = self.engine.abort(id, now);
            self.settle();
        }
        self.held.clear();
        assert_eq!(self.engine.peer_count(), 0);
        for (id, m) in self.ids.iter().zip(&self.peers) {
            assert_eq!(m.life, Life::Dead, "{id:?} has no terminal event");
        }
        let pool = self.engine.pool_usage();
        assert_eq!(pool.lent, 0, "{pool:?}");
    }
}

/// Feeds an arbitrary byte stream, split arbitrarily, to one accepted peer with `framing`, and
/// checks that the messages received equal a reference decode, that an oversized frame
/// disconnects with `FrameTooLarge` exactly when the reference sees it, that reading never
/// stalls once the application drops what it holds, and that spill memory stays bounded.
fn frame(data: &[u8], base: Instant, delimited: bool) {
    let mut input = Input(data);
    let max = input.pick(&[1usize, 5, 100, 511, 512, 700, 2_000, 5_000, 65_536]);
    let shape = input.u8();
    let delimiter = input.u8();
    let count = usize::from(input.u8() % 64);
    let splits = input.take(count);
    let stream = input.0;
    let framing = if delimited {
        Framing::Delimited(delimiter)
    } else {
        Framing::LengthPrefixed
    };
    let config = Config {
        framing,
        max_frame_size: max,
        segment_size: [512, 513, 640, 1_024, 4_096][usize::from(shape % 5)],
        pool_segments: 1 + usize::from((shape >> 3) & 3),
        ..Config::default()
    };
    let Ok(mut engine) = Engine::new(config.clone()) else {
        return;
    };
    let mut offset = START;
    let at = |offset: u64| base + Duration::from_nanos(offset);
    let addr = SocketAddr::new(Ipv4Addr::LOCALHOST.into(), 1);
    let Ok(listener) = engine.listen(addr) else {
        return;
    };
    let Ok(peer) = engine.handle_accepted(listener, addr, at(offset)) else {
        return;
    };
    let mut reference = Reference::new(framing, max);
    let mut held: Vec<Bytes> = Vec::new();
    let mut rest = stream;
    let mut split = 0;
    let mut closed = false;
    // Delivers the events to the reference; returns why the peer went away, if it did.
    let drain = |engine: &mut Engine, reference: &mut Reference, held: &mut Vec<Bytes>| {
        let mut gone = None;
        while let Some(event) = engine.poll_event() {
            match event {
                Event::Received { data, .. } => {
                    let expected = reference.expected.pop_front();
                    assert!(expected.as_deref() == Some(&data[..]), "message differs");
                    held.push(data);
                }
                Event::Disconnected { reason, .. } => gone = Some(reason),
                _ => {}
            }
        }
        while engine.poll_io().is_some() {}
        assert!(reference.expected.is_empty(), "messages not delivered");
        let g = engine.global_stats();
        assert!(
            g.spilled_bytes <= 2 * (max + config.segment_size + 8),
            "spill over bound"
        );
        if let Err(e) = engine.check_invariants() {
            panic!("engine invariant broken: {e}");
        }
        gone
    };
    drain(&mut engine, &mut reference, &mut held);
    let mut stalls = 0;
    while !rest.is_empty() && !closed {
        let control = splits.get(split).copied().unwrap_or(0xff);
        split += 1;
        let size = (usize::from(control & 0x7f) * 37 + 1).min(rest.len());
        let mut chunk = &rest[..size];
        rest = &rest[size..];
        while !chunk.is_empty() && !closed {
            let mut took = 0;
            let result = engine.read_from(peer, at(offset), |buf| {
                took = chunk.len().min(buf.len());
                buf[..took].copy_from_slice(&chunk[..took]);
                Ok(took)
            });
            reference.push(&chunk[..took]);
            chunk = &chunk[took..];
            if let Some(reason) = drain(&mut engine, &mut reference, &mut held) {
                let DisconnectReason::FrameTooLarge { len, .. } = reason else {
                    panic!("unexpected disconnect {reason:?}")
                };
                assert_eq!(reference.error, Some(len), "wrong oversized frame");
                closed = true;
            }
            match result {
                Transfer::Moved(_) => stalls = 0,
                Transfer::Paused => {
                    // Back-pressure: the application drops its data, time passes, reading resumes.
                    stalls += 1;
                    assert!(
                        stalls < 3,
                        "reading stalled after the application dropped its data"
                    );
                    held.clear();
                    offset += 3_000_000;
                    engine.handle_timeout(at(offset));
                }
                Transfer::Closed => assert!(closed, "read side closed without a disconnect"),
                Transfer::WouldBlock => panic!("WouldBlock from a read that succeeded"),
            }
        }
        if control & 0x80 != 0 {
            held.clear();
        }
    }
    assert!(
        closed == reference.error.is_some(),
        "oversized frame not rejected"
    );
    if closed {
        return;
    }
    // The remote closes: the peer must go away with `Remote` (after at most a pool wait).
    for _ in 0..3 {
        match engine.read_from(peer, at(offset), |_| Ok(0)) {
            Transfer::Closed => break,
            Transfer::Paused => {
                held.clear();
                offset += 3_000_000;
                engine.handle_timeout(at(offset));
            }
            other => panic!("EOF answered {other:?}"),
        }
    }
    let gone = drain(&mut engine, &mut reference, &mut held);
    assert_eq!(
        gone,
        Some(DisconnectReason::Remote),
        "EOF must close the peer"
    );
}

/// Length-prefixed framing: see `frame` for what is checked.
pub fn frame_length_prefixed(data: &[u8], base: Instant) {
    frame(data, base, false);
}

/// Delimited framing: see `frame` for what is checked.
pub fn frame_delimited(data: &[u8], base: Instant) {
    frame(data, base, true);
}

/// Drives a token bucket and a shared (global) budget through takes, rate and burst changes and
/// time steps forward and backward, checking that neither ever grants more than its initial
/// burst plus the rate in force times the time elapsed, that a bucket emptied and refilled at a
/// steady rate grants what it earned (capped at its burst, within one token), that `ready_at`
/// names an instant at which the tokens exist, and that a parked peer always has a wake-up.
///
/// Takes and grants see time go backwards; rate changes are made at the latest time seen, as the
/// engine (whose clock is monotonic) makes them.
pub fn bucket(data: &[u8]) {
    let mut input = Input(data);
    let first = rate(&mut input).unwrap_or(Rate::per_second(1));
    let mut shared_rate = rate(&mut input);
    let mut b = Bucket::new(first, 0);
    let mut shared = SharedBudget::new(shared_rate, 0);
    let mut shares = [Share::default(); 4];
    let ids: Vec<PeerId> = (0..4)
        .map(|i| PeerId {
            index: i,
            serial: u64::from(i) + 1,
        })
        .collect();
    // Models, in token-nanoseconds: what each may have earned since the start, and granted.
    let (mut t, mut latest) = (0u64, 0u64);
    let mut rate_now = first;
    let (mut b_bound, mut b_granted) = (u128::from(first.burst()) * NS, 0u128);
    let (mut s_bound, mut s_granted) = (shared_rate.map_or(0, |r| u128::from(r.burst()) * NS), 0);
    let mut emptied_at: Option<u64> = None;
    let mut ops = 0;
    while !input.is_empty() && ops < 2_000 {
        ops += 1;
        if t > latest {
            let dt = u128::from(t - latest);
            b_bound += u128::from(rate_now.bytes_per_sec()) * dt;
            s_bound += shared_rate.map_or(0, |r| u128::from(r.bytes_per_sec()) * dt);
            latest = t;
        }
        match input.u8() % 10 {
            0 => t = t.saturating_add(u64::from(input.u32()) * u64::from(input.u8() % 8 + 1)),
            1 => t = t.saturating_sub(u64::from(input.u32())),
            2 | 3 => {
                let want = u64::from(input.u32()) >> (input.u8() % 32);
                let before = b.clone().available(t);
                let got = b.take(want, t);
                assert!(
                    got <= want && got <= before,
                    "took {got} of {want}, had {before}"
                );
                b_granted += u128::from(got);
                emptied_at = None;
            }
            4 => {
                let got = b.take(u64::MAX, t);
                b_granted += u128::from(got);
                if let Some(since) = emptied_at.filter(|_| t == latest) {
                    let earned = u128::from(rate_now.bytes_per_sec()) * u128::from(t - since);
                    let burst = u128::from(rate_now.burst());
                    let (low, high) = ((earned / NS).min(burst), (earned / NS + 1).min(burst));
                    let got = u128::from(got);
                    assert!(
                        low <= got && got <= high,
                        "steady refill gave {got}, earned {low}"
                    );
                }
                emptied_at = (t == latest).then_some(t);
            }
            5 => {
                if let Some(r) = rate(&mut input) {
                    b.set_rate(r, latest);
                    rate_now = r;
                    emptied_at = None;
                }
            }
            6 => {
                let want = u64::from(input.u16());
                let mut probe = b.clone();
                let at = probe.ready_at(want, t);
                assert!(at >= t, "ready_at in the past");
                if t == latest {
                    let need = want.clamp(1, rate_now.burst());
                    assert!(probe.available(at) >= need, "ready_at({want}) too early");
                }
                let wake = b.wake_amount();
                assert!(wake >= 1 && wake <= rate_now.burst());
            }
            7 => {
                let i = usize::from(input.u8() % 4);
                let want = u64::from(input.u16());
                let got = shared.grant(&shares[i], want, t);
                assert!(got <= want);
                if got == 0 {
                    shared.park(ids[i], &mut shares[i], t);
                } else {
                    let used = got.min(u64::from(input.u16()));
                    shared.consume(&mut shares[i], used, t);
                    s_granted += u128::from(used);
                    if shared_rate.is_none() {
                        s_bound += u128::from(used) * NS;
                    }
                }
            }
            8 => {
                if let Some(round) = shared.start_round(t, Vec::new()) {
                    for p in &round.members {
                        round.admit(&mut shares[p.slot()]);
                    }
                    shared.finish_round(t);
                }
            }
            _ => {
                let r = rate(&mut input);
                for p in shared.set_rate(r, latest) {
                    shares[p.slot()].parked = false;
                }
                if let (Some(r), None) = (r, shared_rate) {
                    // A new bucket starts full.
                    s_bound += u128::from(r.burst()) * NS;
                }
                shared_rate = r;
            }
        }
        assert!(
            b.clone().available(t) <= rate_now.burst(),
            "tokens over the burst"
        );
        assert!(
            b_granted * NS <= b_bound,
            "bucket granted {b_granted}, bound {}",
            b_bound / NS
        );
        assert!(
            s_granted * NS <= s_bound,
            "budget granted {s_granted}, bound {}",
            s_bound / NS
        );
        if shares.iter().any(|s| s.parked) {
            assert!(shared.wake_at().is_some(), "a parked peer has no wake-up");
        }
    }
}

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
    let config = DiscoveryConfig {
        interval: input.pick(&DISCOVERY_INTERVALS),
        jitter: input.pick(&[ms(0), ms(1), ms(500), ms(5_000), Duration::MAX]),
        expiry: input.pick(&[ms(0), ms(1), ms(7_000), ms(3_600_000), Duration::MAX]),
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
                        false
                    }
                    None => {
                        known.insert(beacon.node, heard.clone());
                        if config.auto_connect && me < beacon.node {
                            dials.push_back((beacon.node, heard.addr));
                        }
                        true
                    }
                };
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
        assert!(d.nodes().count() <= config.max_nodes);
        assert!(
            d.nodes()
                .eq(known.iter().map(|(k, h)| (*k, h.addr, h.name.as_str()))),
            "known nodes differ from the model"
        );
        assert_eq!(d.ignored(), ignored);
    }
}

fn op_is_jump(byte: u8) -> bool {
    byte & 1 == 1
}
