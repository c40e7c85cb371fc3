//! Live progress: indicatif bars (rate, ETA) when stdout is a terminal, otherwise one plain line
//! per active transfer every second (logs, CI, tests).

use crate::rate::{human_bytes, human_rate};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use std::fmt;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

const TICK: Duration = Duration::from_secs(1);

/// A set of progress bars drawn together.
#[derive(Debug)]
pub struct Progress {
    kind: Kind,
    /// Whether a terminal bar was drawn (its line then needs ending when the bars go away).
    drawn: Mutex<bool>,
}

/// Bytes per second since the bar started: steadier than a short-window estimate, and what a
/// rate-limited transfer should show.
fn average(state: &ProgressState) -> f64 {
    let secs = state.elapsed().as_secs_f64();
    if secs > 0.0 {
        state.pos() as f64 / secs
    } else {
        0.0
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        // indicatif leaves the cursor at the end of the last bar: end that line so the next
        // output (a summary, an error) starts on its own.
        if *self.drawn.get_mut().unwrap_or_else(PoisonError::into_inner) {
            println!();
        }
    }
}

#[derive(Debug)]
enum Kind {
    Bars(MultiProgress),
    Lines {
        bars: Arc<Mutex<Vec<Arc<LineBar>>>>,
        // Dropping the sender stops the ticker thread.
        _stop: mpsc::Sender<()>,
    },
}

impl Progress {
    /// Bars on a terminal, plain lines otherwise.
    pub fn new() -> Progress {
        if std::io::stdout().is_terminal() {
            Progress {
                kind: Kind::Bars(MultiProgress::with_draw_target(ProgressDrawTarget::stdout())),
                drawn: Mutex::new(false),
            }
        } else {
            Progress::lines()
        }
    }

    /// Plain lines whatever stdout is.
    pub fn lines() -> Progress {
        let bars: Arc<Mutex<Vec<Arc<LineBar>>>> = Arc::default();
        let (stop, stopped) = mpsc::channel::<()>();
        let watched = bars.clone();
        std::thread::spawn(move || {
            while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(TICK) {
                let list = watched.lock().unwrap_or_else(PoisonError::into_inner);
                for bar in list.iter() {
                    bar.tick();
                }
            }
        });
        Progress {
            kind: Kind::Lines { bars, _stop: stop },
            drawn: Mutex::new(false),
        }
    }

    /// A new bar of `total` bytes, labelled `label`.
    pub fn add(&self, label: &str, total: u64) -> Bar {
        match &self.kind {
            Kind::Bars(multi) => {
                let style = ProgressStyle::with_template(
                    "{prefix:>9} [{bar:16.cyan/blue}] {bytes:>10}/{total_bytes:<10} {rate:>13} ETA {left:>4} {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .with_key("rate", |state: &ProgressState, w: &mut dyn fmt::Write| {
                    let _ = w.write_str(&human_rate(average(state)));
                })
                .with_key("left", |state: &ProgressState, w: &mut dyn fmt::Write| {
                    let left = state.len().unwrap_or(0).saturating_sub(state.pos());
                    let rate = average(state);
                    let _ = if left == 0 {
                        w.write_str("0s")
                    } else if rate > 0.0 {
                        write!(w, "{:.0}s", left as f64 / rate)
                    } else {
                        w.write_str("?")
                    };
                })
                .progress_chars("=> ");
                *self.drawn.lock().unwrap_or_else(PoisonError::into_inner) = true;
                let bar = multi.add(ProgressBar::new(total).with_style(style));
                bar.set_prefix(label.to_string());
                Bar(BarKind::Fancy(bar))
            }
            Kind::Lines { bars, .. } => {
                let bar = Arc::new(LineBar {
                    label: label.to_string(),
                    total: AtomicU64::new(total),
                    position: AtomicU64::new(0),
                    last: Mutex::new((0, Instant::now())),
                    start: Instant::now(),
                    finished: AtomicBool::new(false),
                });
                bars.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(bar.clone());
                Bar(BarKind::Line(bar))
            }
        }
    }

    /// Prints a line above the bars (or just a line).
    pub fn println(&self, line: &str) {
        match &self.kind {
            Kind::Bars(multi) => {
                if multi.println(line).is_err() {
                    println!("{line}");
                }
            }
            Kind::Lines { .. } => println!("{line}"),
        }
    }
}

impl Default for Progress {
    fn default() -> Self {
        Progress::new()
    }
}

/// One transfer's bar.
#[derive(Debug, Clone)]
pub struct Bar(BarKind);

#[derive(Debug, Clone)]
enum BarKind {
    Fancy(ProgressBar),
    Line(Arc<LineBar>),
}

#[derive(Debug)]
struct LineBar {
    label: String,
    total: AtomicU64,
    position: AtomicU64,
    /// Position and time of the last printed line.
    last: Mutex<(u64, Instant)>,
    start: Instant,
    finished: AtomicBool,
}

impl LineBar {
    fn tick(&self) {
        if self.finished.load(Ordering::Relaxed) {
            return;
        }
        let pos = self.position.load(Ordering::Relaxed);
        let total = self.total.load(Ordering::Relaxed);
        let now = Instant::now();
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        let rate = (pos.saturating_sub(last.0)) as f64 / (now - last.1).as_secs_f64().max(1e-3);
        *last = (pos, now);
        let average = pos as f64 / self.start.elapsed().as_secs_f64().max(1e-3);
        let eta = if average > 0.0 {
            format!("{:.0}s", total.saturating_sub(pos) as f64 / average)
        } else {
            "?".into()
        };
        let percent = (pos * 100).checked_div(total).unwrap_or(100);
        println!(
            "{}: {} / {} ({percent}%) {} ETA {eta}",
            self.label,
            human_bytes(pos),
            human_bytes(total),
            human_rate(rate)
        );
    }
}

impl Bar {
    /// Bytes done so far.
    pub fn set_position(&self, position: u64) {
        match &self.0 {
            BarKind::Fancy(bar) => bar.set_position(position),
            BarKind::Line(bar) => bar.position.store(position, Ordering::Relaxed),
        }
    }

    /// Stops the bar with a final message.
    pub fn finish(&self, message: &str) {
        match &self.0 {
            BarKind::Fancy(bar) => bar.finish_with_message(message.to_string()),
            BarKind::Line(bar) => {
                if !bar.finished.swap(true, Ordering::Relaxed) {
                    println!(
                        "{}: {} {message}",
                        bar.label,
                        human_bytes(bar.position.load(Ordering::Relaxed))
                    );
                }
            }
        }
    }
}
