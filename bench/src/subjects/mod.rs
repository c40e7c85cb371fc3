//! Each subject's two shapes: a bulk transfer between two of its endpoints, and an echo server.
//!
//! The baselines are what a competent user of the runtime writes by hand: non-blocking sockets,
//! reads into one reused buffer, writes of a large buffer until the socket would block.

pub mod message_io;
pub mod openp2p_async_std;
pub mod openp2p_mio;
pub mod openp2p_tokio;
pub mod raw_mio;
pub mod raw_smol;
pub mod raw_tokio;
#[cfg(feature = "libp2p-anchor")]
pub mod rust_libp2p;

use crate::cpu::Span;
use crate::subject::{BenchResult, BulkSize, EchoServer, Subject};
use std::net::SocketAddr;

/// Bytes per write (or per queued message) of a bulk sender.
pub const WRITE_CHUNK: usize = 1 << 20;
/// Read buffer of a bulk receiver: openp2p's receive segment size, so every subject reads in
/// the same steps.
pub const READ_BUF: usize = 128 * 1024;
/// Read buffer of a hand-written echo server.
pub const ECHO_BUF: usize = 16 * 1024;

/// The loopback address with an OS-chosen port.
pub fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// The configuration of an openp2p echo server (every driver): `Sent` events off (the
/// application never looks at them; that halves the events), and room for every benchmark client,
/// which all come from 127.0.0.1.
pub fn server_config() -> openp2p_core::Config {
    openp2p_core::Config {
        sent_events: false,
        max_peers_per_ip: 100_000,
        max_peers: 100_000,
        ..openp2p_core::Config::default()
    }
}

/// Moves `size.total()` bytes from one endpoint of `subject` to another over loopback; times the
/// last `size.timed` of them (wall and CPU time of every thread of the process).
pub fn bulk(subject: Subject, size: BulkSize) -> BenchResult<Span> {
    match subject {
        Subject::RawMio => raw_mio::bulk(size),
        Subject::Openp2pMio => openp2p_mio::bulk(size),
        Subject::MessageIo => message_io::bulk(size),
        Subject::RawTokio => raw_tokio::bulk(size),
        Subject::Openp2pTokio => openp2p_tokio::bulk(size),
        Subject::RawSmol => raw_smol::bulk(size),
        Subject::Openp2pAsyncStd => openp2p_async_std::bulk(size),
    }
}

/// Starts an echo server of `subject` on loopback.
pub fn echo_server(subject: Subject) -> BenchResult<Box<dyn EchoServer>> {
    match subject {
        Subject::RawMio => raw_mio::EchoLoop::start(),
        Subject::Openp2pMio => openp2p_mio::Echo::start(),
        Subject::MessageIo => message_io::Echo::start(),
        Subject::RawTokio => raw_tokio::Echo::start(),
        Subject::Openp2pTokio => openp2p_tokio::Echo::start(),
        Subject::RawSmol => raw_smol::Echo::start(),
        Subject::Openp2pAsyncStd => openp2p_async_std::Echo::start(),
    }
}

/// Receiver-side bookkeeping of a bulk run: starts the clock once the warm-up bytes are in.
#[derive(Debug)]
pub struct BulkClock {
    size: BulkSize,
    received: u64,
    start: Option<crate::cpu::Mark>,
}

impl BulkClock {
    /// Nothing received yet.
    pub fn new(size: BulkSize) -> BulkClock {
        let start = (size.warmup == 0).then(crate::cpu::Mark::now);
        BulkClock {
            size,
            received: 0,
            start,
        }
    }

    /// Counts `n` received bytes; true once every byte is in.
    pub fn add(&mut self, n: usize) -> bool {
        self.received += n as u64;
        if self.start.is_none() && self.received >= self.size.warmup {
            self.start = Some(crate::cpu::Mark::now());
        }
        self.received >= self.size.total()
    }

    /// Whether every byte is in.
    pub fn done(&self) -> bool {
        self.received >= self.size.total()
    }

    /// Wall and CPU time since the warm-up ended.
    pub fn elapsed(&self) -> Span {
        self.start.unwrap_or_else(crate::cpu::Mark::now).elapsed()
    }
}
