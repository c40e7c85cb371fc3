//! openp2p's side-by-side benchmarks: every workload runs for a raw baseline of each runtime, for
//! each openp2p driver and, where it fits, for message-io, in one run; the runner writes
//! `BENCHMARKS.md` and its plots from the results.
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod model;
