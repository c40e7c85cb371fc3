//! `cargo fuzz run frame_length_prefixed`: see `openp2p_core::fuzzing::frame_length_prefixed` for what is checked.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use std::time::Instant;

/// One base instant for the whole run: the harness adds the input's time steps to it.
static BASE: OnceLock<Instant> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    openp2p_core::fuzzing::frame_length_prefixed(data, *BASE.get_or_init(Instant::now));
});
