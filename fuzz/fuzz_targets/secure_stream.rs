//! `cargo fuzz run secure_stream`: see `openp2p_core::fuzzing::secure_stream` for what is checked.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use std::time::Instant;

/// One base instant for the whole run: the harness adds the input's time steps to it.
static BASE: OnceLock<Instant> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    openp2p_core::fuzzing::secure_stream(data, *BASE.get_or_init(Instant::now));
});
