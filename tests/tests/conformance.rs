//! Every scenario against every driver: one `#[test]` per (scenario, driver) cell, so a failure
//! names its cell. A cell that cannot pass because of a driver bug is `#[ignore]`d with the
//! reason (see /work/notes/driver-requests-conformance.md).

use openp2p_tests::harness::{AsyncStdHarness, Executor, MioHarness, SimHarness, TokioHarness};
use openp2p_tests::scenarios;

/// The simulated network's seed for every cell (determinism.rs varies it).
const SEED: u64 = 0x0F2F;

/// Run by every cell first: restores `SIGPIPE`'s default disposition (terminate) for this
/// process, as a program that did not ignore the signal has (Rust programs ignore it by
/// default; a host program, or one that restored the default, does not). A driver write that
/// raises `SIGPIPE` then kills the run instead of going unnoticed (`reset_after_fin` provokes
/// the one case the kernel signals). Idempotent.
#[allow(unsafe_code)]
fn prepare() {
    // SAFETY: `signal` with a valid signal number and `SIG_DFL` only changes the disposition;
    // no handler runs, and nothing in this process relies on the signal being ignored.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// `cells!(scenario; sim[attrs] mio[attrs] tokio[attrs] async_std[attrs] smol[attrs]);` makes
/// module `scenario` with one test per driver, each with the given extra attributes.
macro_rules! cells {
    ($scenario:ident;
     sim[$(#[$sim:meta])*] mio[$(#[$mio:meta])*] tokio[$(#[$tokio:meta])*]
     async_std[$(#[$astd:meta])*] smol[$(#[$smol:meta])*]) => {
        mod $scenario {
            use super::*;

            #[test]
            $(#[$sim])*
            fn sim() {
                prepare();
                scenarios::$scenario(&mut SimHarness::new(SEED));
            }

            #[test]
            $(#[$mio])*
            fn mio() {
                prepare();
                scenarios::$scenario(&mut MioHarness);
            }

            #[test]
            $(#[$tokio])*
            fn tokio() {
                prepare();
                scenarios::$scenario(&mut TokioHarness::default());
            }

            #[test]
            $(#[$astd])*
            fn async_std() {
                prepare();
                scenarios::$scenario(&mut AsyncStdHarness::new(Executor::AsyncStd));
            }

            #[test]
            $(#[$smol])*
            fn smol() {
                prepare();
                scenarios::$scenario(&mut AsyncStdHarness::new(Executor::Smol));
            }
        }
    };
    ($scenario:ident) => {
        cells!($scenario; sim[] mio[] tokio[] async_std[] smol[]);
    };
}

cells!(lifecycle);
cells!(integrity);
cells!(scale);
cells!(oversized_frame);
cells!(flood_max_peers);
cells!(flood_max_per_ip);
cells!(slow_reader);
cells!(reset_mid_transfer; sim[] mio[] tokio[] async_std[] smol[]);
cells!(reset_after_fin);
cells!(connect_refused);
cells!(connect_refused_queued; sim[] mio[] tokio[] async_std[] smol[]);
cells!(idle_timeout);
cells!(graceful_shutdown);
cells!(rate_upload);
cells!(rate_download);
cells!(rate_global_shared);
cells!(rate_limit_changed);
cells!(lifecycle_ipv6);
cells!(send_many);

/// Connect timeout: on the simulated network only, where it is deterministic.
#[test]
fn connect_timeout_sim() {
    scenarios::connect_timeout(&mut SimHarness::new(SEED));
}
