//! A token bucket computed on demand from injected time.
//!
//! No timer ticks: the bucket remembers when it was last refilled and how many tokens it held, and
//! refills exactly (integer arithmetic with the sub-token remainder carried) whenever it is asked.
//! So there is no drift however often or rarely it is consulted, and time that goes backwards
//! simply adds nothing.

use crate::clock::Nanos;
use crate::Rate;

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// Tokens are bytes.
#[derive(Debug, Clone)]
pub(crate) struct Bucket {
    /// The configured rate and burst (the peer's `Limits` are read back from its buckets).
    limit: Rate,
    tokens: u64,
    /// Remainder of `elapsed_ns * rate` not yet worth a whole token, in units of 1/1e9 token.
    frac: u128,
    last: Nanos,
}

impl Bucket {
    /// A full bucket.
    pub(crate) fn new(rate: Rate, now: Nanos) -> Self {
        Bucket {
            limit: rate,
            tokens: rate.burst(),
            frac: 0,
            last: now,
        }
    }

    /// Applies a new rate from `now` on; time before `now` is accounted at the old rate.
    pub(crate) fn set_rate(&mut self, rate: Rate, now: Nanos) {
        self.refill(now);
        self.limit = rate;
        if self.tokens >= self.limit.burst() {
            self.tokens = self.limit.burst();
            self.frac = 0;
        }
    }

    fn refill(&mut self, now: Nanos) {
        if now <= self.last {
            return;
        }
        let elapsed = u128::from(now - self.last);
        self.last = now;
        if self.tokens >= self.limit.burst() {
            self.frac = 0;
            return;
        }
        let earned = elapsed * u128::from(self.limit.bytes_per_sec()) + self.frac;
        let whole = earned / NANOS_PER_SEC;
        self.frac = earned % NANOS_PER_SEC;
        let tokens = u128::from(self.tokens) + whole;
        if tokens >= u128::from(self.limit.burst()) {
            self.tokens = self.limit.burst();
            self.frac = 0;
        } else {
            // Fits: below burst, which is a u64.
            self.tokens = tokens as u64;
        }
    }

    /// Tokens available at `now`.
    pub(crate) fn available(&mut self, now: Nanos) -> u64 {
        self.refill(now);
        self.tokens
    }

    /// Consumes `amount` tokens, at most what is available; returns what was consumed.
    pub(crate) fn take(&mut self, amount: u64, now: Nanos) -> u64 {
        self.refill(now);
        let taken = amount.min(self.tokens);
        self.tokens -= taken;
        taken
    }

    /// When the bucket will hold at least `want` tokens (capped at the burst): `now` if it already
    /// does.
    pub(crate) fn ready_at(&mut self, want: u64, now: Nanos) -> Nanos {
        self.refill(now);
        let want = want.clamp(1, self.limit.burst());
        if self.tokens >= want {
            return now;
        }
        let missing = u128::from(want - self.tokens) * NANOS_PER_SEC - self.frac;
        let wait = missing.div_ceil(u128::from(self.limit.bytes_per_sec()));
        now.saturating_add(u64::try_from(wait).unwrap_or(u64::MAX))
    }

    /// The rate (and burst) this bucket was configured with.
    pub(crate) fn limit(&self) -> Rate {
        self.limit
    }

    /// The most tokens the bucket holds.
    pub(crate) fn burst(&self) -> u64 {
        self.limit.burst()
    }

    /// How many tokens a throttled user should wait for before it is woken: enough to make the
    /// wake-up worth a system call, never more than the burst.
    pub(crate) fn wake_amount(&self) -> u64 {
        (self.limit.burst() / 2).max(1)
    }

