//! Pure arithmetic of the rate workload: arrivals binned by time, the error of the average, the
//! worst 1 s window, the largest burst, and Jain's fairness index. No IO, no clock.
//!
//! Definitions (also stated in BENCHMARKS.md through the workload's notes):
//! - **bins**: bytes that arrived in each 100 ms interval since the sender started.
//! - **average error**: `bytes in the whole run / duration / target - 1`.
//! - **worst 1 s window**: over every window of 10 consecutive bins (sliding by one bin), the
//!   largest `|window rate / target - 1|`, with its sign.
//! - **largest burst**: the most bytes received ahead of the schedule, `max over bin ends t of
//!   (bytes received in [0, t] - target x t)`, never below 0. A token bucket that starts full
//!   shows its burst size here.

use std::time::Duration;

/// Width of one arrival bin.
pub const BIN: Duration = Duration::from_millis(100);

/// Bins per 1 s window.
pub const BINS_PER_SECOND: usize = 10;

/// Bytes that arrived per [`BIN`], from the start of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct Arrivals {
    bins: Vec<u64>,
}

impl Arrivals {
    /// Room for a run of `duration` (arrivals after it are ignored).
    pub fn new(duration: Duration) -> Arrivals {
        let n = (duration.as_nanos() / BIN.as_nanos()).max(1) as usize;
        Arrivals { bins: vec![0; n] }
    }

    /// Records `bytes` that arrived `since_start` after the start. Returns false (and records
    /// nothing) once past the end of the run.
    pub fn record(&mut self, since_start: Duration, bytes: u64) -> bool {
        let index = (since_start.as_nanos() / BIN.as_nanos()) as usize;
        match self.bins.get_mut(index) {
            Some(bin) => {
                *bin += bytes;
                true
            }
            None => false,
        }
    }

    /// The bins, oldest first.
    pub fn bins(&self) -> &[u64] {
        &self.bins
    }

    /// Length of the run.
    pub fn duration(&self) -> Duration {
        BIN * self.bins.len() as u32
    }

    /// Bytes over the whole run.
    pub fn total(&self) -> u64 {
        self.bins.iter().sum()
    }

    /// Average rate over the whole run, bytes per second.
    pub fn average_rate(&self) -> f64 {
        self.total() as f64 / self.duration().as_secs_f64()
    }

    /// The error of the average against `target` (bytes per second): `0.01` is 1 % too fast.
    pub fn average_error(&self, target: f64) -> f64 {
        self.average_rate() / target - 1.0
    }

    /// The worst 1 s window: the error (signed) of the window whose rate is furthest from
    /// `target`. A run shorter than 1 s has one window, the whole run.
    pub fn worst_window_error(&self, target: f64) -> f64 {
        let width = BINS_PER_SECOND.min(self.bins.len()).max(1);
        let seconds = BIN.as_secs_f64() * width as f64;
        self.bins
            .windows(width)
            .map(|w| w.iter().sum::<u64>() as f64 / seconds / target - 1.0)
            .fold(
                0.0,
                |worst: f64, e| if e.abs() > worst.abs() { e } else { worst },
            )
    }

    /// The largest burst: most bytes received ahead of `target` x elapsed, at any bin end.
    pub fn largest_burst(&self, target: f64) -> f64 {
        let mut received = 0u64;
        let mut ahead: f64 = 0.0;
        for (i, bytes) in self.bins.iter().enumerate() {
            received += bytes;
            let due = target * BIN.as_secs_f64() * (i + 1) as f64;
            ahead = ahead.max(received as f64 - due);
        }
        ahead
    }

    /// The most bytes in any 1 s window (the whole run if shorter).
    pub fn busiest_second(&self) -> u64 {
        let width = BINS_PER_SECOND.min(self.bins.len()).max(1);
        self.bins
            .windows(width)
            .map(|w| w.iter().sum::<u64>())
            .max()
            .unwrap_or(0)
    }

    /// Achieved rate over the trailing 1 s window at every bin end from 1 s on (a run shorter
    /// than 1 s gives one point, its average): `(seconds since start, bytes per second)`, for
    /// plots. Windows shorter than 1 s are left out: the bucket's initial burst would dominate
    /// them.
    pub fn trailing_rates(&self) -> Vec<(f64, f64)> {
        let width = BINS_PER_SECOND.min(self.bins.len()).max(1);
        let seconds = BIN.as_secs_f64() * width as f64;
        self.bins
            .windows(width)
            .enumerate()
            .map(|(first, window)| {
                let t = BIN.as_secs_f64() * (first + width) as f64;
                (t, window.iter().sum::<u64>() as f64 / seconds)
            })
            .collect()
    }
}

