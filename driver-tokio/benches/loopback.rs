//! Loopback benchmarks against raw Tokio, measured in one run and interleaved:
//!
//! 1. throughput: 1 GiB over one connection (openp2p `send_now` of a shared 1 MiB `Bytes`,
//!    received as `Event::Received`) against a raw `TcpStream` `write_all` / `read` copy;
//! 2. echo: 100 raw Tokio clients doing 64-byte round trips for a few seconds against (a) a raw
//!    Tokio echo server, (b) the README echo on openp2p: each peer's `PeerStream` read and
//!    written back by the same loop as the raw server, and (c) an openp2p event loop echoing
//!    every `Received` with `send_now` (zero copy).
//!
//! `cargo bench -p openp2p-tokio --bench loopback` (optional args: `runs=N echo_secs=S`,
//! `only=throughput|echo`, `flavor=current_thread`; for profiling one side,
//! `OPENP2P_BENCH_ONLY_OURS=1`, `OPENP2P_BENCH_ONLY_RAW=1` and `OPENP2P_BENCH_ECHO=raw|streams|events`).
//! Loopback throughput is bimodal on shared machines, so every run is printed, with the CPU time
//! of all threads of the process (per byte, per round trip) next to the wall-clock rate.

use bytes::Bytes;
use openp2p_tokio::{Config, Direction, Event, Node, SendError};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const GIB: u64 = 1 << 30;
const CHUNK: usize = 1 << 20;
const ECHO_PEERS: usize = 100;
const ECHO_SIZE: usize = 64;

/// CPU time of every thread of this process so far, in nanoseconds (Linux schedstat).
fn cpu_ns() -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

struct Sample {
    secs: f64,
    cpu_ns: u64,
}

impl Sample {
    fn gbps(&self, bytes: u64) -> f64 {
        bytes as f64 / self.secs / 1e9
    }
}

async fn measure<F: std::future::Future<Output = ()>>(run: F) -> Sample {
    let cpu = cpu_ns();
    let start = Instant::now();
    run.await;
    Sample {
        secs: start.elapsed().as_secs_f64(),
        cpu_ns: cpu_ns() - cpu,
    }
}

fn local() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

// ----- throughput ------------------------------------------------------------------------------

async fn raw_throughput() -> Sample {
    let listener = TcpListener::bind(local()).await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let receiver = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.expect("accept");
        socket.set_nodelay(true).expect("nodelay");
        let mut buf = vec![0u8; 128 * 1024];
        let mut got = 0u64;
        while got < GIB {
            let n = socket.read(&mut buf).await.expect("read");
            assert!(n > 0, "early EOF");
            got += n as u64;
        }
    });
    let mut socket = TcpStream::connect(addr).await.expect("connect");
    socket.set_nodelay(true).expect("nodelay");
    let chunk = vec![0xA5u8; CHUNK];
    measure(async move {
        for _ in 0..GIB / CHUNK as u64 {
            socket.write_all(&chunk).await.expect("write");
        }
        receiver.await.expect("receiver");
    })
    .await
}

/// Two long-lived nodes, as an application has them: the receive pool is allocated (and its
/// pages faulted in by a warm-up transfer) once, not in every timed run. Nobody listens for
/// `Sent`, so the configuration turns those events off (`Config::sent_events`).
struct Nodes {
    server: Node,
    client: Node,
    addr: SocketAddr,
}

impl Nodes {
    async fn start() -> Nodes {
        let config = Config {
            sent_events: false,
            ..Config::default()
        };
        let server = Node::start(config.clone()).expect("config");
        let addr = server.listen(local()).await.expect("listen");
        let client = Node::start(config).expect("config");
        let nodes = Nodes {
            server,
            client,
            addr,
        };
        nodes.transfer(64 << 20).await; // warm-up
        nodes
    }

