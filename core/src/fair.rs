//! A global budget shared fairly among the peers that want it.
//!
//! While the global bucket has tokens for whoever asks, peers take freely. Once a peer is refused,
//! the budget becomes *contended*: refused peers park in a queue, and when the bucket has refilled
//! enough, a new round starts in which every parked peer gets an equal share of what the bucket
//! holds. A peer that is not a member of the current round (or has used its share) parks for the
//! next one. So no parked peer waits more than one round, whatever order the driver serves peers
//! in, and a peer that does not show up only leaves its share in the bucket.

use crate::bucket::Bucket;
use crate::clock::Nanos;
use crate::{PeerId, Rate};

/// A peer's standing with one shared budget.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Share {
    /// The round this peer is a member of.
    round: u64,
    /// What is left of its share in that round.
    left: u64,
    /// Whether it is in the queue for the next round.
    pub(crate) parked: bool,
}

#[derive(Debug)]
pub(crate) struct SharedBudget {
    bucket: Option<Bucket>,
    contended: bool,
    round: u64,
    waiting: Vec<PeerId>,
    wake_at: Option<Nanos>,
}

/// The peers admitted to a new round, and the share each may take.
#[derive(Debug)]
pub(crate) struct Round {
    pub(crate) members: Vec<PeerId>,
    round: u64,
    share: u64,
}

impl Round {
    /// Makes `share` a member of this round.
    pub(crate) fn admit(&self, share: &mut Share) {
        *share = Share {
            round: self.round,
            left: self.share,
            parked: false,
        };
    }
}

impl SharedBudget {
    pub(crate) fn new(rate: Option<Rate>, now: Nanos) -> Self {
        SharedBudget {
            bucket: rate.map(|r| Bucket::new(r, now)),
            contended: false,
            round: 0,
            waiting: Vec::new(),
            wake_at: None,
        }
    }

    /// Changes the rate. Removing the limit ends contention: the caller must wake the returned
    /// peers.
    pub(crate) fn set_rate(&mut self, rate: Option<Rate>, now: Nanos) -> Vec<PeerId> {
        match (rate, &mut self.bucket) {
            (Some(rate), Some(bucket)) => {
                bucket.set_rate(rate, now);
                self.reschedule(now);
                Vec::new()
            }
            (Some(rate), None) => {
                self.bucket = Some(Bucket::new(rate, now));
                Vec::new()
            }
            (None, _) => {
                self.bucket = None;
                self.contended = false;
                self.wake_at = None;
                std::mem::take(&mut self.waiting)
            }
        }
    }

    /// How much of `want` this peer may use now (0: the caller must `park` it).
    pub(crate) fn grant(&mut self, share: &Share, want: u64, now: Nanos) -> u64 {
        let Some(bucket) = &mut self.bucket else {
            return want;
        };
        let available = bucket.available(now);
        if self.contended && self.waiting.is_empty() && available >= bucket.burst() {
            // Nobody waits and nobody drew from the bucket for a whole refill: the contention is
            // over. (A round in progress keeps the bucket below full, so this never cuts one.)
            self.contended = false;
        }
        if !self.contended {
            return want.min(available);
        }
        if share.round == self.round && !share.parked {
            want.min(share.left).min(available)
        } else {
            0
        }
    }

    /// Records that the peer used `n` bytes of what it was granted.
    pub(crate) fn consume(&mut self, share: &mut Share, n: u64, now: Nanos) {
        let Some(bucket) = &mut self.bucket else {
            return;
        };
        bucket.take(n, now);
        if self.contended && share.round == self.round {
            share.left = share.left.saturating_sub(n);
        }
    }

    /// Queues a refused peer for the next round.
    pub(crate) fn park(&mut self, peer: PeerId, share: &mut Share, now: Nanos) {
        if self.bucket.is_none() {
            return;
        }
        self.contended = true;
        if !share.parked {
            share.parked = true;
            self.waiting.push(peer);
        }
        if self.wake_at.is_none() {
            self.reschedule(now);
        }
    }

    fn reschedule(&mut self, now: Nanos) {
        self.wake_at = match &mut self.bucket {
            Some(bucket) if !self.waiting.is_empty() => {
                let amount = bucket.wake_amount();
                Some(bucket.ready_at(amount, now))
            }
            _ => None,
        };
    }

