//! How much the shared machine disturbed a timed run: a thread that sleeps 5 ms at a time and
//! records how late it wakes. A token bucket cannot make up for time its process was not
//! scheduled, so a rate run during which this probe lost tens of milliseconds per second says
//! more about the machine than about the limiter.

use super::rate_stats::Arrivals;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const TICK: Duration = Duration::from_millis(5);

/// Lateness below this per tick is ordinary timer slack and is not counted.
const SLACK: Duration = Duration::from_millis(1);

/// What the probe saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Disturbance {
    /// The longest single stall.
    pub longest: Duration,
    /// The most lateness (beyond timer slack) within any 1 s window.
    pub worst_second: Duration,
}

impl Disturbance {
    /// True when the run should not be trusted: one stall over 100 ms, or over 50 ms lost in
    /// some second (the 5 % a 1 s window of a rate target may deviate).
    pub fn disturbed(&self) -> bool {
        self.longest > Duration::from_millis(100) || self.worst_second > Duration::from_millis(50)
    }
}

/// A running probe; [`finish`](Self::finish) stops it.
#[derive(Debug)]
pub struct StallProbe {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<(Duration, Arrivals)>,
}

impl StallProbe {
    /// Starts probing for at most `horizon` (lateness after it is not binned).
    pub fn start(horizon: Duration) -> StallProbe {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let start = Instant::now();
            let mut lateness = Arrivals::new(horizon);
            let mut longest = Duration::ZERO;
            while !flag.load(Ordering::Relaxed) {
                let before = Instant::now();
                std::thread::sleep(TICK);
                let late = before.elapsed().saturating_sub(TICK);
                longest = longest.max(late);
                if late > SLACK {
                    // Lateness in microseconds, binned like bytes.
                    lateness.record(start.elapsed(), late.as_micros() as u64);
                }
            }
            (longest, lateness)
        });
        StallProbe { stop, thread }
    }

    /// Stops the probe and reports (a probe that died reports the worst).
    pub fn finish(self) -> Disturbance {
        self.stop.store(true, Ordering::Relaxed);
        match self.thread.join() {
            Ok((longest, lateness)) => Disturbance {
                longest,
                worst_second: Duration::from_micros(lateness.busiest_second()),
            },
            Err(_) => Disturbance {
                longest: Duration::MAX,
                worst_second: Duration::MAX,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disturbed_by_one_long_stall_or_by_many_short_ones() {
        let calm = Disturbance {
            longest: Duration::from_millis(20),
            worst_second: Duration::from_millis(30),
        };
        assert!(!calm.disturbed());
        let long = Disturbance {
            longest: Duration::from_millis(150),
            ..calm
        };
        assert!(long.disturbed());
        let many = Disturbance {
            worst_second: Duration::from_millis(80),
            ..calm
        };
        assert!(many.disturbed());
    }

    #[test]
    fn a_probe_reports_after_finish() {
        let probe = StallProbe::start(Duration::from_secs(1));
        let seen = probe.finish();
        assert!(seen.longest < Duration::MAX);
        assert!(seen.worst_second <= Duration::from_secs(1));
    }
}
