//! openp2p-tokio on the raw Tokio baseline's runtime (2 workers): two nodes for bulk; an echo
//! node whose application task sends every `Received` back.

use super::{BulkClock, WRITE_CHUNK};
use crate::cpu::Span;
use crate::subject::{BenchResult, BulkSize, EchoServer};
use bytes::Bytes;
use openp2p_tokio::{Config, Direction, Event, Node, SendError};
use std::net::SocketAddr;
use tokio::runtime::Runtime;

/// A sender node `send_now`ing a shared 1 MiB `Bytes` until `QueueFull`, then waiting for
/// `Writable`; a receiver node whose application counts and drops `Received` data. Both
/// applications are spawned tasks, like the raw baseline's writer and reader.
pub fn bulk(size: BulkSize) -> BenchResult<Span> {
    // Nobody listens for `Sent` (the raw baseline has no such events either).
    bulk_with(
        size,
        Config {
            sent_events: false,
            ..Config::default()
        },
    )
}

/// [`bulk`] with both nodes on `config` (the secure workload's plaintext and secure runs).
pub fn bulk_with(size: BulkSize, config: Config) -> BenchResult<Span> {
    let rt = super::raw_tokio::runtime()?;
    rt.block_on(async {
        let receiver = Node::start(config.clone())?;
        let addr = receiver.listen(super::loopback()).await?;
        let sender = Node::start(config)?;
        let peer = sender.connect(addr).await?;
        loop {
            match receiver.next_event().await {
                Some(Event::Connected {
                    direction: Direction::Inbound,
                    ..
                }) => break,
                Some(_) => {}
                None => return Err("openp2p-tokio bulk: receiver stopped".into()),
            }
        }
        let total = size.total();
        let node = sender.clone();
        let sending = tokio::spawn(async move {
            let chunk = Bytes::from(vec![0x5au8; WRITE_CHUNK]);
            let mut queued = 0u64;
            while queued < total {
                let n = (total - queued).min(WRITE_CHUNK as u64) as usize;
                match node.send_now(peer, chunk.slice(..n)) {
                    Ok(()) => queued += n as u64,
                    Err(SendError::QueueFull { .. }) => loop {
                        match node.next_event().await {
                            Some(Event::Writable { peer: p }) if p == peer => break,
                            Some(Event::Disconnected { reason, .. }) => {
                                return Err(reason.to_string())
                            }
                            Some(_) => {}
                            None => return Err("sender stopped".to_string()),
                        }
                    },
                    Err(e) => return Err(e.to_string()),
                }
            }
            Ok(())
        });
        // A task, as the raw baseline's reader is (not the `block_on` thread).
        let node = receiver.clone();
        let receiving = tokio::spawn(async move {
            let mut clock = BulkClock::new(size);
            while !clock.done() {
                match node.next_event().await {
                    Some(Event::Received { data, .. }) => {
                        clock.add(data.len());
                    }
                    Some(Event::Disconnected { reason, .. }) => {
                        return Err(format!("openp2p-tokio bulk: {reason}"))
                    }
                    Some(_) => {}
                    None => return Err("openp2p-tokio bulk: receiver stopped".to_string()),
                }
            }
            Ok(clock.elapsed())
        });
        let span = receiving.await??;
        sending.await??;
        sender.shutdown().await;
        receiver.shutdown().await;
        Ok(span)
    })
}

/// The echo node and its runtime.
#[derive(Debug)]
pub struct Echo {
    addr: SocketAddr,
    node: Node,
    rt: Runtime,
}

impl Echo {
    /// Starts the runtime, the node and the echoing task.
    pub fn start() -> BenchResult<Box<dyn EchoServer>> {
        let rt = super::raw_tokio::runtime()?;
        let config = super::server_config();
        let (node, addr) = rt.block_on(async {
            let node = Node::start(config)?;
            let addr = node.listen(super::loopback()).await?;
            BenchResult::Ok((node, addr))
        })?;
        let echo = node.clone();
        rt.spawn(async move {
            while let Some(event) = echo.next_event().await {
                if let Event::Received { peer, data } = event {
                    let _ = echo.send_now(peer, data);
                }
            }
        });
        Ok(Box::new(Echo { addr, node, rt }))
    }
}

impl EchoServer for Echo {
    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn stop(self: Box<Self>) {
        self.rt.block_on(self.node.shutdown());
        self.rt.shutdown_timeout(std::time::Duration::from_secs(2));
    }
}
