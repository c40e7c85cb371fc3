//! Workload 5: heap allocations per message in steady state, in the whole process.
//!
//! Each subject runs in a child process of its own (`openp2p-bench --child allocs <subject>
//! <size> <warm-up> <count>`) whose global allocator counts every `alloc`, `alloc_zeroed` and
//! `realloc` of every thread. The child starts two nodes of one driver (sender and receiver,
//! both in the process, so a message's whole path is counted: send, write, read, framing,
//! delivery), sends `warm-up` messages, then counts the allocations made while `count` more go
//! through, and prints them. Messages are `LengthPrefixed` frames of one pre-built `Bytes`
//! (cloning it does not allocate), sent in batches (64 of 64 B, 8 of 64 KiB) each of which the
//! receiver takes whole before the next batch; `sent_events` is off (nobody listens to them).
//! The raw baselines write each frame with one `write_all` and read into a fixed buffer.
//!
//! [`CountingAlloc`] counts only once a child switches it on: in the runner it costs one relaxed
//! atomic load per allocation.

use super::allocs_subjects;
use crate::model::{Opts, Outcome, Row};
use std::alloc::{GlobalAlloc, Layout, System};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

/// The bench binary's global allocator: the system allocator, counting allocations of every
/// thread once [`start_counting`] has been called (a child of this workload does).
///
/// ```ignore
/// #[global_allocator]
/// static ALLOC: openp2p_bench::workloads::allocs::CountingAlloc =
///     openp2p_bench::workloads::allocs::CountingAlloc;
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct CountingAlloc;

fn count() {
    if COUNTING.load(Ordering::Relaxed) {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so the
// `GlobalAlloc` contract (layout, pointer provenance) is exactly `System`'s; counting touches
// only atomics and never allocates.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: forwarded unchanged (see the impl's comment).
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Switches counting on for this process.
pub fn start_counting() {
    COUNTING.store(true, Ordering::SeqCst);
}

/// Allocations counted so far (all threads).
pub fn allocations() -> u64 {
    ALLOCATIONS.load(Ordering::SeqCst)
}

/// Whether [`CountingAlloc`] is this process's global allocator and counting (it allocates once
/// to find out).
pub fn counting_works() -> bool {
    start_counting();
    let before = allocations();
    drop(std::hint::black_box(Box::new(std::hint::black_box(7u64))));
    allocations() > before
}

/// The subjects, in table order: each runtime's raw baseline, then its openp2p driver.
pub const SUBJECTS: [&str; 6] = [
    "raw mio",
    "openp2p-mio",
    "raw tokio",
    "openp2p-tokio",
    "raw smol",
    "openp2p-async-std",
];

/// Message sizes measured.
pub const SIZES: [usize; 2] = [64, 64 * 1024];

const CHILD_TIMEOUT: Duration = Duration::from_secs(90);

/// `(warm-up, counted)` messages of `size` bytes.
fn counts(size: usize, quick: bool) -> (u64, u64) {
    match (size <= 1024, quick) {
        (true, false) => (20_000, 200_000),
        (false, false) => (2_000, 20_000),
        (true, true) => (500, 2_000),
        (false, true) => (50, 200),
    }
}

fn size_name(size: usize) -> String {
    if size >= 1024 {
        format!("{} KiB", size / 1024)
    } else {
        format!("{size} B")
    }
}

/// Runs every subject at every size, each in a child process.
pub fn run(opts: &Opts) -> Outcome {
    let mut outcome = Outcome::default();
    outcome.notes.push(
        "allocs: allocations (alloc + alloc_zeroed + realloc, every thread) per message in a \
         child process holding both ends (sender and receiver of one driver, LengthPrefixed, \
         sent_events off), counted over the messages after a warm-up; target 0 (met below 0.01, \
         i.e. fewer than one allocation per 100 messages). Raw baselines: one write_all per \
         frame, reads into a fixed buffer. One run each (the counts are not timing-dependent)."
            .into(),
    );
    for size in SIZES {
        let (warm, counted) = counts(size, opts.quick);
        for subject in SUBJECTS {
            match run_child(subject, size, warm, counted) {
                Ok(total) => {
                    let per = total as f64 / counted as f64;
                    let openp2p = subject.starts_with("openp2p");
                    outcome.rows.push(Row {
                        workload: "allocs".into(),
                        subject: subject.into(),
                        metric: format!("allocations per message, {}", size_name(size)),
                        unit: "allocs/msg".into(),
                        median: per,
                        samples: vec![per],
                        ratio: None,
                        // The target is openp2p's; the raw loops are references.
                        target: openp2p.then(|| "0".into()),
                        met: openp2p.then_some(per < 0.01),
                    });
                    outcome.notes.push(format!(
                        "allocs: {subject}, {}: {total} allocations over {counted} messages \
                         (after {warm} warm-up)",
                        size_name(size)
                    ));
                }
                Err(e) => outcome.notes.push(format!(
                    "allocs: {subject}, {} failed: {e}",
                    size_name(size)
                )),
            }
        }
    }
    outcome
}

/// The path of the bench binary to re-execute.
pub fn bench_exe() -> Result<std::path::PathBuf, String> {
    match std::env::var_os("OPENP2P_BENCH_EXE") {
        Some(path) => Ok(path.into()),
        None => std::env::current_exe().map_err(|e| format!("current_exe: {e}")),
    }
}

fn run_child(subject: &str, size: usize, warm: u64, counted: u64) -> Result<u64, String> {
    let mut child = Command::new(bench_exe()?)
        .args(["--child", "allocs", subject])
        .args([size.to_string(), warm.to_string(), counted.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawn: {e}"))?;
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if started.elapsed() > CHILD_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("no result in {} s", CHILD_TIMEOUT.as_secs()));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("wait: {e}")),
        }
    }
    let output = child
        .wait_with_output()
        .map_err(|e| format!("output: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    for line in stdout.lines() {
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (Some("allocs"), Some(n)) => {
                return n.parse().map_err(|_| format!("bad line {line:?}"))
            }
            (Some("error"), _) => return Err(line.to_string()),
            _ => {}
        }
    }
    Err(format!(
        "no result ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr).trim()
    ))
}

/// Entry point of `openp2p-bench --child allocs <subject> <size> <warm-up> <count>`: prints
/// `allocs <n>` (allocations while `count` messages went through) or `error <why>`.
pub fn child_main(args: &[String]) -> ExitCode {
    let parsed = (|| -> Option<(&str, usize, u64, u64)> {
        Some((
            args.first()?.as_str(),
            args.get(1)?.parse().ok()?,
            args.get(2)?.parse().ok()?,
            args.get(3)?.parse().ok()?,
        ))
    })();
    let Some((subject, size, warm, counted)) = parsed else {
        println!("error usage: --child allocs <subject> <size> <warm-up> <count>");
        return ExitCode::FAILURE;
    };
    if !counting_works() {
        println!("error counting allocator not installed (#[global_allocator] in main.rs)");
        return ExitCode::FAILURE;
    }
    match allocs_subjects::measure(subject, size, warm, counted) {
        Ok(n) => {
            println!("allocs {n}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("error {e}");
            ExitCode::FAILURE
        }
    }
}
