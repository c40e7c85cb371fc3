//! CPU time of every thread of this process, from Linux's per-thread `schedstat`.
//!
//! A thread that has exited is no longer listed, so a measurement keeps every thread it covers
//! alive until its end mark is taken (see [`Linger`]).

use std::sync::mpsc;
use std::time::Instant;

/// Nanoseconds of CPU time consumed so far by the threads of this process that are alive now
/// (the sum of the first field of `/proc/self/task/*/schedstat`); 0 where that is unavailable.
/// The kernel adds a running thread's current slice at scheduler ticks, so each thread's figure
/// may lag by up to one tick (a few milliseconds): measure stretches of a second or so.
pub fn process_cpu_ns() -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// Nanoseconds of CPU time consumed so far by the calling thread (`/proc/thread-self/schedstat`);
/// 0 where that is unavailable.
pub fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
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

/// Keeps helper threads alive until a measurement is over: a thread calls [`Linger::wait`] when
/// its work is done; [`Release`] (dropped after the end mark) lets it go.
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
        // The kernel folds a running thread's time into schedstat at scheduler ticks: spin
        // until one has been counted.
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
