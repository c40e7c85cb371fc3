//! Fuzzing harnesses: the engine's state machine, the frame decoders, the token bucket and the
//! secure channel, driven by arbitrary bytes and checked against models after every step.
//!
//! Each entry point takes the fuzzer's input and panics when an invariant breaks, so the same
//! harness serves `cargo fuzz` (the `fuzz/` targets are thin wrappers), the committed corpus
//! replay and the proptests in `core/tests/fuzz_harness.rs`. Every input is valid: bytes are read
//! through a cursor that yields zeros once exhausted, and every choice is taken modulo its range.
//! Work per input is capped, so no input runs long. The base `Instant` comes from the caller (the
//! engine itself never reads a clock, and neither does this module).
//!
//! Input layouts (so that seeds can be written by hand):
//! - [`engine`]: 7 configuration bytes (4 more per enabled limit set), then operations, each an
//!   opcode byte (modulo 25) and its
//!   arguments. Payloads and read data come from the input itself: the same bytes serve as data
//!   and as time steps.
//! - [`frame_length_prefixed`], [`frame_delimited`]: 4 setup bytes (max frame size, segment size
//!   and pool, delimiter, split count `k`), `k` split bytes (chunk size; bit 7: the application
//!   drops what it holds afterwards), then the byte stream the remote sends.
//! - [`discovery`]: the whole input is first decoded as one beacon; then 4 configuration
//!   bytes, our node id, port and jitter seed, then operations (opcode modulo 8 and arguments).
//! - [`bucket`]: 4 setup bytes (rate and burst of a bucket and of a shared budget), then
//!   operations (opcode modulo 10 and arguments).
//! - [`secure_handshake`]: 2 setup bytes (role, suite, pin or allowlist, pool, EOF, bytes queued
//!   early), a chunk count and chunk bytes (size, time step, read path), then the remote's bytes.
//! - [`secure_stream`]: a setup byte (framing, suite, pool, EOF), messages (count, then size and
//!   content seed each), wire mutations (count, then kind, offset and argument each), then chunk
//!   bytes for the receiver's reads.

mod bucket;
mod discovery;
mod engine;
mod frames;
mod reference;
mod secure;

pub use bucket::bucket;
pub use discovery::discovery;
pub use engine::engine;
pub use frames::{frame_delimited, frame_length_prefixed};
pub use secure::{secure_handshake, secure_stream};

use crate::{Framing, Limits, Rate};
use std::io;

/// Time starts this far after the base, so backward steps can go before the clock's epoch.
const START: u64 = 1_000_000_000_000;
/// Nanoseconds per second.
const NS: u128 = 1_000_000_000;

/// A cursor over the fuzzer's bytes; reads past the end yield zeros.
struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }
    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }
    fn u32(&mut self) -> u32 {
        u32::from_be_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
    fn pick<T: Copy>(&mut self, table: &[T]) -> T {
        table[usize::from(self.u8()) % table.len()]
    }
    /// Up to `n` bytes of input (fewer when it runs out).
    fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        head
    }
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn rate(input: &mut Input<'_>) -> Option<Rate> {
    let per_sec = input.pick(&[0u64, 1, 100, 1_000, 10_000, 65_536, 1 << 20, 10_000_000]);
    let burst = input.pick(&[0u64, 1, 7, 64, 1_000, 4_096, 100_000, 0]);
    match (per_sec, burst) {
        (0, _) => None,
        (r, 0) => Some(Rate::per_second(r)),
        (r, b) => Some(Rate::per_second(r).with_burst(b)),
    }
}

fn limits(input: &mut Input<'_>) -> Limits {
    Limits {
        upload: rate(input),
        download: rate(input),
    }
}

fn framing(input: &mut Input<'_>, default: Framing) -> Framing {
    match input.u8() % 6 {
        0 | 1 => default,
        2 => Framing::Raw,
        3 => Framing::LengthPrefixed,
        4 => Framing::Delimited(0),
        _ => Framing::Delimited(b'\n'),
    }
}

fn io_error(input: &mut Input<'_>) -> io::ErrorKind {
    input.pick(&[
        io::ErrorKind::ConnectionReset,
        io::ErrorKind::ConnectionRefused,
        io::ErrorKind::BrokenPipe,
        io::ErrorKind::TimedOut,
        io::ErrorKind::WouldBlock,
        io::ErrorKind::Interrupted,
        io::ErrorKind::Other,
    ])
}
