//! What BENCHMARKS.md says about the machine: CPU, cores, kernel, compiler, date, load.

use std::time::{SystemTime, UNIX_EPOCH};

/// The machine a run happened on.
#[derive(Debug, Clone)]
pub struct Machine {
    /// CPU model name from `/proc/cpuinfo`.
    pub cpu: String,
    /// Logical CPUs available to this process.
    pub cores: usize,
    /// Kernel release.
    pub kernel: String,
    /// `rustc -V` of the compiler that built the runner.
    pub rustc: String,
    /// Whether the runner was built with optimisations.
    pub release: bool,
}

impl Machine {
    /// Reads it from `/proc` (fields it cannot read say `unknown`).
    pub fn probe() -> Machine {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_else(|| "unknown".into());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "unknown".into());
        let rustc = match env!("OPENP2P_BENCH_RUSTC") {
            "" => "unknown".to_string(),
            v => v.to_string(),
        };
        Machine {
            cpu,
            cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
            kernel,
            rustc,
            release: !cfg!(debug_assertions),
        }
    }
}

/// The commit of the source tree the runner was started in (`git rev-parse --short HEAD`),
/// with the paths that differ from it under the crates measured (`core`, the drivers, `bench`),
/// if any: figures from a tree with uncommitted driver changes say so.
pub fn source_revision() -> String {
    let repo = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .arg("-C")
            .arg(repo)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| String::from_utf8(o.stdout).ok())
    };
    let Some(head) = git(&["rev-parse", "--short", "HEAD"]) else {
        return "unknown".into();
    };
    let dirty: Vec<String> = git(&[
        "status",
        "--porcelain",
        "--",
        "core",
        "driver-mio",
        "driver-tokio",
        "driver-async-std",
        "bench",
    ])
    .unwrap_or_default()
    .lines()
    .filter_map(|l| l.get(3..))
    // The runner's own output is not source.
    .filter(|p| !p.starts_with("bench/plots"))
    .map(str::to_string)
    .collect();
    if dirty.is_empty() {
        head.trim().to_string()
    } else {
        format!(
            "{} plus uncommitted changes to {}",
            head.trim(),
            dirty.join(", ")
        )
    }
}

/// The 1, 5 and 15 minute load averages, as `/proc/loadavg` gives them.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".into())
}

/// Now, as `YYYY-MM-DD HH:MM UTC`.
pub fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    utc(secs)
}

/// `secs` since the Unix epoch as `YYYY-MM-DD HH:MM UTC` (proleptic Gregorian calendar).
pub fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let (hour, minute) = ((secs % 86_400) / 3600, (secs % 3600) / 60);
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {hour:02}:{minute:02} UTC")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(utc(1_795_000_000), "2026-11-18 11:06 UTC");
    }

    #[test]
    fn probe_reads_something() {
        let m = Machine::probe();
        assert!(m.cores >= 1);
        assert!(!m.rustc.is_empty());
    }
}
