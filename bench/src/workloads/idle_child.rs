//! The child processes of the idle-memory workload: an idle server of one subject, and a batch
//! of idle clients. Both talk to the runner in lines on stdin/stdout and exit when their stdin
//! closes.

use openp2p_core::{Config, Event};
use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Every subject of the idle workload.
pub const SUBJECTS: [&str; 4] = [
    "raw tokio",
    "openp2p-mio",
    "openp2p-tokio",
    "openp2p-async-std",
];

/// The server configuration a user would pick for tens of thousands of idle peers: room for
/// them (`max_peers`), every client on loopback shares one address (`max_peers_per_ip`), and a
/// longer accept backlog; the rest (pool of 256 x 128 KiB segments allocated up front, 5 min
/// idle timeout, 60 s keepalive) is the default.
pub fn server_config() -> Config {
    Config {
        max_peers: 60_000,
        max_peers_per_ip: 60_000,
        listen_backlog: 4_096,
        ..Config::default()
    }
}

/// Raises the soft open-files limit to the hard limit; returns the new soft limit.
pub fn raise_nofile() -> u64 {
    rlimit::increase_nofile_limit(u64::MAX).unwrap_or(0)
}

/// What the server counts, shared with the thread answering the runner.
#[derive(Debug, Default)]
struct Counters {
    peers: AtomicU64,
    errors: AtomicU64,
    refused: AtomicU64,
    last_error: Mutex<String>,
}

impl Counters {
    fn error(&self, what: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut last) = self.last_error.lock() {
            *last = what;
        }
    }

    fn line(&self) -> String {
        let last = self
            .last_error
            .lock()
            .map(|l| l.clone())
            .unwrap_or_default();
        format!(
            "peers {} errors {} refused {} {}",
            self.peers.load(Ordering::Relaxed),
            self.errors.load(Ordering::Relaxed),
            self.refused.load(Ordering::Relaxed),
            if last.is_empty() { "-" } else { &last }
        )
    }
}

/// `--child idle server <subject>` and `--child idle clients <addr> <count> <source ip>`.
pub fn child_main(args: &[String]) -> ExitCode {
    let result = match args.first().map(String::as_str) {
        Some("server") => match args.get(1) {
            Some(subject) => server(subject),
            None => Err("usage: server <subject>".into()),
        },
        Some("clients") => clients(&args[1..]),
        _ => Err("usage: --child idle server|clients ...".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            println!("error {e}");
            ExitCode::FAILURE
        }
    }
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Answers `count` lines with the counters; exits the process when stdin closes.
fn answer_runner(counters: Arc<Counters>) {
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            match line {
                Ok(l) if l.trim() == "count" => say(&counters.line()),
                Ok(_) => {}
                Err(_) => break,
            }
        }
        std::process::exit(0);
    });
}

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

fn server(subject: &str) -> Result<(), String> {
    let nofile = raise_nofile();
    let counters = Arc::new(Counters::default());
    match subject {
        "raw tokio" => raw_tokio_server(counters, nofile),
        "openp2p-mio" => mio_server(counters, nofile),
        "openp2p-tokio" => tokio_server(counters, nofile),
        "openp2p-async-std" => async_std_server(counters, nofile),
        other => Err(format!("unknown subject {other:?}")),
    }
}

/// Counts one openp2p event; returns false when the node has stopped.
fn count_event(counters: &Counters, event: Option<Event>) -> bool {
    match event {
        Some(Event::Connected { .. }) => {
            counters.peers.fetch_add(1, Ordering::Relaxed);
        }
        Some(Event::Disconnected { .. }) => {
            counters.peers.fetch_sub(1, Ordering::Relaxed);
        }
        // The event carries only the `io::ErrorKind` (EMFILE is `Uncategorized`).
        Some(Event::AcceptFailed { error, .. }) => counters.error(format!("{error:?}")),
        Some(Event::Refused { reason, .. }) => {
            counters.refused.fetch_add(1, Ordering::Relaxed);
            counters.error(format!("refused:{reason:?}"));
        }
        Some(_) => {}
        None => return false,
    }
    true
}

fn mio_server(counters: Arc<Counters>, nofile: u64) -> Result<(), String> {
    let (node, mut events) =
        openp2p_mio::Node::start(server_config()).map_err(|e| e.to_string())?;
    let addr = node.listen(loopback()).map_err(|e| e.to_string())?;
    answer_runner(Arc::clone(&counters));
    say(&format!("ready {addr} {nofile}"));
    while count_event(&counters, events.recv().ok()) {}
    Ok(())
}

