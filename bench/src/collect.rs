//! Gathers the samples of one workload's interleaved runs and turns them into table rows:
//! medians, ratios to the baseline of the same runtime, targets met or missed.

use crate::model::{median, Outcome, Row};
use crate::subject::Subject;
use std::collections::HashMap;

/// One measured quantity of a workload.
#[derive(Debug, Clone)]
pub struct Metric {
    /// Name in the table, e.g. `"throughput"`.
    pub name: &'static str,
    /// Unit, e.g. `"GB/s"`.
    pub unit: &'static str,
    /// For openp2p's drivers: the least acceptable ratio to the baseline (higher is better).
    pub min_ratio: Option<f64>,
}

impl Metric {
    /// A metric without a target.
    pub fn plain(name: &'static str, unit: &'static str) -> Metric {
        Metric {
            name,
            unit,
            min_ratio: None,
        }
    }

    /// A higher-is-better metric whose ratio to the baseline must be at least `min_ratio`.
    pub fn targeted(name: &'static str, unit: &'static str, min_ratio: f64) -> Metric {
        Metric {
            name,
            unit,
            min_ratio: Some(min_ratio),
        }
    }
}

/// Samples of every (subject, metric) of one workload, in run order.
#[derive(Debug)]
pub struct Collector {
    workload: &'static str,
    metrics: Vec<Metric>,
    samples: HashMap<(Subject, usize), Vec<f64>>,
    failures: Vec<String>,
}

impl Collector {
    /// An empty collection for `workload` measuring `metrics`.
    pub fn new(workload: &'static str, metrics: Vec<Metric>) -> Collector {
        Collector {
            workload,
            metrics,
            samples: HashMap::new(),
            failures: Vec::new(),
        }
    }

    /// Records one run of `subject`: a value per metric, in the order of `metrics`.
    pub fn push(&mut self, subject: Subject, values: &[f64]) {
        for (i, &v) in values.iter().enumerate().take(self.metrics.len()) {
            self.samples.entry((subject, i)).or_default().push(v);
        }
    }

    /// Records a failed run of `subject` (it appears in the notes; its samples lack this run).
    pub fn fail(&mut self, subject: Subject, run: usize, error: &dyn std::fmt::Display) {
        eprintln!(
            "  {} run {run}: {} FAILED: {error}",
            self.workload,
            subject.name()
        );
        self.failures.push(format!(
            "{} run {run} of {} failed: {error}",
            self.workload,
            subject.name()
        ));
    }

    fn median_of(&self, subject: Subject, metric: usize) -> Option<f64> {
        let v = self.samples.get(&(subject, metric))?;
        v.iter().any(|x| x.is_finite()).then(|| median(v))
    }

    /// The table rows (subjects in [`Subject::ALL`] order) and the failures as notes.
    pub fn finish(self) -> Outcome {
        let mut outcome = Outcome::default();
        for subject in Subject::ALL {
            for (i, metric) in self.metrics.iter().enumerate() {
                let Some(samples) = self.samples.get(&(subject, i)) else {
                    continue;
                };
                let Some(m) = self.median_of(subject, i) else {
                    continue;
                };
                let base = subject.baseline().and_then(|b| self.median_of(b, i));
                let ratio = base.filter(|b| *b > 0.0).map(|b| m / b);
                let target = metric.min_ratio.filter(|_| subject.is_openp2p());
                let (target_text, met) = match (target, subject.baseline()) {
                    (Some(t), Some(b)) => (
                        Some(format!(">= {t}x {}", b.name())),
                        Some(ratio.is_some_and(|r| r >= t)),
                    ),
                    _ => (None, None),
                };
                outcome.rows.push(Row {
                    workload: self.workload.to_string(),
                    subject: subject.name().to_string(),
                    metric: metric.name.to_string(),
                    unit: metric.unit.to_string(),
                    median: m,
                    samples: samples.clone(),
                    ratio,
                    target: target_text,
                    met,
                });
            }
        }
        outcome.notes = self.failures;
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_are_to_the_baseline_of_the_same_runtime_and_targets_apply_to_openp2p_only() {
        let mut c = Collector::new("bulk", vec![Metric::targeted("throughput", "GB/s", 0.95)]);
        for v in [2.0, 4.0, 3.0] {
            c.push(Subject::RawMio, &[v]);
            c.push(Subject::Openp2pMio, &[v * 0.9]);
            c.push(Subject::MessageIo, &[v * 0.5]);
        }
        c.fail(Subject::RawTokio, 1, &"refused");
        let out = c.finish();
        let row = |s: &str| out.rows.iter().find(|r| r.subject == s).unwrap();
        assert_eq!(row("raw mio").median, 3.0);
        assert_eq!(row("raw mio").ratio, None);
        assert!((row("openp2p-mio").ratio.unwrap() - 0.9).abs() < 1e-9);
        assert_eq!(row("openp2p-mio").met, Some(false));
        assert_eq!(
            row("openp2p-mio").target.as_deref(),
            Some(">= 0.95x raw mio")
        );
        assert_eq!(row("message-io").met, None);
        assert!(out.rows.iter().all(|r| r.subject != "raw tokio"));
        assert_eq!(out.notes.len(), 1);
    }
}
