//! openp2p-mio against a raw mio loop doing the same work, in one run, interleaved.
//!
//! ```text
//! cargo run --release -p openp2p-mio --example mio_bench -- [runs=5] [GiB=1] [echo seconds=3]
//! ```
//!
//! * **bulk**: one peer sends 1 GiB (default) to another over loopback. Raw: a sender thread and
//!   a receiver thread, each with its own `mio::Poll`, making one vectored write of the next
//!   4 MiB (as 256 KiB slices, as the engine's queue offers them) / reading into a 128 KiB buffer
//!   (the engine's segment size), until `WouldBlock`. openp2p: two nodes (sender and receiver), each with its
//!   IO thread, and an application thread on each side (the sender keeps 4 MiB in flight by
//!   counting `Sent` events; the receiver counts and drops `Received` data).
//! * **echo**: 100 connections each doing 64-byte ping-pongs against an echo server for a few
//!   seconds. The client is the same raw mio loop in both cases; the server is either a raw mio
//!   echo loop or an openp2p node whose application thread sends every `Received` back.
//!
//! CPU time is the whole process's user + system time over the timed part (both ends of the
//! connection, every thread), from `getrusage`. A bulk run first moves 64 MiB untimed (first
//! touch of the receive pool, TCP window growth), then times the next GiB.
#![allow(unsafe_code)] // getrusage only; see `cpu_time`.

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use openp2p_mio::{Bytes, Config, Event, Node};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CHUNK: usize = 256 * 1024;
const READ_BUF: usize = 128 * 1024;
const WINDOW: u64 = 4 * 1024 * 1024;
const PEERS: usize = 100;
const PING: usize = 64;
/// Bytes moved before the timed part of a bulk run: the receiver's buffers are faulted in and
/// the connection's windows have grown (the same for both implementations).
const WARMUP: u64 = 64 * 1024 * 1024;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let runs: usize = args.next().map_or(Ok(5), |a| a.parse::<usize>())?.max(1);
    let gib: f64 = args.next().map_or(Ok(1.0), |a| a.parse())?;
    let echo_secs: f64 = args.next().map_or(Ok(3.0), |a| a.parse())?;
    let total = (gib * (1u64 << 30) as f64) as u64;
    let echo_time = Duration::from_secs_f64(echo_secs);

    println!("bulk: {total} bytes over loopback, {runs} interleaved runs each");
    println!(
        "{:<6} {:<9} {:>10} {:>10} {:>12}",
        "run", "impl", "wall s", "GB/s", "CPU ns/KiB"
    );
    let (mut raw_bulk, mut p2p_bulk) = (Vec::new(), Vec::new());
    for run in 1..=runs {
        for (name, results) in [("raw-mio", &mut raw_bulk), ("openp2p", &mut p2p_bulk)] {
            let (wall, cpu) = if name == "raw-mio" {
                raw_bulk_run(total)?
            } else {
                p2p_bulk_run(total)?
            };
            let gbps = total as f64 / wall.as_secs_f64() / 1e9;
            let ns_per_kib = cpu.as_nanos() as f64 / (total as f64 / 1024.0);
            println!(
                "{run:<6} {name:<9} {:>10.3} {gbps:>10.2} {ns_per_kib:>12.0}",
                wall.as_secs_f64()
            );
            results.push((gbps, ns_per_kib));
        }
    }

    println!();
    println!("echo: {PEERS} peers x {PING} B ping-pong, {echo_secs} s per run");
    println!(
        "{:<6} {:<9} {:>14} {:>16}",
        "run", "impl", "round trips/s", "CPU us/round trip"
    );
    let (mut raw_echo, mut p2p_echo) = (Vec::new(), Vec::new());
    for run in 1..=runs {
        for (name, results) in [("raw-mio", &mut raw_echo), ("openp2p", &mut p2p_echo)] {
            let cpu = cpu_time();
            let trips = if name == "raw-mio" {
                echo_run(echo_time, RawEcho::start()?)?
            } else {
                echo_run(echo_time, P2pEcho::start()?)?
            };
            let cpu = cpu_time() - cpu;
            let rate = trips as f64 / echo_time.as_secs_f64();
            let us = cpu.as_secs_f64() * 1e6 / trips.max(1) as f64;
            println!("{run:<6} {name:<9} {rate:>14.0} {us:>16.2}");
            results.push((rate, us));
        }
    }

    let med = |v: &[(f64, f64)], f: fn(&(f64, f64)) -> f64| {
        let mut x: Vec<f64> = v.iter().map(f).collect();
        x.sort_by(f64::total_cmp);
        x[x.len() / 2]
    };
    println!();
    println!("medians                      raw-mio      openp2p    ratio");
    let row = |what: &str, raw: f64, p2p: f64| {
        println!("{what:<26} {raw:>10.2} {p2p:>12.2} {:>8.3}x", p2p / raw);
    };
    row(
        "bulk GB/s",
        med(&raw_bulk, |r| r.0),
        med(&p2p_bulk, |r| r.0),
    );
    row(
        "bulk CPU ns/KiB",
        med(&raw_bulk, |r| r.1),
        med(&p2p_bulk, |r| r.1),
    );
    row(
        "echo round trips/s",
        med(&raw_echo, |r| r.0),
        med(&p2p_echo, |r| r.0),
    );
    row(
        "echo CPU us/round trip",
        med(&raw_echo, |r| r.1),
        med(&p2p_echo, |r| r.1),
    );
    Ok(())
}

