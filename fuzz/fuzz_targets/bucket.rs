//! `cargo fuzz run bucket`: see `openp2p_core::fuzzing::bucket` for what is checked.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    openp2p_core::fuzzing::bucket(data);
});
