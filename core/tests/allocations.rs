//! Steady-state sending and receiving perform no heap allocation per message.

#[path = "support/hot_path.rs"]
mod hot_path;

use hot_path::{count_allocations, CountingAlloc, Pair};
use openp2p_core::{Bytes, Framing};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

fn allocations_per_message(framing: Framing, size: usize, secure: bool) -> f64 {
    let mut pair = if secure {
        Pair::secure(framing)
    } else {
        Pair::new(framing)
    };
    let message = Bytes::from(vec![0xAB; size]);
    // Warm up: queues, event rings and pool segments reach their working size.
    for _ in 0..2_000 {
        pair.transfer(&message);
    }
    let rounds = 5_000;
    let allocations = count_allocations(|| {
        for _ in 0..rounds {
            assert_eq!(pair.transfer(&message), size as u64);
        }
    });
    allocations as f64 / rounds as f64
}

#[test]
fn steady_state_messages_allocate_nothing() {
    for framing in [Framing::Raw, Framing::LengthPrefixed] {
        for size in [64, 64 * 1024] {
            for secure in [false, true] {
                let per_message = allocations_per_message(framing, size, secure);
                assert_eq!(
                    per_message, 0.0,
                    "{framing:?} {size} B secure={secure}: {per_message} allocations/message"
                );
            }
        }
    }
}
