//! Throughput and echo latency of openp2p-async-std against raw async-io sockets, in one run.
//!
//!     cargo run --release -p openp2p-async-std --example async_std_bench -- [RUNS] [ECHO_SECONDS]
//!
//! Each run measures, interleaved so that machine noise hits every side alike:
//! - 1 GiB over one loopback connection, wall time and process CPU time: raw `Async<TcpStream>`
//!   (writer and reader zipped on one thread under `async_std::task::block_on`), reading into
//!   one 128 KiB buffer, and again rotating 256 such buffers (the footprint of openp2p's receive
//!   pool, where every received chunk is handed on without a copy and so lives in its own
//!   memory); against one openp2p node connected to itself, its driver either a task zipped
//!   with the application on the same thread (`Node::new`) or on its own thread (`Node::start`).
//! - echo, 100 peers x 64 B, one message in flight per peer, for ECHO_SECONDS: raw async-io
//!   tasks on async-std's executor against two openp2p nodes (the server echoes `Received`, the
//!   client counts round trips), drivers spawned on async-std's executor or on their own threads.
//!
//! `-- RUNS ECHO_SECONDS profile` (or `profile-thread`, `profile-raw`) runs only one throughput side, for
//! `perf record`. `BENCH_POOL_SEGMENTS=N` changes openp2p's pool size.
//!
//! Loopback throughput is bimodal on some machines (scheduler placement): compare the medians
//! and the CPU time per byte, which is stable.

use async_io::{Async, Timer};
use futures_lite::{future, AsyncReadExt, AsyncWriteExt};
use openp2p_async_std::{Bytes, Config, Driver, Event, Node, PeerId, SendError};
use std::collections::HashMap;
use std::error::Error;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

type Result<T> = std::result::Result<T, Box<dyn Error>>;

const GIB: u64 = 1 << 30;
const CHUNK: usize = 1 << 20;
const READ_BUF: usize = 128 * 1024;
const PEERS: usize = 100;
const MESSAGE: usize = 64;

/// Process CPU time (user + system, every thread) from /proc/self/stat, in seconds.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return f64::NAN;
    };
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let Some(rest) = stat.rsplit(')').next() else {
        return f64::NAN;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    (ticks(11) + ticks(12)) / 100.0
}

struct Throughput {
    seconds: f64,
    cpu: f64,
}

impl Throughput {
    fn gbps(&self) -> f64 {
        GIB as f64 / self.seconds / 1e9
    }
    fn cpu_ns_per_kib(&self) -> f64 {
        self.cpu * 1e9 / (GIB as f64 / 1024.0)
    }
}

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// Buffers of the "rotating" raw baseline: the engine's default receive pool is 256 segments of
/// 128 KiB, and every chunk it hands to the application lives in its own piece of that pool.
const ROTATING_BUFFERS: usize = 256;

/// 1 GiB over raw async-io sockets, read into `buffers` rotating 128 KiB buffers (1: one hot
/// buffer, the socket's cost alone; 256: the memory footprint of openp2p's receive pool).
async fn raw_throughput(buffers: usize) -> Result<Throughput> {
    let listener = Async::<TcpListener>::bind(loopback())?;
    let addr = listener.get_ref().local_addr()?;
    let (writer, accepted) =
        future::zip(Async::<TcpStream>::connect(addr), listener.accept()).await;
    let (writer, (reader, _)) = (writer?, accepted?);
    writer.get_ref().set_nodelay(true)?;
    reader.get_ref().set_nodelay(true)?;
    let (cpu, started) = (cpu_seconds(), Instant::now());
    let write = async {
        let buf = vec![0xA5u8; CHUNK];
        let mut left = GIB;
        while left > 0 {
            let n = (left as usize).min(CHUNK);
            (&writer).write_all(&buf[..n]).await?;
            left -= n as u64;
        }
        std::io::Result::Ok(())
    };
    let read = async {
        let mut bufs = vec![vec![0u8; READ_BUF]; buffers.max(1)];
        let mut got = 0u64;
        let mut i = 0;
        while got < GIB {
            i = (i + 1) % bufs.len();
            match (&reader).read(&mut bufs[i]).await? {
                0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                n => got += n as u64,
            }
        }
        std::io::Result::Ok(())
    };
    let (w, r) = future::zip(write, read).await;
    w?;
    r?;
    Ok(Throughput {
        seconds: started.elapsed().as_secs_f64(),
        cpu: cpu_seconds() - cpu,
    })
}

