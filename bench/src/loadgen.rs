//! The load generator of the echo and churn workloads: one raw mio thread playing every client,
//! the same for every subject, so that only the server under test differs between runs.
//!
//! Echo: `peers` connections each keep one `size`-byte request in flight; every completed round
//! trip's latency goes into a 1 µs-resolution histogram. Churn: `clients` slots each connect,
//! send `size` bytes, read them back and close, then start over. The client closes with
//! `SO_LINGER` 0 (a reset, no TIME_WAIT), so that loopback's ephemeral ports and TIME_WAIT
//! buckets do not cap the rate; the server sees the reset as the end of the connection.

use crate::cpu::{thread_cpu_ns, Mark};
use crate::subject::BenchResult;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// No round trip or connection completing for this long fails the run (the server hangs).
const STALL: Duration = Duration::from_secs(10);

/// Shape of an echo run.
#[derive(Debug, Clone, Copy)]
pub struct EchoLoad {
    /// Connections, each with one request in flight.
    pub peers: usize,
    /// Request (and response) size in bytes.
    pub size: usize,
    /// Untimed time first.
    pub warmup: Duration,
    /// Timed time after it.
    pub measure: Duration,
}

/// What an echo run measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EchoResult {
    /// Completed round trips per second (all connections).
    pub trips_per_sec: f64,
    /// Median round-trip latency, microseconds.
    pub p50_us: f64,
    /// 99th percentile round-trip latency, microseconds.
    pub p99_us: f64,
    /// CPU time of the server under test per round trip, microseconds: every thread of the
    /// process but the load generator's.
    pub server_cpu_us_per_trip: f64,
}

/// Round-trip latencies: 1 µs buckets up to 65.536 ms, then 1 ms buckets up to 10 s (longer
/// ones count as 10 s).
#[derive(Debug, Clone)]
pub struct Histogram {
    buckets: Vec<u64>,
    count: u64,
}

/// Where the 1 µs buckets end and the 1 ms buckets begin.
const FINE: u64 = 1 << 16;
/// Number of 1 ms buckets.
const COARSE: u64 = 10_000;

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            buckets: vec![0; (FINE + COARSE) as usize],
            count: 0,
        }
    }
}

impl Histogram {
    /// Adds one latency.
    pub fn record(&mut self, latency: Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        let bucket = if us < FINE {
            us
        } else {
            FINE + ((us - FINE) / 1000).min(COARSE - 1)
        };
        self.buckets[bucket as usize] += 1;
        self.count += 1;
    }

    /// The latency (µs) below or at which a fraction `q` (0..=1) of the samples lie (to the
    /// bucket's resolution); 0 when empty.
    pub fn quantile(&self, q: f64) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, &n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                let i = i as u64;
                return if i < FINE {
                    i as f64
                } else {
                    (FINE + (i - FINE) * 1000) as f64
                };
            }
        }
        (FINE + (COARSE - 1) * 1000) as f64
    }
}

fn would_block(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock
}