/// Jain's fairness index of `rates`: `(sum x)^2 / (n x sum x^2)`; 1 when all are equal, `1/n`
/// when one takes everything. 0 for no rates or all zero.
pub fn jain_index(rates: &[f64]) -> f64 {
    let sum: f64 = rates.iter().sum();
    let squares: f64 = rates.iter().map(|x| x * x).sum();
    if rates.is_empty() || squares == 0.0 {
        return 0.0;
    }
    sum * sum / (rates.len() as f64 * squares)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(bins: &[u64]) -> Arrivals {
        Arrivals {
            bins: bins.to_vec(),
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn jain_is_one_for_equal_shares_and_one_over_n_for_a_hog() {
        assert!(close(jain_index(&[5.0, 5.0, 5.0, 5.0]), 1.0));
        assert!(close(jain_index(&[8.0, 0.0, 0.0, 0.0]), 0.25));
        // (1+2+3+4)^2 / (4 * 30) = 100 / 120
        assert!(close(jain_index(&[1.0, 2.0, 3.0, 4.0]), 100.0 / 120.0));
        assert_eq!(jain_index(&[]), 0.0);
        assert_eq!(jain_index(&[0.0, 0.0]), 0.0);
    }

    #[test]
    fn records_into_100ms_bins_and_ignores_arrivals_after_the_end() {
        let mut a = Arrivals::new(Duration::from_secs(1));
        assert_eq!(a.bins().len(), 10);
        assert!(a.record(Duration::from_millis(0), 5));
        assert!(a.record(Duration::from_millis(99), 5));
        assert!(a.record(Duration::from_millis(100), 7));
        assert!(a.record(Duration::from_millis(999), 1));
        assert!(!a.record(Duration::from_millis(1000), 100));
        assert_eq!(a.bins()[0], 10);
        assert_eq!(a.bins()[1], 7);
        assert_eq!(a.bins()[9], 1);
        assert_eq!(a.total(), 18);
    }

    #[test]
    fn exact_schedule_has_no_error_and_no_burst() {
        // 1000 B/s for 2 s: 100 B per bin.
        let a = run(&[100; 20]);
        assert!(close(a.average_rate(), 1000.0));
        assert!(close(a.average_error(1000.0), 0.0));
        assert!(close(a.worst_window_error(1000.0), 0.0));
        assert!(close(a.largest_burst(1000.0), 0.0));
    }

    #[test]
    fn an_initial_burst_shows_in_the_burst_the_first_window_and_the_average() {
        // 1000 B/s for 2 s, plus a 50 B burst in the first bin.
        let mut bins = [100u64; 20];
        bins[0] += 50;
        let a = run(&bins);
        assert!(close(a.largest_burst(1000.0), 50.0));
        // First window: 1050 B in 1 s.
        assert!(close(a.worst_window_error(1000.0), 0.05));
        // 2050 B in 2 s.
        assert!(close(a.average_error(1000.0), 0.025));
    }

    #[test]
    fn a_stall_gives_a_negative_worst_window_and_the_burst_after_it_counts_from_the_start() {
        // 1000 B/s for 3 s; bins 10..15 empty, then bin 15 catches up all 500 B at once.
        let mut bins = [100u64; 30];
        for b in &mut bins[10..15] {
            *b = 0;
        }
        bins[15] += 500;
        let a = run(&bins);
        // Window of bins 10..20: 1000 B in 1 s - exact; window 5..15: 500 B: -50 %.
        assert!(close(a.worst_window_error(1000.0), -0.5));
        // Cumulative catches up to the schedule exactly: never ahead.
        assert!(close(a.largest_burst(1000.0), 0.0));
        assert!(close(a.average_error(1000.0), 0.0));
    }

    #[test]
    fn trailing_rates_are_full_one_second_windows() {
        let mut bins = [100u64; 12];
        bins[0] = 300;
        let a = run(&bins);
        let r = a.trailing_rates();
        assert_eq!(r.len(), 3);
        assert!(close(r[0].0, 1.0));
        assert!(close(r[0].1, 1200.0)); // bins 0..10: 1200 B in 1 s
        assert!(close(r[1].0, 1.1));
        assert!(close(r[1].1, 1000.0)); // bins 1..11
        assert!(close(r[2].0, 1.2));
        let short = run(&[50, 50, 50]).trailing_rates();
        assert_eq!(short.len(), 1);
        assert!(close(short[0].0, 0.3));
        assert!(close(short[0].1, 500.0));
    }

    #[test]
    fn the_busiest_second_is_the_largest_sum_of_ten_consecutive_bins() {
        let mut bins = [1u64; 25];
        bins[12] = 50;
        bins[21] = 40;
        // Windows holding bin 12 sum to 9 + 50 = 59; with both 12 and 21: 8 + 90 = 98.
        assert_eq!(run(&bins).busiest_second(), 98);
        assert_eq!(run(&[3, 4]).busiest_second(), 7);
        assert_eq!(run(&[]).busiest_second(), 0);
    }

    #[test]
    fn a_run_shorter_than_a_second_is_one_window() {
        let a = run(&[50, 50, 50]); // 150 B in 0.3 s = 500 B/s
        assert!(close(a.worst_window_error(1000.0), -0.5));
    }
}
