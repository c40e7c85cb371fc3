//! openp2p-async-std on the raw smol baseline's setup: the nodes' driver futures (`Node::new`)
//! and the application run as tasks of one thread's `smol::LocalExecutor`.

use super::raw_smol::ExecutorThread;
use super::{BulkClock, WRITE_CHUNK};
use crate::cpu::Span;
use crate::subject::{BenchResult, BulkSize, EchoServer};
use openp2p_async_std::{Bytes, Config, Direction, Event, Node, SendError};
use std::net::SocketAddr;

/// A sender node `send_now`ing a shared 1 MiB `Bytes` until `QueueFull`, then waiting for
/// `Writable`; a receiver node whose application counts and drops `Received` data; both drivers
/// and both applications on this thread's executor.
pub fn bulk(size: BulkSize) -> BenchResult<Span> {
    let ex = smol::LocalExecutor::new();
    async_io::block_on(ex.run(async {
        let config = Config {
            sent_events: false,
            ..Config::default()
        };
        let (receiver, driver) = Node::new(config.clone())?;
        ex.spawn(driver).detach();
        let (sender, driver) = Node::new(config)?;
        ex.spawn(driver).detach();
        let addr = receiver.listen(super::loopback()).await?;
        let peer = sender.connect(addr).await?;
        loop {
            match receiver.next_event().await {
                Some(Event::Connected {
                    direction: Direction::Inbound,
                    ..
                }) => break,
                Some(_) => {}
                None => return Err("openp2p-async-std bulk: receiver stopped".into()),
            }
        }
        let total = size.total();
        let node = sender.clone();
        let sending = ex.spawn(async move {
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
        let mut clock = BulkClock::new(size);
        while !clock.done() {
            match receiver.next_event().await {
                Some(Event::Received { data, .. }) => {
                    clock.add(data.len());
                }
                Some(Event::Disconnected { reason, .. }) => {
                    return Err(format!("openp2p-async-std bulk: {reason}").into())
                }
                Some(_) => {}
                None => return Err("openp2p-async-std bulk: receiver stopped".into()),
            }
        }
        let span = clock.elapsed();
        sending.await?;
        sender.shutdown().await;
        receiver.shutdown().await;
        Ok(span)
    }))
}

/// An echo node on an executor thread: its driver and an application task sending every
/// `Received` back.
#[derive(Debug)]
pub struct Echo {
    addr: SocketAddr,
    thread: ExecutorThread,
}

impl Echo {
    /// Starts the executor thread, the node and the echoing task.
    pub fn start() -> BenchResult<Box<dyn EchoServer>> {
        let (thread, addr) = ExecutorThread::spawn(|ex, ready, stopped| {
            Box::pin(async move {
                let node = match Node::new(super::server_config()) {
                    Ok((node, driver)) => {
                        ex.spawn(driver).detach();
                        node
                    }
                    Err(e) => {
                        let _ = ready.send(Err(e.into()));
                        return;
                    }
                };
                let _ = ready.send(node.listen(super::loopback()).await.map_err(Into::into));
                let echo = node.clone();
                let serve = async move {
                    while let Some(event) = echo.next_event().await {
                        if let Event::Received { peer, data } = event {
                            let _ = echo.send_now(peer, data);
                        }
                    }
                };
                futures_lite::future::or(serve, async {
                    let _ = stopped.recv().await;
                })
                .await;
                node.shutdown().await;
            })
        })?;
        Ok(Box::new(Echo { addr, thread }))
    }
}

impl EchoServer for Echo {
    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn stop(mut self: Box<Self>) {
        self.thread.stop();
    }
}
