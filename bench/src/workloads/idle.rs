//! Workload 4: user-space memory per connected idle peer.
//!
//! For each subject (raw Tokio and the three openp2p drivers) the runner starts the server as a
//! child process (`openp2p-bench --child idle server <subject>`), so that only the server's
//! memory is measured, and reads its `VmRSS` from `/proc/<pid>/status` once it listens (after a
//! short pause) and again once every client is connected, the server's count of connected peers
//! has stopped changing for a second, and another second has passed. The difference divided by
//! the peers is the figure. Clients are idle sockets held by other child processes (`--child
//! idle clients`), 12,500 per process, each from its own source address of 127/8.
//!
//! Kernel socket memory (buffers, TCP control blocks) is not user-space RSS and is not counted.
//! The open-files hard limit is 20,000 per process here: both sides raise their soft limit to
//! it, so the attempt at 50,000 stops near 20,000 peers in one server process; the outcome says
//! how many were reached and why it stopped.

pub use super::idle_child::child_main;
use super::idle_child::{server_config, SUBJECTS};
use crate::model::{Opts, Outcome, Row};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

/// Idle clients per client process.
const PER_CLIENT_PROCESS: usize = 12_500;

/// What one measurement found.
#[derive(Debug, Clone)]
pub struct IdleResult {
    /// Peers asked for.
    pub target: usize,
    /// Peers the server had connected when measured.
    pub reached: u64,
    /// Server RSS before any client, KiB.
    pub rss_before_kib: u64,
    /// Server RSS with `reached` idle peers, KiB.
    pub rss_after_kib: u64,
    /// The server's soft open-files limit.
    pub nofile: u64,
    /// Why fewer than `target` were reached (the server's last accept error, the clients'
    /// connect errors), or `None`.
    pub stopped: Option<String>,
}

impl IdleResult {
    /// User-space bytes per idle peer.
    pub fn bytes_per_peer(&self) -> f64 {
        if self.reached == 0 {
            return 0.0;
        }
        (self.rss_after_kib.saturating_sub(self.rss_before_kib) * 1024) as f64 / self.reached as f64
    }
}

/// Runs every subject at 10,000 peers and at the 50,000 attempt (200 and 1,000 with `--quick`).
pub fn run(opts: &Opts) -> Outcome {
    let targets: [usize; 2] = if opts.quick {
        [200, 1_000]
    } else {
        [10_000, 50_000]
    };
    let mut outcome = Outcome::default();
    let config = server_config();
    outcome.notes.push(format!(
        "idle: server RSS (VmRSS of the server child process) with N idle peers minus before \
         any, divided by N; kernel socket memory is not included. openp2p servers use \
         Config {{ max_peers: {}, max_peers_per_ip: {} (all clients are on loopback), \
         listen_backlog: {}, ..Default }} (pool: {} segments of {} KiB allocated up front, in \
         the 'before' figure). Raw tokio: one task per connection awaiting readable() and \
         reading into a 1 KiB stack buffer not held across the await; 2 worker threads. \
         Open-files limit: hard 20,000 per process, soft raised to it. One run each.",
        config.max_peers,
        config.max_peers_per_ip,
        config.listen_backlog,
        config.pool_segments,
        config.segment_size / 1024
    ));
    for subject in SUBJECTS {
        for target in targets {
            match measure(subject, target, opts.quick) {
                Ok(r) => report(&mut outcome, subject, &r, target == targets[1]),
                Err(e) => outcome
                    .notes
                    .push(format!("idle: {subject} at {target} peers failed: {e}")),
            }
        }
    }
    outcome
}

