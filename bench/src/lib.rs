//! openp2p's side-by-side benchmarks: every workload runs for a raw baseline of each runtime, for
//! each openp2p driver and, where it fits, for message-io, in one run; the runner writes
//! `BENCHMARKS.md` and its plots from the results.
//!
//! ```text
//! cargo run --release -p openp2p-bench                 # the full run (< 10 minutes)
//! cargo run --release -p openp2p-bench -- --quick      # seconds: tiny sizes, one run
//! cargo run --release -p openp2p-bench -- --only bulk,echo --runs 3 --out /tmp/b
//! cargo run --release -p openp2p-bench --features libp2p-anchor -- --only secure
//! ```
//!
//! # Features
//!
//! - `libp2p-anchor` (off by default, so the test suite never builds libp2p): adds rust-libp2p
//!   (TCP + Noise + Yamux, one `libp2p-stream` substream) to the secure workload's bulk
//!   measurement, as the anchor secure openp2p-tokio is held against (target: at least 2x its
//!   throughput). Without it the secure workload notes how to turn it on.
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod collect;
pub mod cpu;
pub mod loadgen;
pub mod machine;
pub mod model;
pub mod plot;
pub mod report;
pub mod subject;
pub mod subjects;
pub mod workloads;
