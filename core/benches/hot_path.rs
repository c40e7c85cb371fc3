//! The engine's hot path: one message through `send` + `write_to` on one engine and `read_from`
//! + `poll_event` on another, with no sockets. Prints allocations per message, then times it.
//!
//! `cargo bench -p openp2p-core --bench hot_path`

#[path = "../tests/support/hot_path.rs"]
mod hot_path;

use criterion::{Criterion, Throughput};
use hot_path::{count_allocations, CountingAlloc, Pair};
use openp2p_core::{Bytes, Framing};
use std::hint::black_box;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

const CASES: [(Framing, usize, &str); 4] = [
    (Framing::Raw, 64, "raw/64B"),
    (Framing::Raw, 64 * 1024, "raw/64KiB"),
    (Framing::LengthPrefixed, 64, "length_prefixed/64B"),
    (Framing::LengthPrefixed, 64 * 1024, "length_prefixed/64KiB"),
];

/// Every case plaintext, then over a Noise channel (AES-256-GCM).
fn pairs() -> impl Iterator<Item = (Framing, usize, String, bool)> {
    [false, true].into_iter().flat_map(|secure| {
        CASES.into_iter().map(move |(framing, size, name)| {
            let name = if secure {
                format!("secure/{name}")
            } else {
                name.to_string()
            };
            (framing, size, name, secure)
        })
    })
}

fn pair(framing: Framing, secure: bool) -> Pair {
    if secure {
        Pair::secure(framing)
    } else {
        Pair::new(framing)
    }
}

fn report_allocations() {
    println!("allocations per message in steady state (after 2,000 warm-up messages):");
    for (framing, size, name, secure) in pairs() {
        let mut pair = pair(framing, secure);
        let message = Bytes::from(vec![1u8; size]);
        for _ in 0..2_000 {
            pair.transfer(&message);
        }
        let rounds = 10_000;
        let n = count_allocations(|| {
            for _ in 0..rounds {
                black_box(pair.transfer(&message));
            }
        });
        println!(
            "  {name:<24} {:.4} allocations/message",
            n as f64 / rounds as f64
        );
    }
}

fn main() {
    report_allocations();
    let mut c = Criterion::default().configure_from_args();
    let mut group = c.benchmark_group("send_and_receive");
    for (framing, size, name, secure) in pairs() {
        let mut pair = pair(framing, secure);
        let message = Bytes::from(vec![1u8; size]);
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_function(&name, |b| b.iter(|| black_box(pair.transfer(&message))));
    }
    group.finish();
    c.final_summary();
}
