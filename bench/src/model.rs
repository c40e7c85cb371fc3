//! What a workload hands back to the runner: table rows and time series for plots.

/// How the runner was asked to run.
#[derive(Debug, Clone)]
pub struct Opts {
    /// Seconds-long smoke run: tiny sizes, one run each; checks that everything still works.
    pub quick: bool,
    /// Interleaved repetitions of each measurement (medians are reported).
    pub runs: usize,
}

/// One line of a results table: a metric of one subject in one workload.
#[derive(Debug, Clone)]
pub struct Row {
    /// Workload name, e.g. `"bulk"`, `"echo"`, `"churn"`, `"idle"`, `"allocs"`, `"rate"`.
    pub workload: String,
    /// What was measured, e.g. `"raw tokio"`, `"openp2p-tokio"`, `"message-io"`.
    pub subject: String,
    /// The metric, e.g. `"GB/s"` or `"p99 latency"`.
    pub metric: String,
    /// Unit of `median` and `samples`, e.g. `"GB/s"`, `"us"`, `"B/peer"`.
    pub unit: String,
    /// Median of `samples`.
    pub median: f64,
    /// Every run's value, in run order.
    pub samples: Vec<f64>,
    /// Ratio of this subject's median to its baseline's (same runtime), where there is one.
    pub ratio: Option<f64>,
    /// The target in words, e.g. `">= 0.95x raw tokio"`, `"<= 1 KiB"`, `"+-1 %"`.
    pub target: Option<String>,
    /// Whether the target was met, where there is one.
    pub met: Option<bool>,
}

/// Achieved rate over time for one rate-limit run, plotted against its target.
#[derive(Debug, Clone)]
pub struct Series {
    /// Title, e.g. `"openp2p-tokio, 1 MiB/s"`.
    pub title: String,
    /// The configured rate in bytes per second.
    pub target_bps: f64,
    /// `(seconds since start, achieved bytes per second over the preceding window)`.
    pub points: Vec<(f64, f64)>,
}

/// Everything one workload measured.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Table rows.
    pub rows: Vec<Row>,
    /// Time series for plots.
    pub series: Vec<Series>,
    /// Free-text remarks for BENCHMARKS.md (limits hit, why a target was missed, ...).
    pub notes: Vec<String>,
}

/// Median of `values` (the mean of the middle two for an even count); 0 for none.
pub fn median(values: &[f64]) -> f64 {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if sorted.is_empty() {
        return 0.0;
    }
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 0 {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    }
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn median_of_odd_even_and_empty() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
        assert_eq!(median(&[f64::NAN, 5.0]), 5.0);
    }
}
