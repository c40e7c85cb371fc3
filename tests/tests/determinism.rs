//! Every scenario on the simulated network is deterministic: run twice with the same seed, it
//! produces the same event trace (every event, its node and its virtual time).

use openp2p_core::sim::TraceLine;
use openp2p_tests::harness::SimHarness;
use openp2p_tests::scenarios;

fn trace_of(seed: u64, scenario: fn(&mut SimHarness)) -> Vec<TraceLine> {
    let mut h = SimHarness::new(seed);
    scenario(&mut h);
    h.trace()
}

/// Runs `scenario` twice with `seed` and compares the traces line by line.
fn assert_repeats(seed: u64, scenario: fn(&mut SimHarness)) {
    let first = trace_of(seed, scenario);
    let second = trace_of(seed, scenario);
    assert!(!first.is_empty(), "the scenario emitted no event");
    if let Some(i) = (0..first.len().min(second.len())).find(|&i| first[i] != second[i]) {
        panic!(
            "traces differ at line {i}:\n  first:  {:.300?}\n  second: {:.300?}",
            first[i], second[i]
        );
    }
    assert_eq!(first.len(), second.len(), "trace lengths");
}

macro_rules! deterministic {
    ($($scenario:ident),* $(,)?) => {
        $(
            #[test]
            fn $scenario() {
                assert_repeats(0x5EED, scenarios::$scenario);
            }
        )*
    };
}

deterministic!(
    lifecycle,
    lifecycle_ipv6,
    integrity,
    scale,
    oversized_frame,
    flood_max_peers,
    flood_max_per_ip,
    slow_reader,
    reset_mid_transfer,
    connect_refused,
    connect_refused_queued,
    connect_timeout,
    idle_timeout,
    graceful_shutdown,
    rate_upload,
    rate_download,
    rate_global_shared,
    rate_limit_changed,
    send_many,
);

/// The seed matters: the simulated network cuts reads at seeded random sizes, so another seed
/// gives another trace of the same raw transfer (the comparison above is not vacuous).
#[test]
fn another_seed_gives_another_trace() {
    let raw = |h: &mut SimHarness| {
        scenarios::integrity_with(h, openp2p_core::Framing::Raw, 1);
    };
    assert_ne!(trace_of(1, raw), trace_of(2, raw));
}
