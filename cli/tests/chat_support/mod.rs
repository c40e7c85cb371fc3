//! Running `openp2p chat` nodes as child processes and reading their report lines, with bounded
//! waits.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

/// Generous bound for anything a test waits for (discovery announces every ~2 s).
pub const WAIT: Duration = Duration::from_secs(60);

/// The `openp2p` binary of this package.
pub const BIN: &str = env!("CARGO_BIN_EXE_openp2p");

/// A UDP port the OS reported free (bound, then released), so concurrent tests do not hear each
/// other's beacons.
pub fn free_udp_port() -> u16 {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind udp");
    socket.local_addr().expect("bound").port()
}

/// The arguments of a scripted node: it says `lines` once `peers` others have joined and leaves
/// once it has heard `expect` lines, or fails after `secs`.
pub fn scripted(
    name: &str,
    lines: &[String],
    peers: usize,
    expect: usize,
    secs: u64,
) -> Vec<String> {
    let mut args = vec!["chat".to_string(), "--name".into(), name.into()];
    for line in lines {
        args.extend(["--say".into(), line.clone()]);
    }
    args.extend([
        "--wait-peers".into(),
        peers.to_string(),
        "--exit-after-messages".into(),
        expect.to_string(),
        "--duration".into(),
        secs.to_string(),
    ]);
    args
}

/// The report lines of a node's stdout, forwarded to a channel by a thread.
pub fn forward_lines(stdout: ChildStdout) -> Receiver<String> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// A running `openp2p chat`.
pub struct ChatProc {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
    stderr: Option<std::thread::JoinHandle<String>>,
    /// The node's `XDG_CONFIG_HOME`: its identity file, never the user's.
    _config: tempfile::TempDir,
}

/// What a finished node printed.
#[derive(Debug)]
pub struct Transcript {
    pub status: ExitStatus,
    pub stdout: Vec<String>,
    pub stderr: String,
}

impl Transcript {
    /// The `MSG` lines as (sender, text).
    pub fn messages(&self) -> Vec<(String, String)> {
        messages(&self.stdout)
    }
}

/// The `MSG <name> <text>` lines among `lines`, as (sender, text).
pub fn messages(lines: &[String]) -> Vec<(String, String)> {
    lines
        .iter()
        .filter_map(|l| l.strip_prefix("MSG "))
        .filter_map(|rest| rest.split_once(' '))
        .map(|(name, text)| (name.to_owned(), text.to_owned()))
        .collect()
}

/// The names in the `<kind> <name> ...` lines among `lines`.
pub fn names(lines: &[String], kind: &str) -> BTreeSet<String> {
    lines
        .iter()
        .filter_map(|l| l.strip_prefix(kind)?.strip_prefix(' '))
        .filter_map(|rest| rest.split(' ').next())
        .map(str::to_owned)
        .collect()
}

impl ChatProc {
    /// Starts `openp2p ARGS`; `stdin` (if any) is written and then closed, otherwise stdin is
    /// empty.
    pub fn start(args: &[String], stdin: Option<Vec<u8>>) -> ChatProc {
        let config = tempfile::tempdir().expect("a temporary config directory");
        let mut child = Command::new(BIN)
            .args(args)
            .env("XDG_CONFIG_HOME", config.path())
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary starts");
        if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
            std::thread::spawn(move || {
                let _ = pipe.write_all(&data);
            });
        }
        let lines = forward_lines(child.stdout.take().expect("piped stdout"));
        let mut stderr = child.stderr.take().expect("piped stderr");
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        ChatProc {
            child,
            lines,
            seen: Vec::new(),
            stderr: Some(stderr),
            _config: config,
        }
    }

    /// Waits for a stdout line satisfying `pick` (earlier lines are kept for the transcript).
    pub fn wait_line(&mut self, mut pick: impl FnMut(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|e| panic!("no expected line ({e}); saw {:?}", self.seen));
            self.seen.push(line.clone());
            if pick(&line) {
                return line;
            }
        }
    }

    /// The TCP port from the `LISTENING <name> <addr>` line.
    pub fn tcp_port(&mut self) -> u16 {
        let line = self.wait_line(|l| l.starts_with("LISTENING "));
        line.rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {line:?}"))
    }

    /// Waits for the exit (killing the process after [`WAIT`]) and collects its output.
    pub fn finish(mut self) -> Transcript {
        let start = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            if start.elapsed() > WAIT {
                let _ = self.child.kill();
                panic!("openp2p chat did not exit within {WAIT:?}");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let mut stdout = std::mem::take(&mut self.seen);
        stdout.extend(self.lines.iter());
        let stderr = self.stderr.take().map(|t| t.join().unwrap_or_default());
        Transcript {
            status,
            stdout,
            stderr: stderr.unwrap_or_default(),
        }
    }
}

impl Drop for ChatProc {
    fn drop(&mut self) {
        // A failed test must not leave nodes behind.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
