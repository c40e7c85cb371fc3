//! Injected time, made monotonic.
//!
//! The engine never reads a clock. Every input carries the driver's `now`; this module turns those
//! instants into nanoseconds since the first one seen and refuses to go backwards: an earlier `now`
//! is treated as the latest one seen (saturation, never a panic).

use std::time::{Duration, Instant};

/// Nanoseconds since the engine's epoch (its first observed instant).
pub(crate) type Nanos = u64;

/// Converts a duration to nanoseconds, saturating at `u64::MAX` (about 584 years).
pub(crate) fn nanos(d: Duration) -> Nanos {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[derive(Debug, Clone)]
pub(crate) struct Clock {
    epoch: Option<Instant>,
    latest: Nanos,
}

impl Clock {
    pub(crate) fn new() -> Self {
        Clock {
            epoch: None,
            latest: 0,
        }
    }

    /// Records `now` and returns it as monotonic nanoseconds.
    pub(crate) fn observe(&mut self, now: Instant) -> Nanos {
        let epoch = *self.epoch.get_or_insert(now);
        let t = nanos(now.saturating_duration_since(epoch));
        if t > self.latest {
            self.latest = t;
        }
        self.latest
    }

    /// The latest time observed.
    pub(crate) fn latest(&self) -> Nanos {
        self.latest
    }

    /// Converts engine time back to an `Instant`; `None` before the first observation.
    pub(crate) fn instant(&self, t: Nanos) -> Option<Instant> {
        let epoch = self.epoch?;
        epoch.checked_add(Duration::from_nanos(t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_going_backwards_saturates_at_the_latest_instant() {
        let base = crate::test_clock::base();
        let mut clock = Clock::new();
        assert_eq!(clock.observe(base + Duration::from_secs(2)), 0);
        assert_eq!(clock.observe(base + Duration::from_secs(5)), 3_000_000_000);
        assert_eq!(clock.observe(base), 3_000_000_000);
        assert_eq!(clock.observe(base + Duration::from_secs(6)), 4_000_000_000);
    }

    #[test]
    fn instants_round_trip_through_engine_time() {
        let base = crate::test_clock::base();
        let mut clock = Clock::new();
        assert_eq!(clock.instant(0), None);
        clock.observe(base);
        assert_eq!(
            clock.instant(1_500),
            Some(base + Duration::from_nanos(1_500))
        );
    }
}
