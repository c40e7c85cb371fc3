//! The runner's `--quick` mode end to end: every workload runs, BENCHMARKS.md has a table per
//! workload, and every plot it links exists and is an SVG. No timing assertions.

use std::path::Path;
use std::process::Command;

const WORKLOADS: [&str; 6] = ["bulk", "echo", "churn", "idle", "allocs", "rate"];

#[test]
fn quick_run_writes_a_report_with_every_workload_and_its_plots() {
    let out = std::env::temp_dir().join(format!("openp2p-bench-quick-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let exe = env!("CARGO_BIN_EXE_openp2p-bench");
    let status = Command::new(exe)
        .args(["--quick", "--out"])
        .arg(&out)
        .env("OPENP2P_BENCH_EXE", exe)
        .status()
        .expect("the runner starts");
    assert!(status.success(), "the runner failed: {status}");
    let md = std::fs::read_to_string(out.join("BENCHMARKS.md")).expect("BENCHMARKS.md written");
    for w in WORKLOADS {
        let section = md
            .split(&format!("\n## {w}\n"))
            .nth(1)
            .unwrap_or_else(|| panic!("no section for {w}"));
        let section = section.split("\n## ").next().unwrap_or_default();
        assert!(
            section.contains("| subject | metric | median |"),
            "no table for {w}:\n{section}"
        );
        let rows = section
            .lines()
            .filter(|l| l.starts_with("| ") && !l.starts_with("| subject |"))
            .count();
        assert!(rows >= 1, "the {w} table has no rows:\n{section}");
    }
    let links: Vec<&str> = md
        .split("](")
        .skip(1)
        .filter_map(|rest| rest.split(')').next())
        .filter(|l| l.ends_with(".svg"))
        .collect();
    assert!(links.contains(&"bench/plots/ratios.svg"), "no ratio chart");
    assert!(links.len() >= 2, "no rate-over-time plots: {links:?}");
    for link in links {
        let svg = std::fs::read_to_string(out.join(Path::new(link)))
            .unwrap_or_else(|e| panic!("{link}: {e}"));
        assert!(
            svg.contains("<svg") && svg.len() > 200,
            "{link} is not a non-empty SVG"
        );
    }
    std::fs::remove_dir_all(&out).expect("clean up");
}
