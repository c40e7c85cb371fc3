//! openp2p-mio: two nodes (each an IO thread) and an application thread on each side.

use super::{BulkClock, WRITE_CHUNK};
use crate::cpu::{Linger, Span};
use crate::subject::{BenchResult, BulkSize, EchoServer};
use openp2p_mio::{Bytes, Config, Event, Node};
use std::net::SocketAddr;
use std::thread::JoinHandle;

/// Bytes the bulk sender keeps queued (accepted, not yet reported `Sent`): the engine's default
/// send-queue high-water mark.
const WINDOW: u64 = 4 << 20;

/// A sender node queueing 1 MiB `Bytes` (one shared buffer, no copy) while fewer than 4 MiB are
/// unwritten, counted from its `Sent` events; a receiver node whose application counts and drops
/// `Received` data.
pub fn bulk(size: BulkSize) -> BenchResult<Span> {
    let total = size.total();
    let (receiver, mut receiver_events) = Node::start(Config {
        sent_events: false,
        ..Config::default()
    })?;
    let addr = receiver.listen(super::loopback())?;
    let (sender, mut sender_events) = Node::start(Config::default())?;
    let peer = sender.connect_wait(addr)?;
    let data = Bytes::from(vec![0x5au8; WRITE_CHUNK]);
    let (release, linger) = Linger::pair();
    let sending = std::thread::spawn(move || -> Result<(), String> {
        let (mut queued, mut written) = (0u64, 0u64);
        while written < total {
            while queued < total && queued - written + WRITE_CHUNK as u64 <= WINDOW {
                let n = WRITE_CHUNK.min((total - queued) as usize);
                sender
                    .send(peer, data.slice(..n))
                    .map_err(|e| e.to_string())?;
                queued += n as u64;
            }
            match sender_events.recv().map_err(|e| e.to_string())? {
                Event::Sent { bytes, .. } => written += bytes as u64,
                Event::Disconnected { reason, .. } => return Err(reason.to_string()),
                _ => {}
            }
            if let Some(failure) = sender_events.send_failure() {
                return Err(format!("a send was refused: {}", failure.error));
            }
        }
        linger.wait();
        sender.shutdown();
        Ok(())
    });
    let mut clock = BulkClock::new(size);
    while !clock.done() {
        match receiver_events.recv()? {
            Event::Received { data, .. } => {
                clock.add(data.len());
            }
            Event::Disconnected { reason, .. } => {
                return Err(format!("openp2p-mio bulk: {reason}").into())
            }
            _ => {}
        }
    }
    let span = clock.elapsed();
    drop(release);
    sending
        .join()
        .map_err(|_| "openp2p-mio bulk: sender panicked")??;
    receiver.shutdown();
    Ok(span)
}

/// A node whose application thread sends every `Received` back (the same `Bytes`, no copy).
#[derive(Debug)]
pub struct Echo {
    addr: SocketAddr,
    node: Node,
    thread: JoinHandle<()>,
}

impl Echo {
    /// Starts the node and its application thread.
    pub fn start() -> BenchResult<Box<dyn EchoServer>> {
        let (node, mut events) = Node::start(super::server_config())?;
        let addr = node.listen(super::loopback())?;
        let handle = node.clone();
        let thread = std::thread::spawn(move || {
            while let Ok(event) = events.recv() {
                if let Event::Received { peer, data } = event {
                    if handle.send(peer, data).is_err() {
                        return;
                    }
                }
            }
        });
        Ok(Box::new(Echo { addr, node, thread }))
    }
}

impl EchoServer for Echo {
    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn stop(self: Box<Self>) {
        self.node.shutdown();
        let _ = self.thread.join();
    }
}
