//! The bucket harness: a token bucket and a shared budget against their upper bounds.

use super::{rate, Input, NS};
use crate::bucket::Bucket;
use crate::fair::{Share, SharedBudget};
use crate::{PeerId, Rate};

/// Drives a token bucket and a shared (global) budget through takes, rate and burst changes and
/// time steps forward and backward, checking that neither ever grants more than its initial
/// burst plus the rate in force times the time elapsed, that a bucket emptied and refilled at a
/// steady rate grants what it earned (capped at its burst, within one token), that `ready_at`
/// names an instant at which the tokens exist, and that a parked peer always has a wake-up.
///
/// Takes and grants see time go backwards; rate changes are made at the latest time seen, as the
/// engine (whose clock is monotonic) makes them.
pub fn bucket(data: &[u8]) {
    let mut input = Input(data);
    let first = rate(&mut input).unwrap_or(Rate::per_second(1));
    let mut shared_rate = rate(&mut input);
    let mut b = Bucket::new(first, 0);
    let mut shared = SharedBudget::new(shared_rate, 0);
    let mut shares = [Share::default(); 4];
    let ids: Vec<PeerId> = (0..4)
        .map(|i| PeerId {
            index: i,
            serial: u64::from(i) + 1,
        })
        .collect();
    // Models, in token-nanoseconds: what each may have earned since the start, and granted.
    let (mut t, mut latest) = (0u64, 0u64);
    let mut rate_now = first;
    let (mut b_bound, mut b_granted) = (u128::from(first.burst()) * NS, 0u128);
    let (mut s_bound, mut s_granted) = (shared_rate.map_or(0, |r| u128::from(r.burst()) * NS), 0);
    let mut emptied_at: Option<u64> = None;
    let mut ops = 0;
    while !input.is_empty() && ops < 2_000 {
        ops += 1;
        if t > latest {
            let dt = u128::from(t - latest);
            b_bound += u128::from(rate_now.bytes_per_sec()) * dt;
            s_bound += shared_rate.map_or(0, |r| u128::from(r.bytes_per_sec()) * dt);
            latest = t;
        }
        match input.u8() % 10 {
            0 => t = t.saturating_add(u64::from(input.u32()) * u64::from(input.u8() % 8 + 1)),
            1 => t = t.saturating_sub(u64::from(input.u32())),
            2 | 3 => {
                let want = u64::from(input.u32()) >> (input.u8() % 32);
                let before = b.clone().available(t);
                let got = b.take(want, t);
                assert!(
                    got <= want && got <= before,
                    "took {got} of {want}, had {before}"
                );
                b_granted += u128::from(got);
                emptied_at = None;
            }
            4 => {
                let got = b.take(u64::MAX, t);
                b_granted += u128::from(got);
                if let Some(since) = emptied_at.filter(|_| t == latest) {
                    let earned = u128::from(rate_now.bytes_per_sec()) * u128::from(t - since);
                    let burst = u128::from(rate_now.burst());
                    let (low, high) = ((earned / NS).min(burst), (earned / NS + 1).min(burst));
                    let got = u128::from(got);
                    assert!(
                        low <= got && got <= high,
                        "steady refill gave {got}, earned {low}"
                    );
                }
                emptied_at = (t == latest).then_some(t);
            }
            5 => {
                if let Some(r) = rate(&mut input) {
                    b.set_rate(r, latest);
                    rate_now = r;
                    emptied_at = None;
                }
            }
            6 => {
                let want = u64::from(input.u16());
                let mut probe = b.clone();
                let at = probe.ready_at(want, t);
                assert!(at >= t, "ready_at in the past");
                if t == latest {
                    let need = want.clamp(1, rate_now.burst());
                    assert!(probe.available(at) >= need, "ready_at({want}) too early");
                }
                let wake = b.wake_amount();
                assert!(wake >= 1 && wake <= rate_now.burst());
            }
            7 => {
                let i = usize::from(input.u8() % 4);
                let want = u64::from(input.u16());
                let got = shared.grant(&shares[i], want, t);
                assert!(got <= want);
                if got == 0 {
                    shared.park(ids[i], &mut shares[i], t);
                } else {
                    let used = got.min(u64::from(input.u16()));
                    shared.consume(&mut shares[i], used, t);
                    s_granted += u128::from(used);
                    if shared_rate.is_none() {
                        s_bound += u128::from(used) * NS;
                    }
                }
            }
            8 => {
                if let Some(mut round) = shared.start_round(t) {
                    while round.quota > 0 {
                        let Some(p) = shared.next_candidate() else {
                            break;
                        };
                        if round.admit(&mut shares[p.slot()]) {
                            shared.requeue(p);
                        }
                    }
                    shared.finish_round(t);
                }
            }
            _ => {
                let r = rate(&mut input);
                for p in shared.set_rate(r, latest) {
                    shares[p.slot()].parked = false;
                }
                if let (Some(r), None) = (r, shared_rate) {
                    // A new bucket starts full.
                    s_bound += u128::from(r.burst()) * NS;
                }
                shared_rate = r;
            }
        }
        assert!(
            b.clone().available(t) <= rate_now.burst(),
            "tokens over the burst"
        );
        assert!(
            b_granted * NS <= b_bound,
            "bucket granted {b_granted}, bound {}",
            b_bound / NS
        );
        assert!(
            s_granted * NS <= s_bound,
            "budget granted {s_granted}, bound {}",
            s_bound / NS
        );
        if shares.iter().any(|s| s.parked) {
            assert!(shared.wake_at().is_some(), "a parked peer has no wake-up");
        }
    }
}
