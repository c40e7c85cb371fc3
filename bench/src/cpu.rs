//! CPU time of this process (every thread, including threads that have exited) and of the
//! calling thread, from the kernel's CPU-time clocks (`CLOCK_PROCESS_CPUTIME_ID`,
//! `CLOCK_THREAD_CPUTIME_ID`): the same accounting as `/proc/self/task/*/schedstat`, but
//! brought up to date at the call instead of lagging by up to a scheduler tick per running
//! thread.

use rustix::time::{clock_gettime, ClockId};
use std::sync::mpsc;
use std::time::Instant;

fn nanos(clock: ClockId) -> u64 {
    let t = clock_gettime(clock);
    (t.tv_sec.max(0) as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(t.tv_nsec.max(0) as u64)
}

/// Nanoseconds of CPU time consumed so far by every thread of this process.
pub fn process_cpu_ns() -> u64 {
    nanos(ClockId::ProcessCPUTime)
}

/// Nanoseconds of CPU time consumed so far by the calling thread.
pub fn thread_cpu_ns() -> u64 {
    nanos(ClockId::ThreadCPUTime)
}

/// A starting point: wall clock and process CPU time.
#[derive(Debug, Clone, Copy)]
pub struct Mark {
    at: Instant,
    cpu_ns: u64,
}

impl Mark {
    /// Now.
    pub fn now() -> Mark {
        Mark {
            at: Instant::now(),
            cpu_ns: process_cpu_ns(),
        }
    }

    /// Wall and CPU time from the mark to now.
    pub fn elapsed(&self) -> Span {
        Span {
            secs: self.at.elapsed().as_secs_f64(),
            cpu_ns: process_cpu_ns().saturating_sub(self.cpu_ns),
        }
    }
}

/// Wall-clock seconds and CPU nanoseconds (all threads) of a measured stretch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Span {
    /// Wall-clock seconds.
    pub secs: f64,
    /// CPU nanoseconds of every thread of the process.
    pub cpu_ns: u64,
}

/// Keeps helper threads alive until a measurement is over (so that a run's threads all exist
/// while it is measured): a thread calls [`Linger::wait`] when its work is done; [`Release`]
/// (dropped after the end mark) lets it go.
#[derive(Debug)]
pub struct Linger(mpsc::Receiver<()>);

/// The other half of a [`Linger`]: dropping it releases the waiting thread.
#[derive(Debug)]
pub struct Release(#[allow(dead_code)] mpsc::Sender<()>);

impl Linger {
    /// A linked pair.
    pub fn pair() -> (Release, Linger) {
        let (tx, rx) = mpsc::channel();
        (Release(tx), Linger(rx))
    }

    /// Blocks until the [`Release`] is dropped.
    pub fn wait(self) {
        let _ = self.0.recv();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_grows_with_work() {
        let mark = Mark::now();
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let span = mark.elapsed();
        assert!(span.cpu_ns > 0, "no CPU time measured: {span:?}");
        assert!(span.secs > 0.0);
    }

    #[test]
    fn this_threads_cpu_time_is_part_of_the_process_time() {
        let start = Instant::now();
        let mut x = 0u64;
        while thread_cpu_ns() == 0 {
            for i in 0..1_000_000u64 {
                x = x.wrapping_mul(31).wrapping_add(i);
            }
            assert!(start.elapsed().as_secs() < 10, "no CPU time ever counted");
        }
        std::hint::black_box(x);
        let (thread, process) = (thread_cpu_ns(), process_cpu_ns());
        assert!(process >= thread);
    }

    #[test]
    fn linger_releases_on_drop() {
        let (release, linger) = Linger::pair();
        let t = std::thread::spawn(move || linger.wait());
        drop(release);
        t.join().unwrap();
    }
}
