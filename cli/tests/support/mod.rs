//! Running the `openp2p` binary as a child process, with bounded waits.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

/// Generous bound for anything a test waits for.
pub const WAIT: Duration = Duration::from_secs(60);

/// A running `openp2p` with its stdout lines arriving on a channel.
pub struct Proc {
    child: Child,
    lines: Receiver<String>,
    stderr: std::thread::JoinHandle<String>,
    /// The process's `XDG_CONFIG_HOME`: its identity file, never the user's.
    _config: tempfile::TempDir,
}

/// What a finished process left.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: Vec<String>,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Finished {
    /// The process failed with one clear line on stderr, no panic, no backtrace.
    pub fn assert_one_line_error(&self, code: i32, needle: &str) {
        assert_eq!(self.status.code(), Some(code), "{self:?}");
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(
            lines.len(),
            1,
            "exactly one line on stderr: {:?}",
            self.stderr
        );
        assert!(lines[0].starts_with("openp2p: "), "{:?}", lines[0]);
        assert!(
            lines[0].contains(needle),
            "{:?} should mention {needle:?}",
            lines[0]
        );
        assert!(!self.stderr.contains("panicked") && !self.stderr.contains("RUST_BACKTRACE"));
    }
}

impl Proc {
    /// Starts `openp2p ARGS` in `dir`, with an identity of its own (a fresh `XDG_CONFIG_HOME`).
    pub fn start(args: &[&str], dir: &Path) -> Proc {
        let config = tempfile::tempdir().expect("a temporary config directory");
        let mut child = Command::new(env!("CARGO_BIN_EXE_openp2p"))
            .args(args)
            .current_dir(dir)
            .env("XDG_CONFIG_HOME", config.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut stderr = child.stderr.take().expect("piped stderr");
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        Proc {
            child,
            lines,
            stderr,
            _config: config,
        }
    }

    /// The next stdout line (None once stdout closed).
    pub fn next_line(&self) -> Option<String> {
        self.lines.recv_timeout(WAIT).ok()
    }

    /// Skips stdout lines until one satisfies `pick`.
    pub fn wait_line(&self, mut pick: impl FnMut(&str) -> bool) -> String {
        loop {
            let line = self
                .next_line()
                .expect("the process ended before the expected line");
            if pick(&line) {
                return line;
            }
        }
    }

    /// For `recv` and `echo`: the address printed on the first line (`... on ADDR`).
    pub fn bound_addr(&self) -> SocketAddr {
        let line = self.wait_line(|l| l.contains("listening on "));
        line.rsplit(' ')
            .next()
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no address in {line:?}"))
    }

    /// Waits for the exit (killing the process after [`WAIT`]) and collects its output.
    pub fn finish(mut self) -> Finished {
        let start = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            if start.elapsed() > WAIT {
                let _ = self.child.kill();
                panic!("openp2p did not exit within {WAIT:?}");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let elapsed = start.elapsed();
        let stdout = self.lines.iter().collect();
        let stderr = self.stderr.join().unwrap_or_default();
        Finished {
            status,
            stdout,
            stderr,
            elapsed,
        }
    }

    /// Kills the process (for services that run until interrupted).
    pub fn kill(mut self) -> Finished {
        let _ = self.child.kill();
        self.finish()
    }
}

/// Runs `openp2p ARGS` to its end.
pub fn run(args: &[&str], dir: &Path) -> Finished {
    Proc::start(args, dir).finish()
}

/// Deterministic pseudo-random content.
pub fn content(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A loopback port nobody listens on (bound by the OS, then released).
pub fn closed_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    listener.local_addr().expect("local addr")
}

/// Names of the entries of a directory, sorted.
pub fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("readable dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}
