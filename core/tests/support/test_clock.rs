//! The one place the core's unit tests read the wall clock: a base instant for virtual time.
//! (The library itself never reads a clock; tests need some `Instant` to start from.)

use std::time::Instant;

/// Any real instant to count virtual time from.
pub(crate) fn base() -> Instant {
    Instant::now()
}