fn report(outcome: &mut Outcome, subject: &str, r: &IdleResult, attempt: bool) {
    let per_peer = r.bytes_per_peer();
    let openp2p = subject.starts_with("openp2p");
    let label = if attempt {
        format!("attempt at {}", thousands(r.target))
    } else {
        thousands(r.target)
    };
    outcome.rows.push(Row {
        workload: "idle".into(),
        subject: subject.into(),
        metric: format!("RSS per idle peer, {label} peers"),
        unit: "B/peer".into(),
        median: per_peer,
        samples: vec![per_peer],
        ratio: None,
        // The target is openp2p's; raw Tokio is the reference.
        target: openp2p.then(|| "<= 1 KiB".into()),
        met: openp2p.then_some(r.reached > 0 && per_peer <= 1024.0),
    });
    if attempt {
        outcome.rows.push(Row {
            workload: "idle".into(),
            subject: subject.into(),
            metric: format!("peers reached, {label} peers"),
            unit: "peers".into(),
            median: r.reached as f64,
            samples: vec![r.reached as f64],
            ratio: None,
            target: None,
            met: None,
        });
    }
    outcome.notes.push(format!(
        "idle: {subject}, {label} peers: reached {} (RSS {} -> {} KiB, {per_peer:.0} B/peer; \
         server soft open-files limit {}){}",
        r.reached,
        r.rss_before_kib,
        r.rss_after_kib,
        r.nofile,
        match &r.stopped {
            Some(why) => format!("; stopped short: {why}"),
            None => String::new(),
        }
    ));
}

fn thousands(n: usize) -> String {
    if n >= 1000 && n % 1000 == 0 {
        format!("{},000", n / 1000)
    } else {
        n.to_string()
    }
}

/// A child process speaking lines, killed (by its id) if still running when dropped.
struct Talker {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
}