    /// When the next round should start.
    pub(crate) fn wake_at(&self) -> Option<Nanos> {
        self.wake_at
    }

    /// Starts a round if it is time: the caller admits each member (skipping stale ids) and turns
    /// their interest back on. `spare` is reused as the next round's member list to avoid
    /// allocating.
    pub(crate) fn start_round(&mut self, now: Nanos, spare: Vec<PeerId>) -> Option<Round> {
        let due = self.wake_at.is_some_and(|at| at <= now);
        let bucket = self.bucket.as_mut()?;
        if !due {
            return None;
        }
        if self.waiting.is_empty() {
            self.contended = false;
            self.wake_at = None;
            return None;
        }
        let available = bucket.available(now);
        if available < bucket.wake_amount() {
            // Someone consumed since the deadline was computed: try again later.
            self.reschedule(now);
            return None;
        }
        let members = std::mem::replace(&mut self.waiting, spare);
        self.round += 1;
        let share = (available / members.len() as u64).max(1);
        self.wake_at = None;
        Some(Round {
            members,
            round: self.round,
            share,
        })
    }

    /// Called after a round's members were admitted: if anyone parked meanwhile, schedule the
    /// next round.
    pub(crate) fn finish_round(&mut self, now: Nanos) {
        if self.wake_at.is_none() {
            self.reschedule(now);
        }
    }

    /// Forgets a parked peer's place (it is gone). O(waiting), only on disconnect of a parked peer.
    pub(crate) fn forget(&mut self, peer: PeerId) {
        if let Some(i) = self.waiting.iter().position(|p| *p == peer) {
            self.waiting.swap_remove(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MS: Nanos = 1_000_000;

    fn id(i: u32) -> PeerId {
        PeerId {
            index: i,
            serial: u64::from(i),
        }
    }

    /// Drives `n` always-hungry peers against one shared budget, serving them in the order the
    /// `order` seeds give each round (a stand-in for any driver's readiness order).
    fn run(n: usize, rate: u64, order: &[u8], steps: usize) -> Vec<u64> {
        let mut budget = SharedBudget::new(Some(Rate::per_second(rate)), 0);
        let mut shares = vec![Share::default(); n];
        let mut got = vec![0u64; n];
        let mut now = 0;
        for step in 0..steps {
            // Serve in a rotating, seed-dependent order.
            let start = usize::from(order[step % order.len()]) % n;
            for k in 0..n {
                let i = (start + k) % n;
                let want = 64 * 1024;
                let g = budget.grant(&shares[i], want, now);
                if g == 0 {
                    budget.park(id(i as u32), &mut shares[i], now);
                } else {
                    budget.consume(&mut shares[i], g, now);
                    got[i] += g;
                }
            }
            now += MS;
            if let Some(round) = budget.start_round(now, Vec::new()) {
                for p in &round.members {
                    round.admit(&mut shares[p.index as usize]);
                }
                budget.finish_round(now);
            }
        }
        got
    }

    #[test]
    fn four_hungry_peers_split_a_global_limit_evenly() {
        let got = run(4, 1024 * 1024, &[0, 3, 1, 2, 2, 0], 10_000);
        let total: u64 = got.iter().sum();
        for g in &got {
            let share = *g as f64 / total as f64;
            assert!((0.24..=0.26).contains(&share), "{got:?}");
        }
        // 10 s at 1 MiB/s plus the initial burst.
        let expect = 10.0 * 1024.0 * 1024.0;
        assert!((total as f64 - expect).abs() / expect < 0.02, "{total}");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        /// No waiting peer starves: with any number of hungry peers and any service order, every
        /// peer gets within a few rounds' worth of an equal share.
        #[test]
        fn no_waiting_peer_starves(
            n in 1usize..8,
            rate in 10_000u64..10_000_000,
            order in proptest::collection::vec(any::<u8>(), 1..16),
        ) {
            let got = run(n, rate, &order, 2_000);
            let total: u64 = got.iter().sum();
            let fair = total / n as u64;
            // One round moves at most one burst; allow a few rounds of slack.
            let burst = Rate::per_second(rate).burst();
            for g in &got {
                prop_assert!(*g + 3 * burst >= fair, "peer got {g}, fair {fair}, {got:?}");
            }
        }
    }
}