    #[cfg(test)]
    pub(crate) fn invariants(&self) {
        debug_assert!(self.tokens <= self.limit.burst());
        debug_assert!(self.frac < NANOS_PER_SEC);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MS: u64 = 1_000_000;
    const SEC: u64 = 1_000_000_000;

    #[test]
    fn a_new_bucket_is_full_and_refills_at_its_rate() {
        let mut b = Bucket::new(Rate::per_second(1000).with_burst(100), 0);
        assert_eq!(b.take(150, 0), 100);
        assert_eq!(b.take(1, 0), 0);
        assert_eq!(b.available(50 * MS), 50);
        assert_eq!(b.available(SEC), 100, "capped at the burst");
    }

    #[test]
    fn ready_at_names_the_instant_the_tokens_exist() {
        let mut b = Bucket::new(Rate::per_second(1000).with_burst(100), 0);
        b.take(100, 0);
        let at = b.ready_at(10, 0);
        assert_eq!(at, 10 * MS);
        assert_eq!(b.available(at - 1), 9);
        assert_eq!(b.available(at), 10);
    }

    #[test]
    fn time_going_backwards_adds_nothing_and_does_not_panic() {
        let mut b = Bucket::new(Rate::per_second(1000).with_burst(100), 10 * SEC);
        b.take(100, 10 * SEC);
        assert_eq!(b.available(0), 0);
        assert_eq!(b.available(10 * SEC + 20 * MS), 20);
    }

    #[test]
    fn a_rate_change_applies_from_the_moment_it_is_made() {
        let mut b = Bucket::new(Rate::per_second(1000).with_burst(10_000), 0);
        b.take(10_000, 0);
        b.set_rate(Rate::per_second(100_000).with_burst(10_000), SEC);
        assert_eq!(b.available(SEC), 1000);
        assert_eq!(b.available(SEC + 10 * MS), 2000);
    }

    #[test]
    fn odd_rates_do_not_drift_over_a_long_run() {
        // 7 bytes/s consulted every 13 ms for an hour: exactly 7 * 3600 tokens, no drift.
        let mut b = Bucket::new(Rate::per_second(7).with_burst(100), 0);
        b.take(100, 0);
        let mut total = 0;
        let mut t = 0;
        while t < 3600 * SEC {
            t += 13 * MS;
            total += b.take(u64::MAX, t.min(3600 * SEC));
        }
        assert_eq!(total, 7 * 3600);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        /// Never more than burst + rate x elapsed, whatever the order of takes, rate changes and
        /// time steps (including time going backwards).
        #[test]
        fn grants_never_exceed_burst_plus_rate_times_elapsed(
            rate in 1u64..=1 << 30,
            burst in 1u64..=1 << 22,
            steps in proptest::collection::vec((0u64..200 * MS, any::<bool>(), 1u64..1 << 20), 1..200),
        ) {
            let mut b = Bucket::new(Rate::per_second(rate).with_burst(burst), 0);
            let mut t = 0;
            let mut granted: u128 = 0;
            for (dt, backwards, want) in steps {
                t += dt;
                let seen = if backwards { t.saturating_sub(dt * 2) } else { t };
                granted += u128::from(b.take(want, seen));
                b.invariants();
                let upper = u128::from(burst) + u128::from(rate) * u128::from(t) / NANOS_PER_SEC;
                prop_assert!(granted <= upper, "granted {granted} > {upper}");
            }
        }

        /// A saturated taker (it asks at least once per fill time, one segment per take, until
        /// refused) gets no less than rate x elapsed minus one segment.
        #[test]
        fn a_saturated_taker_gets_rate_times_elapsed_minus_one_segment(
            rate in 1u64..=1 << 30,
            burst in 1u64..=1 << 22,
            segment in 1u64..=1 << 17,
            steps in proptest::collection::vec(0u64..=1000, 1..200),
        ) {
            let mut b = Bucket::new(Rate::per_second(rate).with_burst(burst), 0);
            let fill = u64::try_from(u128::from(burst) * NANOS_PER_SEC / u128::from(rate))
                .unwrap_or(u64::MAX).min(10 * SEC);
            let mut t = 0;
            while b.take(segment, t) > 0 {}
            let mut granted: u128 = 0;
            for permille in steps {
                t += fill / 1000 * permille;
                loop {
                    let got = b.take(segment, t);
                    granted += u128::from(got);
                    if got < segment { break; }
                }
            }
            let owed = u128::from(rate) * u128::from(t) / NANOS_PER_SEC;
            prop_assert!(granted + u128::from(segment) + 1 >= owed, "granted {granted} < {owed} - {segment}");
        }
    }
}
