//! One blocking facade over the three openp2p drivers, so the rate workload drives each of them
//! with the same code: the application side of a node lives on one OS thread and calls these
//! methods; Tokio's and async-std's async calls are run to completion with `block_on`.

use bytes::Bytes;
use openp2p_core::{Config, Event, Limits, PeerId};
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// An openp2p driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    /// `openp2p-mio`.
    Mio,
    /// `openp2p-tokio`.
    Tokio,
    /// `openp2p-async-std`.
    AsyncStd,
}

impl Driver {
    /// Every driver, in report order.
    pub const ALL: [Driver; 3] = [Driver::Mio, Driver::Tokio, Driver::AsyncStd];

    /// The subject name in tables: the driver's crate name.
    pub fn subject(self) -> &'static str {
        match self {
            Driver::Mio => "openp2p-mio",
            Driver::Tokio => "openp2p-tokio",
            Driver::AsyncStd => "openp2p-async-std",
        }
    }

    /// Parses [`subject`](Self::subject) back.
    pub fn from_subject(name: &str) -> Option<Driver> {
        Driver::ALL.into_iter().find(|d| d.subject() == name)
    }
}

impl fmt::Display for Driver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.subject())
    }
}

enum Inner {
    Mio {
        node: openp2p_mio::Node,
        events: openp2p_mio::Events,
    },
    Tokio {
        runtime: Arc<tokio::runtime::Runtime>,
        node: openp2p_tokio::Node,
    },
    AsyncStd {
        node: openp2p_async_std::Node,
    },
}

/// A node of any driver, used from one thread with blocking calls.
pub struct SyncNode {
    inner: Inner,
}

impl fmt::Debug for SyncNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyncNode").finish_non_exhaustive()
    }
}

/// A multi-thread Tokio runtime with `workers` worker threads, for `openp2p-tokio` nodes.
pub fn tokio_runtime(workers: usize) -> Result<Arc<tokio::runtime::Runtime>, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .map(Arc::new)
        .map_err(|e| format!("tokio runtime: {e}"))
}

impl SyncNode {
    /// Starts a node of `driver` (Tokio nodes run on `runtime`).
    pub fn start(
        driver: Driver,
        config: Config,
        runtime: &Arc<tokio::runtime::Runtime>,
    ) -> Result<SyncNode, String> {
        let inner = match driver {
            Driver::Mio => {
                let (node, events) =
                    openp2p_mio::Node::start(config).map_err(|e| format!("mio start: {e}"))?;
                Inner::Mio { node, events }
            }
            Driver::Tokio => {
                let _entered = runtime.enter();
                let node =
                    openp2p_tokio::Node::start(config).map_err(|e| format!("tokio start: {e}"))?;
                Inner::Tokio {
                    runtime: Arc::clone(runtime),
                    node,
                }
            }
            Driver::AsyncStd => {
                let node = openp2p_async_std::Node::start(config)
                    .map_err(|e| format!("async-std start: {e}"))?;
                Inner::AsyncStd { node }
            }
        };
        Ok(SyncNode { inner })
    }

    /// Listens on `addr` and returns the bound address.
    pub fn listen(&self, addr: SocketAddr) -> Result<SocketAddr, String> {
        match &self.inner {
            Inner::Mio { node, .. } => node.listen(addr).map_err(|e| e.to_string()),
            Inner::Tokio { runtime, node } => runtime
                .block_on(node.listen(addr))
                .map_err(|e| e.to_string()),
            Inner::AsyncStd { node } => {
                futures_lite::future::block_on(node.listen(addr)).map_err(|e| e.to_string())
            }
        }
    }

    /// Starts connecting; the outcome arrives as an event of this node.
    pub fn connect(&self, addr: SocketAddr) -> Result<PeerId, String> {
        match &self.inner {
            Inner::Mio { node, .. } => node.connect(addr).map_err(|e| e.to_string()),
            Inner::Tokio { runtime, node } => runtime
                .block_on(node.connect(addr))
                .map_err(|e| e.to_string()),
            Inner::AsyncStd { node } => {
                futures_lite::future::block_on(node.connect(addr)).map_err(|e| e.to_string())
            }
        }
    }

    /// Queues `data` for `peer` without waiting for the driver. The mio driver reports a refusal
    /// later (as a send failure, which the rate workload avoids by bounding what it queues).
    pub fn send(&self, peer: PeerId, data: Bytes) -> Result<(), String> {
        match &self.inner {
            Inner::Mio { node, .. } => node.send(peer, data).map_err(|e| e.to_string()),
            Inner::Tokio { node, .. } => node.send_now(peer, data).map_err(|e| e.to_string()),
            Inner::AsyncStd { node } => node.send_now(peer, data).map_err(|e| e.to_string()),
        }
    }

    /// Sets `peer`'s limits (applied before any later command of this thread).
    pub fn set_limits(&self, peer: PeerId, limits: Limits) -> Result<(), String> {
        match &self.inner {
            Inner::Mio { node, .. } => node.set_limits(peer, limits).map_err(|e| e.to_string()),
            Inner::Tokio { runtime, node } => runtime
                .block_on(node.set_limits(peer, limits))
                .map_err(|e| e.to_string()),
            Inner::AsyncStd { node } => {
                futures_lite::future::block_on(node.set_limits(peer, limits))
                    .map_err(|e| e.to_string())
            }
        }
    }

    /// Drops `peer` at once, discarding what is queued for it.
    pub fn abort(&self, peer: PeerId) {
        match &self.inner {
            Inner::Mio { node, .. } => {
                let _ = node.abort(peer);
            }
            Inner::Tokio { runtime, node } => {
                let _ = runtime.block_on(node.abort(peer));
            }
            Inner::AsyncStd { node } => {
                let _ = futures_lite::future::block_on(node.abort(peer));
            }
        }
    }

    /// The next event, waiting at most `timeout`.
    pub fn next_event(&mut self, timeout: Duration) -> Option<Event> {
        match &mut self.inner {
            Inner::Mio { events, .. } => events.recv_timeout(timeout).ok(),
            Inner::Tokio { runtime, node } => runtime
                .block_on(async { tokio::time::timeout(timeout, node.next_event()).await })
                .ok()
                .flatten(),
            Inner::AsyncStd { node } => {
                if let Some(event) = node.try_next_event() {
                    return Some(event);
                }
                futures_lite::future::block_on(futures_lite::future::or(node.next_event(), async {
                    async_io::Timer::after(timeout).await;
                    None
                }))
            }
        }
    }

    /// Shuts the node down (flushing what is queued, bounded by the linger timeout).
    pub fn shutdown(self) {
        match self.inner {
            Inner::Mio { node, .. } => node.shutdown(),
            Inner::Tokio { runtime, node } => runtime.block_on(node.shutdown()),
            Inner::AsyncStd { node } => futures_lite::future::block_on(node.shutdown()),
        }
    }
}