    /// A fresh connection (set up untimed, like the raw one) moving `total` bytes.
    async fn transfer(&self, total: u64) -> Sample {
        let (client, server) = (&self.client, &self.server);
        let peer = client.connect(self.addr).await.expect("connect");
        let mut remote = None;
        while remote.is_none() {
            if let Some(Event::Connected {
                peer,
                direction: Direction::Inbound,
                ..
            }) = server.next_event().await
            {
                remote = Some(peer);
            }
        }
        let receiver = {
            let server = server.clone();
            tokio::spawn(async move {
                let mut got = 0u64;
                while got < total {
                    match server.next_event().await {
                        Some(Event::Received { peer, data }) if Some(peer) == remote => {
                            got += data.len() as u64
                        }
                        Some(_) => {}
                        None => panic!("server stopped"),
                    }
                }
            })
        };
        let chunk = Bytes::from(vec![0xA5u8; CHUNK]);
        let sample = measure(async {
            let mut sent = 0;
            while sent < total / CHUNK as u64 {
                match client.send_now(peer, chunk.clone()) {
                    Ok(()) => sent += 1,
                    Err(SendError::QueueFull { .. }) => loop {
                        match client.next_event().await {
                            Some(Event::Writable { peer: p }) if p == peer => break,
                            Some(_) => {}
                            None => panic!("client stopped"),
                        }
                    },
                    Err(e) => panic!("send failed: {e}"),
                }
            }
            receiver.await.expect("receiver");
        })
        .await;
        let _ = client.disconnect(peer).await;
        sample
    }
}

async fn openp2p_throughput(nodes: &Nodes) -> Sample {
    nodes.transfer(GIB).await
}

// ----- echo ------------------------------------------------------------------------------------