impl Talker {
    fn spawn(args: &[String]) -> Result<Talker, String> {
        let mut child = Command::new(super::allocs::bench_exe()?)
            .args(["--child", "idle"])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("spawn: {e}"))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Talker {
            child,
            stdin,
            lines,
        })
    }

    fn line(&self, timeout: Duration) -> Result<String, String> {
        let line = self
            .lines
            .recv_timeout(timeout)
            .map_err(|_| "child did not answer".to_string())?;
        match line.strip_prefix("error ") {
            Some(e) => Err(e.to_string()),
            None => Ok(line),
        }
    }

    fn ask(&mut self, question: &str) -> Result<String, String> {
        let stdin = self.stdin.as_mut().ok_or("stdin closed")?;
        writeln!(stdin, "{question}").map_err(|e| e.to_string())?;
        stdin.flush().map_err(|e| e.to_string())?;
        self.line(Duration::from_secs(10))
    }

    /// Closes stdin (the child exits) and waits a little for it.
    fn finish(&mut self) {
        self.stdin = None;
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Talker {
    fn drop(&mut self) {
        self.finish();
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `VmRSS` of process `pid`, KiB.
pub fn rss_kib(pid: u32) -> Result<u64, String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("/proc/{pid}/status: {e}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| "no VmRSS".to_string())
}

/// The server's answer to `count`: `(peers, accept errors, refused, last error)`.
fn parse_count(line: &str) -> Option<(u64, u64, u64, String)> {
    let words: Vec<&str> = line.splitn(7, ' ').collect();
    match words.as_slice() {
        ["peers", p, "errors", e, "refused", r, last] => Some((
            p.parse().ok()?,
            e.parse().ok()?,
            r.parse().ok()?,
            last.trim().to_string(),
        )),
        _ => None,
    }
}

fn measure(subject: &str, target: usize, quick: bool) -> Result<IdleResult, String> {
    // How long the server's state must be quiet before it is measured.
    let settle = if quick {
        Duration::from_millis(200)
    } else {
        Duration::from_secs(1)
    };
    let mut server = Talker::spawn(&["server".into(), subject.into()])?;
    let ready = server.line(Duration::from_secs(10))?;
    let mut words = ready.split_whitespace().skip(1);
    let addr = words.next().ok_or("no address")?.to_string();
    let nofile = words.next().and_then(|n| n.parse().ok()).unwrap_or(0);
    server.ask("count")?;
    std::thread::sleep(settle);
    let pid = server.child.id();
    let rss_before_kib = rss_kib(pid)?;

    // One client process after another (the first from 127.0.0.1, the next ones from
    // 127.0.0.2, .3, ...), until the target is reached or a process could not connect all of
    // its share.
    let mut clients = Vec::new();
    let mut client_stops = Vec::new();
    let mut left = target;
    let mut source = 1u8;
    while left > 0 {
        let n = left.min(PER_CLIENT_PROCESS);
        let args = [
            "clients".to_string(),
            addr.clone(),
            n.to_string(),
            format!("127.0.0.{source}"),
        ];
        let client = Talker::spawn(&args)?;
        let line = client.line(Duration::from_secs(180))?;
        clients.push(client);
        let mut words = line.split_whitespace().skip(1);
        let connected: usize = words.next().and_then(|c| c.parse().ok()).unwrap_or(0);
        match words.next() {
            Some("done") | None => {}
            Some(why) => client_stops.push(why.to_string()),
        }
        if connected < n {
            break;
        }
        left -= n;
        source = source.wrapping_add(1);
    }

    // Wait for the server's count to settle: unchanged for `settle` (at most 30 s).
    let mut last = parse_count(&server.ask("count")?).ok_or("bad count line")?;
    let mut stable_since = Instant::now();
    let give_up = Instant::now() + Duration::from_secs(30);
    while stable_since.elapsed() < settle && Instant::now() < give_up {
        std::thread::sleep(Duration::from_millis(100));
        let now = parse_count(&server.ask("count")?).ok_or("bad count line")?;
        if now.0 != last.0 {
            stable_since = Instant::now();
        }
        last = now;
    }
    std::thread::sleep(settle);
    let rss_after_kib = rss_kib(pid)?;
    let (reached, errors, refused, last_error) =
        parse_count(&server.ask("count")?).ok_or("bad count line")?;

    let stopped = (reached < target as u64).then(|| {
        let mut why = Vec::new();
        if errors > 0 {
            why.push(format!(
                "server accept errors: {errors} (last: {last_error}){}",
                if refused > 0 {
                    format!(", {refused} refused by the engine")
                } else {
                    String::new()
                }
            ));
        }
        if !client_stops.is_empty() {
            client_stops.sort();
            client_stops.dedup();
            why.push(format!(
                "clients' connects then failed ({})",
                client_stops.join(", ")
            ));
        }
        if reached as f64 >= nofile as f64 * 0.98 {
            why.push(format!(
                "the server holds one descriptor per peer and its open-files limit is {nofile} \
                 (the hard limit; it cannot be raised without privileges the sandbox lacks)"
            ));
        }
        why.join("; ")
    });
    // The server closes first, so the TIME_WAIT states stay on its side (on its listening
    // port) instead of holding the clients' ephemeral ports for a minute.
    drop(server);
    drop(clients);
    Ok(IdleResult {
        target,
        reached,
        rss_before_kib,
        rss_after_kib,
        nofile,
        stopped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_servers_count_line() {
        assert_eq!(
            parse_count("peers 19990 errors 12 refused 0 Uncategorized"),
            Some((19990, 12, 0, "Uncategorized".to_string()))
        );
        assert_eq!(
            parse_count("peers 5 errors 1 refused 0 Too many open files (os error 24)"),
            Some((5, 1, 0, "Too many open files (os error 24)".to_string()))
        );
        assert_eq!(parse_count("peers x errors 1 refused 0 -"), None);
        assert_eq!(parse_count("garbage"), None);
    }

    #[test]
    fn bytes_per_peer_is_the_rss_growth_over_the_peers() {
        let r = IdleResult {
            target: 10,
            reached: 4,
            rss_before_kib: 1000,
            rss_after_kib: 1002,
            nofile: 20_000,
            stopped: None,
        };
        assert_eq!(r.bytes_per_peer(), 512.0);
        let none = IdleResult { reached: 0, ..r };
        assert_eq!(none.bytes_per_peer(), 0.0);
    }

    #[test]
    fn reads_this_process_rss() {
        let rss = rss_kib(std::process::id()).unwrap();
        assert!(rss > 0);
    }
}
