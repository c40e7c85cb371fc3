//! A global budget shared fairly among the peers that want it.
//!
//! While the global bucket has tokens for whoever asks, peers take freely. Once a peer is refused,
//! the budget becomes *contended* and is handed out in rounds, round-robin: refused peers join a
//! queue; when the bucket has refilled enough, a round admits peers from the front of the queue,
//! as many as can get a worthwhile share ([`MIN_SHARE`] bytes or more), splits what the bucket
//! holds equally among them, and puts them back at the end of the queue. A member that drew
//! nothing since its last turn has stopped wanting and leaves the queue. So every
//! hungry peer gets the same share, in turn, whatever order the driver serves peers in; a peer
//! that does not show up only leaves its share in the bucket. Contention ends when nobody is
//! queued and the bucket has refilled completely.

use crate::bucket::Bucket;
use crate::clock::Nanos;
use crate::{PeerId, Rate};
use std::collections::VecDeque;

/// A peer's standing with one shared budget.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Share {
    /// The round this peer was last admitted to.
    round: u64,
    /// What is left of its share in that round.
    left: u64,
    /// It drew on its share since its last admission.
    used: bool,
    /// It was refused and wants a turn.
    wants: bool,
    /// It is in the queue.
    pub(crate) parked: bool,
}

#[derive(Debug)]
pub(crate) struct SharedBudget {
    bucket: Option<Bucket>,
    contended: bool,
    round: u64,
    queue: VecDeque<PeerId>,
    /// Queue entries of peers that went away (skipped when met; purged when they pile up).
    stale: usize,
    /// Candidates a started round may still look at (bounds one round's work to the queue).
    scan_left: usize,
    /// Peers admitted in the round in progress.
    admitted: u64,
    /// Peers admitted in the last round that admitted any.
    last_members: u64,
    wake_at: Option<Nanos>,
}

/// A round in progress: its number, each member's share, how many members it takes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Round {
    round: u64,
    share: u64,
    /// Members still to admit.
    pub(crate) quota: u64,
}

impl Round {
    /// Admits the peer at the front of the queue, or drops it if it stopped wanting. Returns
    /// whether it was admitted (the caller then re-queues it and wakes it).
    pub(crate) fn admit(&mut self, share: &mut Share) -> bool {
        if !share.wants && !share.used {
            // Drew nothing since its last admission: it stopped wanting. (It queues again if it
            // asks again.) A member still busy with its share stays, however slowly it takes
            // it, so a slow member is not pushed to the back of the queue.
            share.parked = false;
            return false;
        }
        *share = Share {
            round: self.round,
            left: self.share,
            used: false,
            wants: false,
            parked: true,
        };
        self.quota = self.quota.saturating_sub(1);
        true
    }
}

/// The smallest share worth a wake-up: with more waiters than the bucket holds shares of this
/// size, a round admits only as many (first in the queue first), the rest wait for the next.
pub(crate) const MIN_SHARE: u64 = 2048;

