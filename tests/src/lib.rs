//! # openp2p-tests
//!
//! The conformance suite: every scenario is written once, as a generic function over a
//! [`Harness`](harness::Harness), and runs against `openp2p-mio`, `openp2p-tokio`,
//! `openp2p-async-std` (under async-std and under smol) and the core's simulated network on
//! virtual time, in plaintext and, through [`Secure`](harness::Secure), with every node behind a
//! Noise XX channel. `tests/conformance.rs` instantiates one `#[test]` per scenario, driver and
//! mode (`lifecycle::tokio`, `lifecycle::tokio_secure`); `tests/interop.rs` checks the wire
//! against a Noise peer written on `snow`;
//! `tests/determinism.rs` checks that the simulated runs repeat their event traces exactly;
//! `tests/multi_host.rs` runs peers on three hosts made of network namespaces.
//!
//! | Scenario (`scenarios::…`) | What it pins |
//! |---|---|
//! | `lifecycle`, `lifecycle_ipv6` | listen, connect, a message each way, graceful close: the exact event sequence on both nodes, on 127.0.0.1 and ::1 |
//! | `integrity` | 0 B to 4 MiB messages in `Raw`, `LengthPrefixed`, `Delimited`, both directions at once, by length and checksum |
//! | `scale` | 1,000 connections between two nodes, each echoing a 4 KiB message |
//! | `oversized_frame` | `FrameTooLarge { len, max }` for the offender only |
//! | `flood_max_peers`, `flood_max_per_ip` | refusals past the limits; admitted peers carry on |
//! | `slow_reader` | `QueueFull` at the high-water mark, bounded memory, then `Writable` |
//! | `reset_mid_transfer` | `Disconnected { Io, unsent }` and accepted = written + unsent |
//! | `connect_refused`, `connect_refused_queued`, `connect_timeout` (sim) | connect failures and their accounting |
//! | `idle_timeout`, `graceful_shutdown` | the idle cut; everything queued arrives on shutdown |
//! | `rate_upload`, `rate_download`, `rate_global_shared`, `rate_limit_changed` | token buckets within 5 % over 4 s (1 % over 10 virtual s) |
//! | `send_many` | one payload to 50 peers, a dead id refused alone |
//! | `pinned_key_matches`, `pinned_key_mismatch` | a pinned dial: both keys in `Connected`, or `KeyMismatch { expected, actual }` and no `Connected` anywhere |
//! | `allowlist_refused_by_listener`, `allowlist_refused_by_dialer` | `NotAllowed { key }` on the side whose allowlist lacks the key; slots freed |
//! | `plaintext_client_refused`, `plaintext_listener_refused` (real drivers) | a `std::net` plaintext peer against a secure node fails within the handshake timeout |
//! | `handshake_slowloris` (real drivers) | a one-byte-per-200-ms handshake is cut at the timeout; another peer carries on |
//! | `mitm_bit_flip`, `mitm_truncated`, `mitm_garbage_message` (real drivers) | a tampering proxy: `Secure(Decrypt)` / `Secure(Truncated)`, everything before delivered, nothing after |
//!
//! This crate is test support: its functions panic (with the driver's name and what was
//! expected) when a driver breaks the contract, which is how a test fails.
//!
//! ```
//! use openp2p_tests::harness::SimHarness;
//! use openp2p_tests::scenarios;
//!
//! scenarios::lifecycle(&mut SimHarness::new(7));
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod harness;
pub mod netns;

pub mod payload;
pub mod scenarios;
