//! The workloads. Each exposes `pub fn run(opts: &Opts) -> Outcome`.

pub mod allocs;
pub mod allocs_subjects;
pub mod bulk;
pub mod churn;
pub mod echo;
pub mod idle;
pub mod idle_child;
pub mod rate;
pub mod rate_stats;
pub mod secure;
pub mod stall_probe;
pub mod sync_node;