/// 100 clients doing 64-byte round trips for `secs`; returns round trips per second.
async fn echo_clients(addr: SocketAddr, secs: f64) -> (f64, u64) {
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let mut clients = Vec::new();
    for _ in 0..ECHO_PEERS {
        let mut socket = TcpStream::connect(addr).await.expect("connect");
        socket.set_nodelay(true).expect("nodelay");
        let (stop, count) = (stop.clone(), count.clone());
        clients.push(tokio::spawn(async move {
            let out = [0x42u8; ECHO_SIZE];
            let mut back = [0u8; ECHO_SIZE];
            // Warm up: one round trip before the clock starts.
            socket.write_all(&out).await.expect("write");
            socket.read_exact(&mut back).await.expect("read");
            while !stop.load(Ordering::Relaxed) {
                socket.write_all(&out).await.expect("write");
                socket.read_exact(&mut back).await.expect("read");
                count.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let cpu = cpu_ns();
    let before = count.load(Ordering::Relaxed);
    let start = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    let trips = count.load(Ordering::Relaxed) - before;
    let elapsed = start.elapsed().as_secs_f64();
    let cpu = cpu_ns() - cpu;
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.expect("client");
    }
    (trips as f64 / elapsed, cpu / trips.max(1))
}

async fn raw_echo(secs: f64) -> (f64, u64) {
    let listener = TcpListener::bind(local()).await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            socket.set_nodelay(true).expect("nodelay");
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8 * 1024];
                loop {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if socket.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    let result = echo_clients(addr, secs).await;
    server.abort();
    result
}

/// The README echo over per-peer streams (`streams`), or an event loop echoing each
/// `Received` with `send` (zero copy).
async fn openp2p_echo(secs: f64, streams: bool) -> (f64, u64) {
    let node = Node::start(Config::default()).expect("config");
    let addr = node.listen(local()).await.expect("listen");
    let echo = node.clone();
    let server = tokio::spawn(async move {
        while let Some(event) = echo.next_event().await {
            match event {
                Event::Connected {
                    peer,
                    direction: Direction::Inbound,
                    ..
                } if streams => {
                    // The same loop as the raw Tokio echo server, on the peer's stream.
                    let Ok(mut stream) = echo.stream(peer) else {
                        continue;
                    };
                    tokio::spawn(async move {
                        let mut buf = vec![0u8; 8 * 1024];
                        loop {
                            match stream.read(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => {
                                    if stream.write_all(&buf[..n]).await.is_err() {
                                        return;
                                    }
                                }
                            }
                        }
                    });
                }
                Event::Received { peer, data } => {
                    let _ = echo.send_now(peer, data);
                }
                _ => {}
            }
        }
    });
    let result = echo_clients(addr, secs).await;
    node.shutdown().await;
    let _ = server.await;
    result
}

fn arg(name: &str, default: f64) -> f64 {
    std::env::args()
        .filter_map(|a| {
            a.strip_prefix(&format!("{name}="))
                .and_then(|v| v.parse().ok())
        })
        .next()
        .unwrap_or(default)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let runs = arg("runs", 5.0) as usize;
    let echo_secs = arg("echo_secs", 3.0);
    let only = std::env::args().find_map(|a| a.strip_prefix("only=").map(String::from));
    let current = std::env::args().any(|a| a == "flavor=current_thread");
    let runtime = if current {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
    }
    .expect("runtime");
    println!(
        "runtime: {}",
        if current {
            "current_thread"
        } else {
            "multi_thread, 2 workers"
        }
    );
    runtime.block_on(async {
        if only.as_deref() != Some("echo") {
            throughput(runs).await;
        }
        if only.as_deref() != Some("throughput") {
            echo(runs, echo_secs).await;
        }
    });
}

async fn throughput(runs: usize) {
    let nodes = Nodes::start().await;
    println!("throughput: 1 GiB over one loopback connection, {runs} interleaved runs each");
    let (mut raw, mut p2p) = (Vec::new(), Vec::new());
    for run in 1..=runs {
        let (r, p) = if std::env::var_os("OPENP2P_BENCH_ONLY_OURS").is_some() {
            // For profiling the openp2p side alone.
            let p = openp2p_throughput(&nodes).await;
            (
                Sample {
                    secs: p.secs,
                    cpu_ns: p.cpu_ns,
                },
                p,
            )
        } else if std::env::var_os("OPENP2P_BENCH_ONLY_RAW").is_some() {
            let r = raw_throughput().await;
            (
                Sample {
                    secs: r.secs,
                    cpu_ns: r.cpu_ns,
                },
                r,
            )
        } else {
            (raw_throughput().await, openp2p_throughput(&nodes).await)
        };
        println!(
            "  run {run}: raw {:6.2} GB/s {:5.3} ns/B cpu | openp2p {:6.2} GB/s {:5.3} ns/B cpu",
            r.gbps(GIB),
            r.cpu_ns as f64 / GIB as f64,
            p.gbps(GIB),
            p.cpu_ns as f64 / GIB as f64
        );
        raw.push(r);
        p2p.push(p);
    }
    let rate = |v: &[Sample]| median(v.iter().map(|s| s.gbps(GIB)).collect());
    let cpu = |v: &[Sample]| median(v.iter().map(|s| s.cpu_ns as f64 / GIB as f64).collect());
    println!(
            "  median: raw {:.2} GB/s ({:.3} ns/B), openp2p {:.2} GB/s ({:.3} ns/B): {:.2}x throughput, {:.2}x CPU per byte",
            rate(&raw),
            cpu(&raw),
            rate(&p2p),
            cpu(&p2p),
            rate(&p2p) / rate(&raw),
            cpu(&p2p) / cpu(&raw)
        );
}

async fn echo(runs: usize, echo_secs: f64) {
    println!("echo: {ECHO_PEERS} peers x {ECHO_SIZE} B round trips, {echo_secs} s per run");
    let (mut raw, mut streams, mut events) = (Vec::new(), Vec::new(), Vec::new());
    for run in 1..=runs {
        // OPENP2P_BENCH_ECHO=raw|streams|events runs one variant (for profiling).
        let only = std::env::var("OPENP2P_BENCH_ECHO").ok();
        let wants = |v: &str| only.as_deref().is_none_or(|o| o == v);
        let skip = (0.0, 0);
        let r = if wants("raw") {
            raw_echo(echo_secs).await
        } else {
            skip
        };
        let s = if wants("streams") {
            openp2p_echo(echo_secs, true).await
        } else {
            skip
        };
        let e = if wants("events") {
            openp2p_echo(echo_secs, false).await
        } else {
            skip
        };
        println!(
            "  run {run}: raw {:6.0}/s {:5} ns cpu | openp2p streams {:6.0}/s {:5} ns cpu | openp2p events {:6.0}/s {:5} ns cpu",
            r.0, r.1, s.0, s.1, e.0, e.1
        );
        raw.push(r.0);
        streams.push(s.0);
        events.push(e.0);
    }
    let (r, s, e) = (median(raw), median(streams), median(events));
    println!(
        "  median round trips/s: raw {r:.0}, openp2p streams {s:.0} ({:.2}x), openp2p events {e:.0} ({:.2}x)",
        s / r,
        e / r
    );
}