/// Queues chunks for `peer` until its queue is full or everything is queued.
fn fill(node: &Node, peer: PeerId, chunk: &Bytes, queued: &mut u64) -> Result<()> {
    while *queued < GIB {
        let n = ((GIB - *queued) as usize).min(chunk.len());
        match node.send_now(peer, chunk.slice(..n)) {
            Ok(()) => *queued += n as u64,
            Err(SendError::QueueFull { .. }) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Where the openp2p driver runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placement {
    /// `Node::start`: a thread of its own.
    Thread,
    /// `Node::new`: a task of the application's executor (for the throughput test, the same
    /// thread as the application, like the raw baseline's writer and reader).
    Task,
}

fn start(placement: Placement) -> Result<(Node, Option<Driver>)> {
    // Nobody here listens for `Sent`: the raw baseline has no such events either.
    let mut config = Config {
        sent_events: false,
        ..Config::default()
    };
    if let Some(segments) = std::env::var("BENCH_POOL_SEGMENTS")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        config.pool_segments = segments;
    }
    Ok(match placement {
        Placement::Thread => (Node::start(config)?, None),
        Placement::Task => {
            let (node, driver) = Node::new(config)?;
            (node, Some(driver))
        }
    })
}

async fn openp2p_throughput(placement: Placement) -> Result<Throughput> {
    let (node, driver) = start(placement)?;
    let app = openp2p_throughput_app(node);
    match driver {
        Some(driver) => future::zip(driver, app).await.1,
        None => app.await,
    }
}

async fn openp2p_throughput_app(node: Node) -> Result<Throughput> {
    let addr = node.listen(loopback()).await?;
    let sender = node.connect(addr).await?;
    let mut connected = 0;
    while connected < 2 {
        if let Some(Event::Connected { .. }) = node.next_event().await {
            connected += 1;
        }
    }
    let chunk = Bytes::from(vec![0xA5u8; CHUNK]);
    let (cpu, started) = (cpu_seconds(), Instant::now());
    let (mut queued, mut received) = (0u64, 0u64);
    fill(&node, sender, &chunk, &mut queued)?;
    while received < GIB {
        match node.next_event().await {
            Some(Event::Received { data, .. }) => received += data.len() as u64,
            Some(Event::Writable { .. }) => fill(&node, sender, &chunk, &mut queued)?,
            Some(Event::Disconnected { reason, .. }) => return Err(reason.to_string().into()),
            Some(_) => {}
            None => return Err("node stopped".into()),
        }
    }
    let result = Throughput {
        seconds: started.elapsed().as_secs_f64(),
        cpu: cpu_seconds() - cpu,
    };
    node.shutdown().await;
    Ok(result)
}

/// Round trips per second of `PEERS` raw async-io connections, each echoing `MESSAGE` bytes.
async fn raw_echo(duration: Duration) -> Result<f64> {
    let listener = Async::<TcpListener>::bind(loopback())?;
    let addr = listener.get_ref().local_addr()?;
    async_std::task::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.get_ref().set_nodelay(true);
            async_std::task::spawn(async move {
                let mut buf = [0u8; 4096];
                while let Ok(n) = (&stream).read(&mut buf).await {
                    if n == 0 || (&stream).write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    let stop = Arc::new(AtomicBool::new(false));
    let trips = Arc::new(AtomicU64::new(0));
    let mut clients = Vec::new();
    for _ in 0..PEERS {
        let stream = Async::<TcpStream>::connect(addr).await?;
        stream.get_ref().set_nodelay(true)?;
        let (stop, trips) = (stop.clone(), trips.clone());
        clients.push(async_std::task::spawn(async move {
            let message = [7u8; MESSAGE];
            let mut echo = [0u8; MESSAGE];
            while !stop.load(Ordering::Relaxed) {
                if (&stream).write_all(&message).await.is_err()
                    || (&stream).read_exact(&mut echo).await.is_err()
                {
                    break;
                }
                trips.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let started = Instant::now();
    Timer::after(duration).await;
    let count = trips.load(Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await;
    }
    Ok(count as f64 / elapsed)
}

/// Round trips per second of `PEERS` openp2p peers, the server node echoing every `Received`.
async fn openp2p_echo(duration: Duration, placement: Placement) -> Result<f64> {
    let (server, server_driver) = start(placement)?;
    let (client, client_driver) = start(placement)?;
    for driver in [server_driver, client_driver].into_iter().flatten() {
        async_std::task::spawn(driver);
    }
    let addr = server.listen(loopback()).await?;
    let echo = server.clone();
    async_std::task::spawn(async move {
        while let Some(event) = echo.next_event().await {
            if let Event::Received { peer, data } = event {
                let _ = echo.send_now(peer, data);
            }
        }
    });
    let mut pending: HashMap<PeerId, usize> = HashMap::new();
    for _ in 0..PEERS {
        pending.insert(client.connect(addr).await?, 0);
    }
    let mut connected = 0;
    while connected < PEERS {
        if let Some(Event::Connected { .. }) = client.next_event().await {
            connected += 1;
        }
    }
    let message = Bytes::from(vec![7u8; MESSAGE]);
    let started = Instant::now();
    for &peer in pending.keys() {
        client.send_now(peer, message.clone())?;
    }
    let mut trips = 0u64;
    let elapsed = loop {
        let Some(event) = client.next_event().await else {
            return Err("node stopped".into());
        };
        if let Event::Received { peer, data } = event {
            let got = pending.entry(peer).or_default();
            *got += data.len();
            while *got >= MESSAGE {
                *got -= MESSAGE;
                trips += 1;
                client.send_now(peer, message.clone())?;
            }
            if trips % 1024 == 0 && started.elapsed() >= duration {
                break started.elapsed().as_secs_f64();
            }
        }
    };
    client.shutdown().await;
    server.shutdown().await;
    Ok(trips as f64 / elapsed)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values[values.len() / 2]
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let runs: usize = args.next().map_or(Ok(5), |a| a.parse())?;
    let echo_for = Duration::from_secs_f64(args.next().map_or(Ok(3.0), |a| a.parse())?);
    let only = args.next().unwrap_or_default();
    if only == "profile" || only == "profile-thread" || only == "profile-raw" {
        // One side only, for `perf record`.
        for run in 1..=runs {
            let t = match only.as_str() {
                "profile" => async_std::task::block_on(openp2p_throughput(Placement::Task))?,
                "profile-thread" => {
                    async_std::task::block_on(openp2p_throughput(Placement::Thread))?
                }
                _ => async_std::task::block_on(raw_throughput(1))?,
            };
            println!(
                "run {run}: {only} {:6.2} GB/s  {:5.0} ns CPU/KiB",
                t.gbps(),
                t.cpu_ns_per_kib()
            );
        }
        return Ok(());
    }
    const RAW: &str = "raw async-io";
    const RAW_ROTATING: &str = "raw, 256 buffers";
    const TASK: &str = "openp2p, driver task";
    const THREAD: &str = "openp2p, driver thread";
    let name = |p: Placement| if p == Placement::Task { TASK } else { THREAD };
    let mut gbps: HashMap<&str, Vec<f64>> = HashMap::new();
    let mut cpu: HashMap<&str, Vec<f64>> = HashMap::new();
    let mut echo: HashMap<&str, Vec<f64>> = HashMap::new();
    let mut record = |side: &'static str, t: &Throughput, run: usize| {
        println!(
            "run {run}: 1 GiB  {side:<23} {:6.2} GB/s  {:5.0} ns CPU/KiB",
            t.gbps(),
            t.cpu_ns_per_kib()
        );
        gbps.entry(side).or_default().push(t.gbps());
        cpu.entry(side).or_default().push(t.cpu_ns_per_kib());
    };
    for run in 1..=runs {
        if only.is_empty() || only == "throughput" {
            // Interleaved, so that the machine's noise hits every side alike.
            record(RAW, &async_std::task::block_on(raw_throughput(1))?, run);
            record(
                TASK,
                &async_std::task::block_on(openp2p_throughput(Placement::Task))?,
                run,
            );
            record(
                RAW_ROTATING,
                &async_std::task::block_on(raw_throughput(ROTATING_BUFFERS))?,
                run,
            );
            record(
                THREAD,
                &async_std::task::block_on(openp2p_throughput(Placement::Thread))?,
                run,
            );
        }
        if only.is_empty() || only == "echo" {
            let raw = async_std::task::block_on(raw_echo(echo_for))?;
            println!("run {run}: echo {PEERS} x {MESSAGE} B  {RAW:<23} {raw:8.0} round trips/s");
            echo.entry(RAW).or_default().push(raw);
            for p in [Placement::Task, Placement::Thread] {
                // The client loop runs as a task of the executor, like the raw clients.
                let e = async_std::task::block_on(async_std::task::spawn(async move {
                    openp2p_echo(echo_for, p).await.map_err(|e| e.to_string())
                }))?;
                println!(
                    "run {run}: echo {PEERS} x {MESSAGE} B  {:<23} {e:8.0} round trips/s",
                    name(p)
                );
                echo.entry(name(p)).or_default().push(e);
            }
        }
    }
    for (what, table) in [
        ("1 GiB GB/s", &mut gbps),
        ("CPU ns/KiB", &mut cpu),
        ("echo /s", &mut echo),
    ] {
        let Some(raw) = table.get_mut(RAW).map(|v| median(v)) else {
            continue;
        };
        for side in [RAW_ROTATING, TASK, THREAD] {
            if let Some(v) = table.get_mut(side) {
                let m = median(v);
                println!(
                    "median of {runs}: {what:<11} {RAW} {raw:9.2}  {side:<23} {m:9.2}  ratio {:.3}",
                    m / raw
                );
            }
        }
    }
    Ok(())
}
