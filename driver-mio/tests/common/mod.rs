//! Helpers shared by the loopback tests.
#![allow(dead_code)]

use openp2p_mio::{Event, Events};
use std::time::{Duration, Instant};

/// Generous: the suite runs in debug mode on a loaded 2-core machine.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// The next event matching `want`, skipping the others; panics after `PATIENCE`.
pub fn expect<F>(events: &mut Events, what: &str, mut want: F) -> Event
where
    F: FnMut(&Event) -> bool,
{
    let deadline = Instant::now() + PATIENCE;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match events.recv_timeout(left) {
            Ok(event) if want(&event) => return event,
            Ok(_) => {}
            Err(e) => panic!("waiting for {what}: {e}"),
        }
    }
}

/// A byte pattern with period 251 (prime, so it never lines up with power-of-two chunking):
/// `pattern(len + 251)[offset..][..len]` is the stream a sender with seed `offset` sends.
pub fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}
