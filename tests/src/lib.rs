//! # openp2p-tests
//!
//! The conformance suite: every scenario is written once, as a generic function over a
//! [`Harness`](harness::Harness), and runs against `openp2p-mio`, `openp2p-tokio`,
//! `openp2p-async-std` (under async-std and under smol) and the core's simulated network on
//! virtual time. `tests/conformance.rs` instantiates one `#[test]` per scenario and driver;
//! `tests/determinism.rs` checks that the simulated runs repeat their event traces exactly;
//! `tests/multi_host.rs` runs peers on three hosts made of network namespaces.
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
