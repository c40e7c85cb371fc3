//! What is measured: the raw baselines, openp2p's drivers and message-io, and the two shapes
//! every workload drives them in (a bulk transfer, an echo server).

use crate::cpu::Span;
use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::Duration;

/// Errors of a benchmark run (any source; the runner reports them and goes on).
pub type BenchError = Box<dyn std::error::Error + Send + Sync>;

/// Result of a benchmark run.
pub type BenchResult<T> = Result<T, BenchError>;

/// One implementation under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Subject {
    /// A hand-written mio loop: the baseline of `openp2p-mio` and message-io.
    RawMio,
    /// openp2p's mio driver: an IO thread owning the engine, an application thread.
    Openp2pMio,
    /// message-io 0.19, plain `Tcp` transport (mio underneath).
    MessageIo,
    /// Hand-written Tokio tasks on a 2-worker multi-thread runtime.
    RawTokio,
    /// openp2p's Tokio driver on the same runtime.
    Openp2pTokio,
    /// Hand-written async-io tasks on one smol executor thread.
    RawSmol,
    /// openp2p's async-std/smol driver, its driver futures spawned on that same executor.
    Openp2pAsyncStd,
}

impl Subject {
    /// Every subject, in the order runs are interleaved and tables list them.
    pub const ALL: [Subject; 7] = [
        Subject::RawMio,
        Subject::Openp2pMio,
        Subject::MessageIo,
        Subject::RawTokio,
        Subject::Openp2pTokio,
        Subject::RawSmol,
        Subject::Openp2pAsyncStd,
    ];

    /// The subjects a run measures: all of them, or those named (comma-separated, as in the
    /// tables) in the environment variable `OPENP2P_BENCH_SUBJECTS`, for profiling one alone
    /// (`OPENP2P_BENCH_SUBJECTS=openp2p-tokio perf record ...`).
    pub fn selected() -> Vec<Subject> {
        let wanted = std::env::var("OPENP2P_BENCH_SUBJECTS").unwrap_or_default();
        let wanted: Vec<&str> = wanted
            .split(',')
            .map(str::trim)
            .filter(|w| !w.is_empty())
            .collect();
        Subject::ALL
            .into_iter()
            .filter(|s| wanted.is_empty() || wanted.contains(&s.name()))
            .collect()
    }

    /// The name in tables and plots.
    pub fn name(self) -> &'static str {
        match self {
            Subject::RawMio => "raw mio",
            Subject::Openp2pMio => "openp2p-mio",
            Subject::MessageIo => "message-io",
            Subject::RawTokio => "raw tokio",
            Subject::Openp2pTokio => "openp2p-tokio",
            Subject::RawSmol => "raw smol",
            Subject::Openp2pAsyncStd => "openp2p-async-std",
        }
    }

    /// The raw baseline this subject is compared with (the same runtime; message-io is built
    /// on mio), or `None` for a baseline itself.
    pub fn baseline(self) -> Option<Subject> {
        match self {
            Subject::Openp2pMio | Subject::MessageIo => Some(Subject::RawMio),
            Subject::Openp2pTokio => Some(Subject::RawTokio),
            Subject::Openp2pAsyncStd => Some(Subject::RawSmol),
            Subject::RawMio | Subject::RawTokio | Subject::RawSmol => None,
        }
    }

    /// Whether this is one of openp2p's drivers (the ones the targets apply to).
    pub fn is_openp2p(self) -> bool {
        matches!(
            self,
            Subject::Openp2pMio | Subject::Openp2pTokio | Subject::Openp2pAsyncStd
        )
    }

    /// How the subject runs, for BENCHMARKS.md.
    pub fn setup(self) -> &'static str {
        match self {
            Subject::RawMio => "one `mio::Poll` thread per side; reads into one reused buffer",
            Subject::Openp2pMio => {
                "`openp2p_mio::Node::start` (its IO thread) plus an application thread per node"
            }
            Subject::MessageIo => {
                "`message_io::network::split()`, `Transport::Tcp` (unframed), a processor thread per node"
            }
            Subject::RawTokio => "Tokio multi-thread runtime, 2 workers; a task per connection",
            Subject::Openp2pTokio => {
                "`openp2p_tokio::Node::start` on the same 2-worker runtime; the application a task"
            }
            Subject::RawSmol => "one thread running a `smol::LocalExecutor`; `Async<TcpStream>` tasks",
            Subject::Openp2pAsyncStd => {
                "`openp2p_async_std::Node::new`, its driver spawned on that same one-thread executor"
            }
        }
    }
}

/// Sizes of one bulk transfer: `warmup` bytes untimed (first touch of buffers, TCP window
/// growth), then `timed` bytes measured.
#[derive(Debug, Clone, Copy)]
pub struct BulkSize {
    /// Untimed bytes first.
    pub warmup: u64,
    /// Timed bytes after them.
    pub timed: u64,
}

impl BulkSize {
    /// Every byte the sender writes.
    pub fn total(self) -> u64 {
        self.warmup + self.timed
    }
}

/// A running echo server: writes every byte it reads back to the same connection, and closes a
/// connection when the client does.
pub trait EchoServer: Send {
    /// Where it listens.
    fn addr(&self) -> SocketAddr;
    /// Stops it and waits for its threads.
    fn stop(self: Box<Self>);
}

/// Runs `work` on a thread of its own and waits at most `timeout` for it: a subject that hangs
/// costs the runner one leaked thread and an error in the report, not the whole run.
pub fn guarded<T: Send + 'static>(
    timeout: Duration,
    work: impl FnOnce() -> BenchResult<T> + Send + 'static,
) -> BenchResult<T> {
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("bench-run".into())
        .spawn(move || {
            let _ = tx.send(work());
        })?;
    match rx.recv_timeout(timeout) {
        Ok(result) => result,
        Err(mpsc::RecvTimeoutError::Timeout) => {
            Err(format!("no result within {} s", timeout.as_secs()).into())
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => Err("the run panicked".into()),
    }
}

/// Result of one bulk run: the timed part's wall and CPU time.
pub type BulkSample = Span;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_driver_has_a_baseline_of_its_runtime() {
        for s in Subject::ALL {
            assert_eq!(
                s.is_openp2p() || s == Subject::MessageIo,
                s.baseline().is_some()
            );
            if let Some(b) = s.baseline() {
                assert!(
                    b.baseline().is_none(),
                    "{} compared with a non-baseline",
                    s.name()
                );
            }
        }
    }

    #[test]
    fn guarded_reports_a_hang_and_a_panic() {
        let hang = guarded(Duration::from_millis(50), || {
            std::thread::sleep(Duration::from_secs(2));
            Ok(())
        });
        assert!(hang.is_err());
        let panic = guarded::<()>(Duration::from_secs(5), || panic!("boom"));
        assert!(panic.unwrap_err().to_string().contains("panicked"));
        assert_eq!(guarded(Duration::from_secs(5), || Ok(7)).unwrap(), 7);
    }
}