impl SharedBudget {
    pub(crate) fn new(rate: Option<Rate>, now: Nanos) -> Self {
        SharedBudget {
            bucket: rate.map(|r| Bucket::new(r, now)),
            contended: false,
            round: 0,
            queue: VecDeque::new(),
            stale: 0,
            scan_left: 0,
            admitted: 0,
            last_members: 0,
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
                self.stale = 0;
                self.queue.drain(..).collect()
            }
        }
    }

    /// How much of `want` this peer may use now (0: the caller must `park` it).
    pub(crate) fn grant(&mut self, share: &Share, want: u64, now: Nanos) -> u64 {
        let Some(bucket) = &mut self.bucket else {
            return want;
        };
        let available = bucket.available(now);
        if self.contended
            && self.queue.len() == self.stale
            && available >= bucket.burst()
            && self.last_members <= 1
        {
            // Nobody is queued, nobody drew from the bucket for a whole refill, and the last
            // contention was one peer's alone: it is over. (After several peers shared the
            // budget, contention stays: when they all resume after a quiet moment, they are
            // refused together and share the next round, instead of the first one served taking
            // the whole burst.)
            self.contended = false;
            self.queue.clear();
            self.stale = 0;
        }
        let entitled = if !self.contended {
            want
        } else if share.round == self.round && share.parked {
            want.min(share.left)
        } else {
            return 0;
        };
        // Never a grant of the few bytes earned since the last one: the peer waits (parks)
        // for a wake-up's worth (or all it is entitled to, if less) instead. Otherwise a driver
        // that writes as fast as it can keeps the bucket near empty without ever being refused,
        // contention never starts, and the peer it serves first takes most of the budget.
        let floor = bucket.wake_amount().min(entitled).max(1);
        if available < floor {
            0
        } else {
            entitled.min(available)
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
            share.used = true;
        }
    }

    /// Queues a refused peer for a turn.
    pub(crate) fn park(&mut self, peer: PeerId, share: &mut Share, now: Nanos) {
        if self.bucket.is_none() {
            return;
        }
        self.contended = true;
        share.wants = true;
        if !share.parked {
            share.parked = true;
            self.queue.push_back(peer);
        }
        if self.wake_at.is_none() {
            self.reschedule(now);
        }
    }

    fn reschedule(&mut self, now: Nanos) {
        self.wake_at = match &mut self.bucket {
            Some(bucket) if self.queue.len() > self.stale => {
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

    /// Starts a round if it is due. The caller then takes candidates with
    /// [`next_candidate`](Self::next_candidate), admits them with [`Round::admit`] until the
    /// quota is met, re-queues each admitted one with [`requeue`](Self::requeue), and calls
    /// [`finish_round`](Self::finish_round).
    pub(crate) fn start_round(&mut self, now: Nanos) -> Option<Round> {
        let due = self.wake_at.is_some_and(|at| at <= now);
        let bucket = self.bucket.as_mut()?;
        if !due {
            return None;
        }
        let queued = (self.queue.len() - self.stale.min(self.queue.len())) as u64;
        if queued == 0 {
            self.wake_at = None;
            return None;
        }
        let available = bucket.available(now);
        if available < bucket.wake_amount() {
            // Someone consumed since the deadline was computed: try again later.
            self.reschedule(now);
            return None;
        }
        let quota = queued.min((available / MIN_SHARE.min(available)).max(1));
        self.round += 1;
        self.wake_at = None;
        self.scan_left = self.queue.len();
        self.admitted = 0;
        Some(Round {
            round: self.round,
            share: (available / quota).max(1),
            quota,
        })
    }

    /// The next queued peer to consider for the round (possibly a stale id: skip it).
    pub(crate) fn next_candidate(&mut self) -> Option<PeerId> {
        if self.scan_left == 0 {
            return None;
        }
        self.scan_left -= 1;
        self.queue.pop_front()
    }

    /// Puts an admitted peer back at the end of the queue.
    pub(crate) fn requeue(&mut self, peer: PeerId) {
        self.admitted += 1;
        self.queue.push_back(peer);
    }

    /// Notes that a candidate was stale (its peer gone).
    pub(crate) fn skipped_stale(&mut self) {
        self.stale = self.stale.saturating_sub(1);
    }

    /// After a round: schedule the next one while anyone is queued.
    pub(crate) fn finish_round(&mut self, now: Nanos) {
        self.scan_left = 0;
        if self.admitted > 0 {
            self.last_members = self.admitted;
        }
        if self.wake_at.is_none() {
            self.reschedule(now);
        }
    }

    /// A queued peer went away: its entry is skipped when met. When stale entries pile up they
    /// are purged with `live` (amortised O(1) per closed peer).
    pub(crate) fn forget(&mut self, live: impl FnMut(&PeerId) -> bool) {
        self.stale += 1;
        if self.stale * 2 > self.queue.len() + 16 {
            self.queue.retain(live);
            self.stale = 0;
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
            if let Some(mut round) = budget.start_round(now) {
                while round.quota > 0 {
                    let Some(p) = budget.next_candidate() else {
                        break;
                    };
                    if round.admit(&mut shares[p.index as usize]) {
                        budget.requeue(p);
                    }
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
