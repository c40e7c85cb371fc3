//! The scenarios, each a generic function over [`Harness`]: written once, run on every driver.

mod adversary;
mod connect;
mod flood;
mod integrity;
mod lifecycle;
mod mitm;
mod oversized;
mod rates;
mod reset;
mod scale;
mod secure;
mod send_many;
mod slow_reader;
mod timeouts;

pub use adversary::{handshake_slowloris, plaintext_client_refused, plaintext_listener_refused};
pub use connect::{connect_refused, connect_refused_queued, connect_timeout};
pub use flood::{flood_max_peers, flood_max_per_ip};
pub use integrity::{integrity, integrity_with};
pub use lifecycle::{lifecycle, lifecycle_ipv6};
pub use mitm::{mitm_bit_flip, mitm_garbage_message, mitm_truncated};
pub use oversized::oversized_frame;
pub use rates::{rate_download, rate_global_shared, rate_limit_changed, rate_upload};
pub use reset::{reset_after_fin, reset_mid_transfer};
pub use scale::scale;
pub use secure::{
    allowlist_refused_by_dialer, allowlist_refused_by_listener, pinned_key_matches,
    pinned_key_mismatch,
};
pub use send_many::send_many;
pub use slow_reader::slow_reader;
pub use timeouts::{graceful_shutdown, idle_timeout};

use crate::harness::{expect, Harness, TestNode};
use openp2p_core::{Config, Direction, DisconnectReason, Event, PeerId};
use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

/// One KiB.
pub const KIB: usize = 1024;
/// One MiB.
pub const MIB: usize = 1024 * 1024;

/// Waits for `Connected` of the outbound `peer`; panics on `ConnectFailed`.
pub fn outbound_connected<N: TestNode>(node: &N, peer: PeerId) {
    expect(node, "outbound Connected", |e| match e {
        Event::Connected { peer: p, .. } if *p == peer => Some(()),
        Event::ConnectFailed {
            peer: p, reason, ..
        } if *p == peer => {
            panic!("connect of {peer} failed: {reason:?}")
        }
        _ => None,
    })
}

/// Waits for the next inbound `Connected` and returns its peer.
pub fn inbound_connected<N: TestNode>(node: &N) -> PeerId {
    expect(node, "inbound Connected", |e| match e {
        Event::Connected {
            peer,
            direction: Direction::Inbound,
            ..
        } => Some(*peer),
        _ => None,
    })
}

/// Waits for `Disconnected` of `peer`; returns its reason and unsent count.
pub fn disconnected<N: TestNode>(node: &N, peer: PeerId) -> (DisconnectReason, u64) {
    expect(node, "Disconnected", |e| match e {
        Event::Disconnected {
            peer: p,
            reason,
            unsent,
        } if *p == peer => Some((*reason, *unsent)),
        _ => None,
    })
}

/// A connected pair: `server` listening on the IPv4 loopback, `client` connected to it.
#[derive(Debug)]
pub struct Pair<N> {
    /// The listening node.
    pub server: N,
    /// The connecting node.
    pub client: N,
    /// The listener's address.
    pub addr: SocketAddr,
    /// The client's peer on the server.
    pub at_server: PeerId,
    /// The server's peer on the client.
    pub at_client: PeerId,
}

/// Starts a server and a client and connects them.
pub fn pair<H: Harness>(h: &mut H, server: Config, client: Config) -> Pair<H::Node> {
    let server = h.start(server);
    let addr = server.listen(crate::harness::v4());
    let client = h.start(client);
    let at_client = client.connect(addr).expect("engine accepts the connect");
    outbound_connected(&client, at_client);
    let at_server = inbound_connected(&server);
    Pair {
        server,
        client,
        addr,
        at_server,
        at_client,
    }
}

/// Receives on `node` until `want` bytes of `peer`'s data arrived; returns them (other events
/// are dropped).
pub fn receive_bytes<N: TestNode>(node: &N, peer: PeerId, want: usize) -> Vec<u8> {
    let mut got = Vec::with_capacity(want);
    while got.len() < want {
        expect(node, "Received", |e| match e {
            Event::Received { peer: p, data } if *p == peer => {
                got.extend_from_slice(data);
                Some(())
            }
            Event::Disconnected {
                peer: p, reason, ..
            } if *p == peer => {
                panic!("{peer} disconnected ({reason:?}) after {} bytes", got.len())
            }
            _ => None,
        });
    }
    got
}

/// `|got - want| / want`.
pub fn relative_error(got: f64, want: f64) -> f64 {
    (got - want).abs() / want
}

/// Pumps `node`'s events until its clock reaches `until`, handing each to `on_event` with the
/// instant it was taken.
pub fn pump_until<N: TestNode>(node: &N, until: Instant, mut on_event: impl FnMut(Instant, Event)) {
    loop {
        let left = until.saturating_duration_since(node.now());
        if left.is_zero() {
            return;
        }
        if let Some(event) = node.next_event(left) {
            on_event(node.now(), event);
        }
    }
}

/// Rate measurements need the CPU when they need it: a driver woken late loses budget time
/// (and, with several peers, fairness). They run one at a time, and never beside a CPU-heavy
/// cell of the same test process; light cells still run beside them.
static CPU: Mutex<()> = Mutex::new(());

/// Held by a rate scenario or a CPU-heavy one (the simulated network's included).
pub fn exclusive() -> MutexGuard<'static, ()> {
    CPU.lock().unwrap_or_else(|e| e.into_inner())
}