fn tokio_server(counters: Arc<Counters>, nofile: u64) -> Result<(), String> {
    let runtime = super::sync_node::tokio_runtime(2)?;
    runtime.block_on(async {
        let node = openp2p_tokio::Node::start(server_config()).map_err(|e| e.to_string())?;
        let addr = node.listen(loopback()).await.map_err(|e| e.to_string())?;
        answer_runner(Arc::clone(&counters));
        say(&format!("ready {addr} {nofile}"));
        while count_event(&counters, node.next_event().await) {}
        Ok(())
    })
}

fn async_std_server(counters: Arc<Counters>, nofile: u64) -> Result<(), String> {
    futures_lite::future::block_on(async {
        let node = openp2p_async_std::Node::start(server_config()).map_err(|e| e.to_string())?;
        let addr = node.listen(loopback()).await.map_err(|e| e.to_string())?;
        answer_runner(Arc::clone(&counters));
        say(&format!("ready {addr} {nofile}"));
        while count_event(&counters, node.next_event().await) {}
        Ok(())
    })
}

/// A competent user's idle Tokio server: one task per connection, awaiting readability and
/// reading into a 1 KiB stack buffer that is not held across the await (an idle task holds no
/// buffer). Accept errors (EMFILE) back off for 10 ms.
fn raw_tokio_server(counters: Arc<Counters>, nofile: u64) -> Result<(), String> {
    let runtime = super::sync_node::tokio_runtime(2)?;
    runtime.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().map_err(|e| e.to_string())?;
        socket.set_reuseaddr(true).map_err(|e| e.to_string())?;
        socket.bind(loopback()).map_err(|e| e.to_string())?;
        let listener = socket.listen(4_096).map_err(|e| e.to_string())?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        answer_runner(Arc::clone(&counters));
        say(&format!("ready {addr} {nofile}"));
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    counters.peers.fetch_add(1, Ordering::Relaxed);
                    let counters = Arc::clone(&counters);
                    tokio::spawn(async move {
                        loop {
                            if stream.readable().await.is_err() {
                                break;
                            }
                            let mut buf = [0u8; 1024];
                            match stream.try_read(&mut buf) {
                                Ok(0) => break,
                                Ok(_) => {}
                                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                                Err(_) => break,
                            }
                        }
                        counters.peers.fetch_sub(1, Ordering::Relaxed);
                    });
                }
                Err(e) => {
                    counters.error(e.to_string());
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    })
}

/// Connects up to `count` idle clients from `source` (an address of 127/8, so that several
/// batches do not share one source's ephemeral ports), reports `connected <n> <why it stopped>
/// <milliseconds>`, then holds them until stdin closes.
fn clients(args: &[String]) -> Result<(), String> {
    use socket2::{Domain, SockAddr, Socket, Type};
    let usage = || "usage: clients <addr> <count> <source ip>".to_string();
    let addr: SocketAddr = args
        .first()
        .and_then(|a| a.parse().ok())
        .ok_or_else(usage)?;
    let count: usize = args.get(1).and_then(|a| a.parse().ok()).ok_or_else(usage)?;
    let source: std::net::IpAddr = args.get(2).and_then(|a| a.parse().ok()).ok_or_else(usage)?;
    raise_nofile();
    let mut held = Vec::with_capacity(count);
    let mut failures = 0;
    let mut stopped = "done".to_string();
    let target = SockAddr::from(addr);
    let started = std::time::Instant::now();
    while held.len() < count {
        let attempt = (|| -> std::io::Result<Socket> {
            let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
            // bind(2) before connect(2) searches the source's ports on every call (slow past a
            // few thousand); the default source needs no bind.
            if source != addr.ip() {
                socket.set_reuse_address(true)?;
                socket.bind(&SockAddr::from(SocketAddr::new(source, 0)))?;
            }
            socket.connect_timeout(&target, Duration::from_secs(2))?;
            Ok(socket)
        })();
        match attempt {
            Ok(socket) => {
                failures = 0;
                held.push(socket);
            }
            Err(e) => {
                failures += 1;
                if failures >= 2 {
                    stopped = format!("{:?}", e.kind());
                    break;
                }
            }
        }
    }
    say(&format!(
        "connected {} {stopped} {}",
        held.len(),
        started.elapsed().as_millis()
    ));
    let mut line = String::new();
    while std::io::stdin()
        .lock()
        .read_line(&mut line)
        .is_ok_and(|n| n > 0)
    {
        line.clear();
    }
    drop(held);
    Ok(())
}