/// Runs the echo clients against `addr`.
pub fn echo(addr: SocketAddr, load: EchoLoad) -> BenchResult<EchoResult> {
    let mut poll = Poll::new()?;
    let mut conns = Vec::with_capacity(load.peers);
    for i in 0..load.peers {
        let s = std::net::TcpStream::connect(addr)?;
        s.set_nodelay(true)?;
        s.set_nonblocking(true)?;
        let mut s = TcpStream::from_std(s);
        poll.registry()
            .register(&mut s, Token(i), Interest::READABLE)?;
        conns.push((s, 0usize, Instant::now()));
    }
    let request = vec![0x42u8; load.size];
    for (s, _, sent_at) in &mut conns {
        s.write_all(&request)?;
        *sent_at = Instant::now();
    }
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 64 * 1024];
    let mut hist = Histogram::default();
    let begin = Instant::now();
    let (mut measuring, mut trips, mut last_trip) = (None, 0u64, begin);
    loop {
        let now = Instant::now();
        match measuring {
            None if now >= begin + load.warmup => {
                measuring = Some((now, Mark::now(), thread_cpu_ns()));
                hist = Histogram::default();
                trips = 0;
            }
            Some((start, mark, own)) if now >= start + load.measure => {
                let span = mark.elapsed();
                let own = thread_cpu_ns().saturating_sub(own);
                let server_us = span.cpu_ns.saturating_sub(own) as f64 / 1e3;
                return Ok(EchoResult {
                    trips_per_sec: trips as f64 / span.secs,
                    p50_us: hist.quantile(0.50),
                    p99_us: hist.quantile(0.99),
                    server_cpu_us_per_trip: server_us / trips.max(1) as f64,
                });
            }
            _ => {}
        }
        if now.duration_since(last_trip) > STALL {
            return Err(format!("echo: no round trip for {} s", STALL.as_secs()).into());
        }
        poll.poll(&mut events, Some(Duration::from_millis(5)))?;
        for event in events.iter() {
            let Some((s, got, sent_at)) = conns.get_mut(event.token().0) else {
                continue;
            };
            loop {
                match s.read(&mut buf) {
                    Ok(0) => return Err("echo: the server closed a connection".into()),
                    Ok(n) => {
                        *got += n;
                        while *got >= load.size {
                            *got -= load.size;
                            let now = Instant::now();
                            hist.record(now.duration_since(*sent_at));
                            trips += 1;
                            last_trip = now;
                            // A small request into an empty socket buffer: never short.
                            s.write_all(&request)?;
                            *sent_at = now;
                        }
                    }
                    Err(e) if would_block(&e) => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }
}

/// Shape of a churn run.
#[derive(Debug, Clone, Copy)]
pub struct ChurnLoad {
    /// Concurrent clients.
    pub clients: usize,
    /// Bytes exchanged per connection.
    pub size: usize,
    /// Untimed time first.
    pub warmup: Duration,
    /// Timed time after it.
    pub measure: Duration,
}

/// What a churn run measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChurnResult {
    /// Connections completed (connect, exchange, close) per second.
    pub conns_per_sec: f64,
    /// Connections in the timed part that failed (refused, reset before the reply, ...).
    pub failures: u64,
    /// CPU time of the server under test per completed connection, microseconds: every thread
    /// of the process but the load generator's.
    pub server_cpu_us_per_conn: f64,
}

/// A churn client's connection: `None` while connecting, then the reply bytes read so far.
type Slot = (TcpStream, Option<usize>);

/// Token of slot `slot` in its `generation`-th connection: a stale event of a closed
/// connection never reaches its successor in the same slot.
fn token(slot: usize, generation: usize) -> Token {
    Token(slot | (generation << 16))
}

fn open(poll: &Poll, addr: SocketAddr, tok: Token) -> io::Result<TcpStream> {
    let mut s = TcpStream::connect(addr)?;
    let sock = socket2::SockRef::from(&s);
    sock.set_linger(Some(Duration::ZERO))?;
    sock.set_tcp_nodelay(true)?;
    poll.registry()
        .register(&mut s, tok, Interest::READABLE | Interest::WRITABLE)?;
    Ok(s)
}

/// Runs the churn clients against `addr`.
pub fn churn(addr: SocketAddr, load: ChurnLoad) -> BenchResult<ChurnResult> {
    if load.clients >= 1 << 16 {
        return Err("churn: too many clients".into());
    }
    let mut poll = Poll::new()?;
    let mut generation = vec![0usize; load.clients];
    let mut slots: Vec<Slot> = Vec::with_capacity(load.clients);
    for (i, generation) in generation.iter().enumerate() {
        slots.push((open(&poll, addr, token(i, *generation))?, None));
    }
    let request = vec![0x42u8; load.size];
    let mut buf = vec![0u8; 4096];
    let mut events = Events::with_capacity(1024);
    let begin = Instant::now();
    let (mut measuring, mut done, mut failures, mut last_done) = (None, 0u64, 0u64, begin);
    loop {
        let now = Instant::now();
        match measuring {
            None if now >= begin + load.warmup => {
                measuring = Some((now, Mark::now(), thread_cpu_ns()));
                done = 0;
                failures = 0;
            }
            Some((start, mark, own)) if now >= start + load.measure => {
                let span = mark.elapsed();
                let own = thread_cpu_ns().saturating_sub(own);
                let server_us = span.cpu_ns.saturating_sub(own) as f64 / 1e3;
                return Ok(ChurnResult {
                    conns_per_sec: done as f64 / span.secs,
                    failures,
                    server_cpu_us_per_conn: server_us / done.max(1) as f64,
                });
            }
            _ => {}
        }
        if now.duration_since(last_done) > STALL {
            return Err(format!("churn: no connection completed for {} s", STALL.as_secs()).into());
        }
        poll.poll(&mut events, Some(Duration::from_millis(5)))?;
        for event in events.iter() {
            let (slot, gen) = (event.token().0 & 0xffff, event.token().0 >> 16);
            if slot >= load.clients || gen != generation[slot] {
                continue;
            }
            let (s, state) = &mut slots[slot];
            // Ok(true): exchange complete; Ok(false): keep waiting; Err: failed.
            let outcome: io::Result<bool> = match state {
                None => match s.take_error() {
                    Ok(Some(e)) | Err(e) => Err(e),
                    Ok(None) => match s.peer_addr() {
                        Ok(_) => s.write_all(&request).map(|()| {
                            *state = Some(0);
                            false
                        }),
                        Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
                        Err(e) => Err(e),
                    },
                },
                Some(got) => loop {
                    match s.read(&mut buf) {
                        Ok(0) => break Err(io::ErrorKind::UnexpectedEof.into()),
                        Ok(n) => {
                            *got += n;
                            if *got >= load.size {
                                break Ok(true);
                            }
                        }
                        Err(e) if would_block(&e) => break Ok(false),
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => break Err(e),
                    }
                },
            };
            match outcome {
                Ok(false) => continue,
                Ok(true) => {
                    done += 1;
                    last_done = Instant::now();
                }
                Err(_) => failures += 1,
            }
            generation[slot] += 1;
            // Dropping the old stream here resets it (linger 0).
            slots[slot] = (open(&poll, addr, token(slot, generation[slot]))?, None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_at_microsecond_and_millisecond_resolution() {
        let mut h = Histogram::default();
        assert_eq!(h.quantile(0.5), 0.0);
        for us in 1..=98 {
            h.record(Duration::from_micros(us));
        }
        h.record(Duration::from_millis(200));
        h.record(Duration::from_secs(60));
        assert_eq!(h.quantile(0.5), 50.0);
        assert_eq!(h.quantile(0.98), 98.0);
        assert_eq!(h.quantile(0.99), 199_536.0);
        assert_eq!(h.quantile(1.0), 10_064_536.0);
    }
}
