//! Every scenario against every driver: one `#[test]` per (scenario, driver, mode) cell, so a
//! failure names its cell (`lifecycle::tokio`, `lifecycle::tokio_secure`). A cell that cannot pass because of a driver bug is `#[ignore]`d with the
//! reason (see /work/notes/driver-requests-conformance.md).

use openp2p_tests::harness::{
    AsyncStdHarness, Executor, MioHarness, Secure, SimHarness, TokioHarness,
};
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

/// One `#[test]` named `$test` running `scenarios::$scenario` on `$harness`, with the given
/// extra attributes.
macro_rules! cell {
    ($test:ident, $scenario:ident, $harness:expr, [$(#[$meta:meta])*]) => {
        #[test]
        $(#[$meta])*
        fn $test() {
            prepare();
            scenarios::$scenario(&mut $harness);
        }
    };
}

/// `cells!(scenario; sim[attrs] mio[attrs] tokio[attrs] async_std[attrs] smol[attrs]);` makes
/// module `scenario` with two tests per driver, each with the given extra attributes:
/// `<driver>` in plaintext and `<driver>_secure` with every node behind a Noise channel
/// ([`Secure`]). Every scenario that only talks to nodes of the harness runs in both modes.
/// A second list after `secure:` gives the secure cells attributes of their own.
macro_rules! cells {
    ($scenario:ident;
     sim[$(#[$sim:meta])*] mio[$(#[$mio:meta])*] tokio[$(#[$tokio:meta])*]
     async_std[$(#[$astd:meta])*] smol[$(#[$smol:meta])*]
     secure: sim[$(#[$ssim:meta])*] mio[$(#[$smio:meta])*] tokio[$(#[$stokio:meta])*]
     async_std[$(#[$sastd:meta])*] smol[$(#[$ssmol:meta])*]) => {
        mod $scenario {
            use super::*;

            cell!(sim, $scenario, SimHarness::new(SEED), [$(#[$sim])*]);
            cell!(mio, $scenario, MioHarness, [$(#[$mio])*]);
            cell!(tokio, $scenario, TokioHarness::default(), [$(#[$tokio])*]);
            cell!(async_std, $scenario, AsyncStdHarness::new(Executor::AsyncStd), [$(#[$astd])*]);
            cell!(smol, $scenario, AsyncStdHarness::new(Executor::Smol), [$(#[$smol])*]);

            cell!(sim_secure, $scenario, Secure::new(SimHarness::new(SEED)), [$(#[$ssim])*]);
            cell!(mio_secure, $scenario, Secure::new(MioHarness), [$(#[$smio])*]);
            cell!(tokio_secure, $scenario, Secure::new(TokioHarness::default()), [$(#[$stokio])*]);
            cell!(
                async_std_secure,
                $scenario,
                Secure::new(AsyncStdHarness::new(Executor::AsyncStd)),
                [$(#[$sastd])*]
            );
            cell!(
                smol_secure,
                $scenario,
                Secure::new(AsyncStdHarness::new(Executor::Smol)),
                [$(#[$ssmol])*]
            );
        }
    };
    ($scenario:ident;
     sim[$(#[$sim:meta])*] mio[$(#[$mio:meta])*] tokio[$(#[$tokio:meta])*]
     async_std[$(#[$astd:meta])*] smol[$(#[$smol:meta])*]) => {
        cells!($scenario;
            sim[$(#[$sim])*] mio[$(#[$mio])*] tokio[$(#[$tokio])*]
            async_std[$(#[$astd])*] smol[$(#[$smol])*]
            secure: sim[$(#[$sim])*] mio[$(#[$mio])*] tokio[$(#[$tokio])*]
            async_std[$(#[$astd])*] smol[$(#[$smol])*]);
    };
    ($scenario:ident) => {
        cells!($scenario; sim[] mio[] tokio[] async_std[] smol[]);
    };
}

/// `secure_cells!(scenario)`: a scenario that configures its nodes' secure channels itself
/// (keys, allowlists, pins), once per driver and on the simulated network.
macro_rules! secure_cells {
    ($scenario:ident) => {
        mod $scenario {
            use super::*;

            cell!(sim, $scenario, SimHarness::new(SEED), []);
            socket_cells!(@drivers $scenario);
        }
    };
}

/// `socket_cells!(scenario)`: a scenario with a real-socket adversary (a `std::net` client,
/// listener or proxy): the four real drivers only.
macro_rules! socket_cells {
    ($scenario:ident) => {
        mod $scenario {
            use super::*;

            socket_cells!(@drivers $scenario);
        }
    };
    (@drivers $scenario:ident) => {
        cell!(mio, $scenario, MioHarness, []);
        cell!(tokio, $scenario, TokioHarness::default(), []);
        cell!(async_std, $scenario, AsyncStdHarness::new(Executor::AsyncStd), []);
        cell!(smol, $scenario, AsyncStdHarness::new(Executor::Smol), []);
    };
}

cells!(lifecycle);
cells!(integrity);
cells!(scale);
cells!(oversized_frame);
cells!(flood_max_peers);
cells!(flood_max_per_ip);
cells!(slow_reader; sim[] mio[] tokio[] async_std[] smol[]
    secure: sim[] mio[] tokio[] async_std[] smol[]);
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

secure_cells!(pinned_key_matches);
secure_cells!(pinned_key_mismatch);
secure_cells!(allowlist_refused_by_listener);
secure_cells!(allowlist_refused_by_dialer);
socket_cells!(plaintext_client_refused);
socket_cells!(plaintext_listener_refused);
socket_cells!(handshake_slowloris);
socket_cells!(mitm_bit_flip);
socket_cells!(mitm_truncated);
socket_cells!(mitm_garbage_message);

/// Connect timeout: on the simulated network only, where it is deterministic.
#[test]
fn connect_timeout_sim() {
    scenarios::connect_timeout(&mut SimHarness::new(SEED));
}