/// User + system CPU time of the whole process.
fn cpu_time() -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `usage` is a valid, writable `rusage`; getrusage fills it and cannot fail for
    // RUSAGE_SELF. Zeroed is a valid `rusage` (plain integers), so reading it is sound either way.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr());
        usage.assume_init()
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn loopback_pair() -> io::Result<(std::net::TcpStream, std::net::TcpStream)> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let a = std::net::TcpStream::connect(listener.local_addr()?)?;
    let (b, _) = listener.accept()?;
    for s in [&a, &b] {
        s.set_nodelay(true)?;
        s.set_nonblocking(true)?;
    }
    Ok((a, b))
}

// ----- bulk ----------------------------------------------------------------------------------

/// Where a timed run starts: once the receiver is past the warm-up bytes (wall clock and
/// process CPU time at that moment).
struct Mark(Instant, Duration);

impl Mark {
    fn now() -> Mark {
        Mark(Instant::now(), cpu_time())
    }

    /// Wall and CPU time since the mark.
    fn elapsed(&self) -> (Duration, Duration) {
        (self.0.elapsed(), cpu_time().saturating_sub(self.1))
    }
}

fn raw_bulk_run(total: u64) -> io::Result<(Duration, Duration)> {
    let (tx, rx) = loopback_pair()?;
    let data = vec![0x5au8; CHUNK];
    let (timed, total) = (total, total + WARMUP);
    let sender = std::thread::spawn(move || -> io::Result<()> {
        let mut stream = TcpStream::from_std(tx);
        let mut poll = Poll::new()?;
        poll.registry()
            .register(&mut stream, Token(0), Interest::WRITABLE)?;
        let mut events = Events::with_capacity(8);
        let mut sent = 0u64;
        while sent < total {
            // The same writes the engine makes: one vectored write of the 4 MiB window.
            let mut left = WINDOW.min(total - sent) as usize;
            let mut slices = Vec::with_capacity(WINDOW as usize / CHUNK + 1);
            let mut at = (sent % CHUNK as u64) as usize;
            while left > 0 {
                let n = (CHUNK - at).min(left);
                slices.push(io::IoSlice::new(&data[at..at + n]));
                left -= n;
                at = 0;
            }
            match stream.write_vectored(&slices) {
                Ok(n) => sent += n as u64,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => poll.poll(&mut events, None)?,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    });
    let mut stream = TcpStream::from_std(rx);
    let mut poll = Poll::new()?;
    poll.registry()
        .register(&mut stream, Token(0), Interest::READABLE)?;
    let mut events = Events::with_capacity(8);
    let mut buf = vec![0u8; READ_BUF];
    let mut received = 0u64;
    let mut start = None;
    while received < total {
        if start.is_none() && received >= total - timed {
            start = Some(Mark::now());
        }
        match stream.read(&mut buf) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => received += n as u64,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => poll.poll(&mut events, None)?,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let measured = start.unwrap_or_else(Mark::now).elapsed();
    sender
        .join()
        .map_err(|_| io::Error::other("sender panicked"))??;
    Ok(measured)
}

fn p2p_bulk_run(total: u64) -> Result<(Duration, Duration), Box<dyn std::error::Error>> {
    let (timed, total) = (total, total + WARMUP);
    let (receiver, mut receiver_events) = Node::start(Config::default())?;
    let addr = receiver.listen("127.0.0.1:0".parse()?)?;
    let (sender, mut sender_events) = Node::start(Config::default())?;
    let peer = sender.connect_wait(addr)?;
    let data = Bytes::from(vec![0x5au8; CHUNK]);
    let sending = std::thread::spawn(move || -> Result<(), String> {
        let (mut queued, mut written) = (0u64, 0u64);
        while written < total {
            while queued < total && queued - written + CHUNK as u64 <= WINDOW {
                let n = CHUNK.min((total - queued) as usize);
                sender
                    .send(peer, data.slice(..n))
                    .map_err(|e| e.to_string())?;
                queued += n as u64;
            }
            match sender_events.recv().map_err(|e| e.to_string())? {
                Event::Sent { bytes, .. } => written += bytes as u64,
                Event::Disconnected { reason, .. } => return Err(reason.to_string()),
                _ => {}
            }
        }
        if let Some(failure) = sender_events.send_failure() {
            return Err(format!("a send was refused: {}", failure.error));
        }
        sender.shutdown();
        Ok(())
    });
    let (mut received, mut chunks) = (0u64, 0u64);
    let mut start = None;
    while received < total {
        if start.is_none() && received >= total - timed {
            start = Some(Mark::now());
        }
        match receiver_events.recv()? {
            Event::Received { data, .. } => {
                received += data.len() as u64;
                chunks += 1;
            }
            Event::Disconnected { reason, .. } => return Err(reason.to_string().into()),
            _ => {}
        }
    }
    let measured = start.unwrap_or_else(Mark::now).elapsed();
    sending.join().map_err(|_| "sender panicked")??;
    receiver.shutdown();
    if std::env::var_os("BENCH_VERBOSE").is_some() {
        eprintln!(
            "openp2p bulk: {chunks} reads, {} bytes per read",
            total / chunks.max(1)
        );
    }
    Ok(measured)
}

// ----- echo ----------------------------------------------------------------------------------

/// An echo server under test: where it listens, and how to stop it.
trait EchoServer {
    fn addr(&self) -> SocketAddr;
    fn stop(self);
}

/// Runs the raw client against `server` for `time`; returns completed round trips.
fn echo_run(time: Duration, server: impl EchoServer) -> io::Result<u64> {
    let mut poll = Poll::new()?;
    let mut conns = Vec::new();
    for i in 0..PEERS {
        let s = std::net::TcpStream::connect(server.addr())?;
        s.set_nodelay(true)?;
        s.set_nonblocking(true)?;
        let mut s = TcpStream::from_std(s);
        poll.registry()
            .register(&mut s, Token(i), Interest::READABLE)?;
        conns.push((s, 0usize));
    }
    let ping = [0x42u8; PING];
    for (s, _) in &mut conns {
        s.write_all(&ping)?;
    }
    let mut events = Events::with_capacity(256);
    let mut buf = [0u8; 4096];
    let mut trips = 0u64;
    let end = Instant::now() + time;
    while Instant::now() < end {
        poll.poll(&mut events, Some(Duration::from_millis(10)))?;
        for event in events.iter() {
            let (s, got) = &mut conns[event.token().0];
            loop {
                match s.read(&mut buf) {
                    Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                    Ok(n) => {
                        *got += n;
                        while *got >= PING {
                            *got -= PING;
                            trips += 1;
                            // 64 bytes into an empty socket buffer: never short.
                            s.write_all(&ping)?;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }
    drop(conns);
    server.stop();
    Ok(trips)
}

struct RawEcho {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<io::Result<()>>,
}

impl RawEcho {
    fn start() -> io::Result<RawEcho> {
        let mut listener = TcpListener::bind("127.0.0.1:0".parse().map_err(io::Error::other)?)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || -> io::Result<()> {
            let mut poll = Poll::new()?;
            const LISTENER: Token = Token(usize::MAX);
            poll.registry()
                .register(&mut listener, LISTENER, Interest::READABLE)?;
            // Per connection: the socket and bytes read but not yet written back.
            let mut conns: Vec<(TcpStream, Vec<u8>)> = Vec::new();
            let mut events = Events::with_capacity(256);
            let mut buf = [0u8; 4096];
            while !flag.load(Ordering::Relaxed) {
                poll.poll(&mut events, Some(Duration::from_millis(10)))?;
                for event in events.iter() {
                    if event.token() == LISTENER {
                        while let Ok((mut s, _)) = listener.accept() {
                            s.set_nodelay(true)?;
                            let token = Token(conns.len());
                            poll.registry().register(
                                &mut s,
                                token,
                                Interest::READABLE | Interest::WRITABLE,
                            )?;
                            conns.push((s, Vec::new()));
                        }
                        continue;
                    }
                    let (s, pending) = &mut conns[event.token().0];
                    loop {
                        if !pending.is_empty() {
                            match s.write(pending) {
                                Ok(n) => drop(pending.drain(..n)),
                                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                                Err(_) => break,
                            }
                            if !pending.is_empty() {
                                continue;
                            }
                        }
                        match s.read(&mut buf) {
                            Ok(0) => break,
                            Ok(n) => match s.write(&buf[..n]) {
                                Ok(w) => pending.extend_from_slice(&buf[w..n]),
                                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                                    pending.extend_from_slice(&buf[..n])
                                }
                                Err(_) => break,
                            },
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                            Err(_) => break,
                        }
                    }
                }
            }
            Ok(())
        });
        Ok(RawEcho { addr, stop, thread })
    }
}

impl EchoServer for RawEcho {
    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
    }
}

struct P2pEcho {
    addr: SocketAddr,
    node: Node,
    thread: std::thread::JoinHandle<()>,
}

impl P2pEcho {
    fn start() -> Result<P2pEcho, Box<dyn std::error::Error>> {
        // The application ignores `Sent`: turning it off halves the events.
        let config = Config {
            sent_events: false,
            ..Config::default()
        };
        let (node, mut events) = Node::start(config)?;
        let addr = node.listen("127.0.0.1:0".parse()?)?;
        let handle = node.clone();
        let thread = std::thread::spawn(move || {
            while let Ok(event) = events.recv() {
                if let Event::Received { peer, data } = event {
                    if handle.send(peer, data).is_err() {
                        return;
                    }
                }
            }
        });
        Ok(P2pEcho { addr, node, thread })
    }
}

impl EchoServer for P2pEcho {
    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn stop(self) {
        self.node.shutdown();
        let _ = self.thread.join();
    }
}
