//! The message loops of the allocation workload, one per subject. Each returns the allocations
//! counted (all threads) while `counted` messages went from one end to the other, after `warm`.

use super::allocs::allocations;
use bytes::Bytes;
use openp2p_core::{Config, Event, Framing};
use std::net::SocketAddr;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(20);

/// Runs `subject`'s loop (see [`super::allocs::SUBJECTS`]).
pub fn measure(subject: &str, size: usize, warm: u64, counted: u64) -> Result<u64, String> {
    let job = Job {
        size,
        warm,
        counted,
    };
    match subject {
        "openp2p-mio" => openp2p_mio(job),
        "openp2p-tokio" => openp2p_tokio(job),
        "openp2p-async-std" => openp2p_async_std(job),
        "raw mio" => raw_mio(job),
        "raw tokio" => raw_tokio(job),
        "raw smol" => raw_smol(job),
        other => Err(format!("unknown subject {other:?}")),
    }
}

#[derive(Debug, Clone, Copy)]
struct Job {
    size: usize,
    warm: u64,
    counted: u64,
}

impl Job {
    /// Messages per batch: the receiver takes a whole batch before the next is sent.
    fn batch(self) -> u64 {
        if self.size <= 1024 {
            64
        } else {
            8
        }
    }

    /// The framed message the raw baselines write: a 4-byte big-endian length, then the payload.
    fn frame(self) -> Vec<u8> {
        let mut frame = (self.size as u32).to_be_bytes().to_vec();
        frame.resize(4 + self.size, 7);
        frame
    }
}

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

fn config() -> Config {
    Config {
        framing: Framing::LengthPrefixed,
        sent_events: false,
        ..Config::default()
    }
}

/// Runs `exchange(n)` for the warm-up, then counts the allocations of the counted messages.
fn counted_phase(
    job: Job,
    mut exchange: impl FnMut(u64) -> Result<(), String>,
) -> Result<u64, String> {
    exchange(job.warm)?;
    let before = allocations();
    exchange(job.counted)?;
    Ok(allocations() - before)
}

/// Splits `n` messages into batches.
fn batches(job: Job, n: u64) -> impl Iterator<Item = u64> {
    let batch = job.batch();
    (0..n.div_ceil(batch)).map(move |i| batch.min(n - i * batch))
}

fn openp2p_mio(job: Job) -> Result<u64, String> {
    use openp2p_mio::Node;
    let (server, mut received) = Node::start(config()).map_err(|e| e.to_string())?;
    let addr = server.listen(loopback()).map_err(|e| e.to_string())?;
    let (client, _client_events) = Node::start(config()).map_err(|e| e.to_string())?;
    let peer = client.connect_wait(addr).map_err(|e| e.to_string())?;
    let payload = Bytes::from(vec![7u8; job.size]);
    let result = counted_phase(job, |n| {
        for k in batches(job, n) {
            for _ in 0..k {
                client
                    .send(peer, payload.clone())
                    .map_err(|e| e.to_string())?;
            }
            let mut got = 0;
            while got < k {
                match received.recv_timeout(TIMEOUT) {
                    Ok(Event::Received { .. }) => got += 1,
                    Ok(Event::Disconnected { reason, .. }) => {
                        return Err(format!("disconnected: {reason:?}"))
                    }
                    Ok(_) => {}
                    Err(e) => return Err(format!("receiving: {e:?}")),
                }
            }
        }
        Ok(())
    });
    client.shutdown();
    server.shutdown();
    result
}

fn openp2p_tokio(job: Job) -> Result<u64, String> {
    use openp2p_tokio::Node;
    let runtime = super::sync_node::tokio_runtime(2)?;
    runtime.block_on(async {
        let server = Node::start(config()).map_err(|e| e.to_string())?;
        let addr = server.listen(loopback()).await.map_err(|e| e.to_string())?;
        let client = Node::start(config()).map_err(|e| e.to_string())?;
        let peer = client.connect(addr).await.map_err(|e| e.to_string())?;
        let payload = Bytes::from(vec![7u8; job.size]);
        exchange_async(
            job.warm,
            job,
            &payload,
            |p| client.send_now(peer, p),
            || server.next_event(),
        )
        .await?;
        let before = allocations();
        exchange_async(
            job.counted,
            job,
            &payload,
            |p| client.send_now(peer, p),
            || server.next_event(),
        )
        .await?;
        let total = allocations() - before;
        client.shutdown().await;
        server.shutdown().await;
        Ok(total)
    })
}

fn openp2p_async_std(job: Job) -> Result<u64, String> {
    use openp2p_async_std::Node;
    futures_lite::future::block_on(async {
        let server = Node::start(config()).map_err(|e| e.to_string())?;
        let addr = server.listen(loopback()).await.map_err(|e| e.to_string())?;
        let client = Node::start(config()).map_err(|e| e.to_string())?;
        let peer = client.connect(addr).await.map_err(|e| e.to_string())?;
        let payload = Bytes::from(vec![7u8; job.size]);
        exchange_async(
            job.warm,
            job,
            &payload,
            |p| client.send_now(peer, p),
            || server.next_event(),
        )
        .await?;
        let before = allocations();
        exchange_async(
            job.counted,
            job,
            &payload,
            |p| client.send_now(peer, p),
            || server.next_event(),
        )
        .await?;
        let total = allocations() - before;
        client.shutdown().await;
        server.shutdown().await;
        Ok(total)
    })
}

/// The batch loop of the async drivers: `send` a batch, then take that many `Received` events.
async fn exchange_async<F>(
    n: u64,
    job: Job,
    payload: &Bytes,
    send: impl Fn(Bytes) -> Result<(), openp2p_core::SendError>,
    next: impl Fn() -> F,
) -> Result<(), String>
where
    F: std::future::Future<Output = Option<Event>>,
{
    for k in batches(job, n) {
        for _ in 0..k {
            send(payload.clone()).map_err(|e| format!("send: {e}"))?;
        }
        let mut got = 0;
        while got < k {
            match next().await {
                Some(Event::Received { .. }) => got += 1,
                Some(Event::Disconnected { reason, .. }) => {
                    return Err(format!("disconnected: {reason:?}"))
                }
                Some(_) => {}
                None => return Err("the receiving node stopped".into()),
            }
        }
    }
    Ok(())
}

fn raw_mio(job: Job) -> Result<u64, String> {
    use mio::net::{TcpListener, TcpStream};
    use mio::{Events, Interest, Poll, Token};
    use std::io::{ErrorKind, Read, Write};

    let io = |e: std::io::Error| e.to_string();
    let mut poll = Poll::new().map_err(io)?;
    let listener = TcpListener::bind(loopback()).map_err(io)?;
    let addr = listener.local_addr().map_err(io)?;
    let mut writer = TcpStream::connect(addr).map_err(io)?;
    let mut reader = loop {
        match listener.accept() {
            Ok((stream, _)) => break stream,
            Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::yield_now(),
            Err(e) => return Err(e.to_string()),
        }
    };
    writer.set_nodelay(true).map_err(io)?;
    poll.registry()
        .register(&mut writer, Token(0), Interest::WRITABLE)
        .map_err(io)?;
    poll.registry()
        .register(&mut reader, Token(1), Interest::READABLE)
        .map_err(io)?;
    let frame = job.frame();
    let total = job.warm + job.counted;
    let warm_bytes = job.warm * frame.len() as u64;
    let total_bytes = total * frame.len() as u64;
    let mut events = Events::with_capacity(16);
    let mut buf = vec![0u8; 256 * 1024];
    let (mut sent, mut offset, mut read) = (0u64, 0usize, 0u64);
    let mut before = None;
    while read < total_bytes {
        while sent < total {
            match writer.write(&frame[offset..]) {
                Ok(n) => {
                    offset += n;
                    if offset == frame.len() {
                        offset = 0;
                        sent += 1;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e.to_string()),
            }
        }
        loop {
            match reader.read(&mut buf) {
                Ok(0) => return Err("early EOF".into()),
                Ok(n) => {
                    read += n as u64;
                    if before.is_none() && read >= warm_bytes {
                        before = Some(allocations());
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e.to_string()),
            }
        }
        if read < total_bytes {
            poll.poll(&mut events, Some(TIMEOUT)).map_err(io)?;
            if events.is_empty() {
                return Err("raw mio: stalled".into());
            }
        }
    }
    Ok(allocations() - before.unwrap_or_else(allocations))
}

fn raw_tokio(job: Job) -> Result<u64, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let runtime = super::sync_node::tokio_runtime(2)?;
    runtime.block_on(async {
        let io = |e: std::io::Error| e.to_string();
        let listener = tokio::net::TcpListener::bind(loopback())
            .await
            .map_err(io)?;
        let addr = listener.local_addr().map_err(io)?;
        let mut writer = tokio::net::TcpStream::connect(addr).await.map_err(io)?;
        let (mut reader, _) = listener.accept().await.map_err(io)?;
        writer.set_nodelay(true).map_err(io)?;
        let frame = job.frame();
        let total = job.warm + job.counted;
        let total_bytes = total * frame.len() as u64;
        let warm_bytes = job.warm * frame.len() as u64;
        let writing = tokio::spawn(async move {
            for _ in 0..total {
                writer.write_all(&frame).await?;
            }
            Ok::<_, std::io::Error>(writer)
        });
        let mut buf = vec![0u8; 256 * 1024];
        let (mut read, mut before) = (0u64, None);
        while read < total_bytes {
            let n = reader.read(&mut buf).await.map_err(io)?;
            if n == 0 {
                return Err("early EOF".into());
            }
            read += n as u64;
            if before.is_none() && read >= warm_bytes {
                before = Some(allocations());
            }
        }
        let counted = allocations() - before.unwrap_or_else(allocations);
        writing.await.map_err(|e| e.to_string())?.map_err(io)?;
        Ok(counted)
    })
}

fn raw_smol(job: Job) -> Result<u64, String> {
    use futures_lite::{AsyncReadExt, AsyncWriteExt};
    use smol::Async;
    smol::block_on(async {
        let io = |e: std::io::Error| e.to_string();
        let listener = Async::<std::net::TcpListener>::bind(loopback()).map_err(io)?;
        let addr = listener.get_ref().local_addr().map_err(io)?;
        let mut writer = Async::<std::net::TcpStream>::connect(addr)
            .await
            .map_err(io)?;
        let (mut reader, _) = listener.accept().await.map_err(io)?;
        writer.get_ref().set_nodelay(true).map_err(io)?;
        let frame = job.frame();
        let total = job.warm + job.counted;
        let total_bytes = total * frame.len() as u64;
        let warm_bytes = job.warm * frame.len() as u64;
        let writing = async {
            for _ in 0..total {
                writer.write_all(&frame).await?;
            }
            Ok::<_, std::io::Error>(())
        };
        let reading = async {
            let mut buf = vec![0u8; 256 * 1024];
            let (mut read, mut before) = (0u64, None);
            while read < total_bytes {
                let n = reader.read(&mut buf).await?;
                if n == 0 {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
                read += n as u64;
                if before.is_none() && read >= warm_bytes {
                    before = Some(allocations());
                }
            }
            Ok::<_, std::io::Error>(allocations() - before.unwrap_or_else(allocations))
        };
        let (written, counted) = futures_lite::future::zip(writing, reading).await;
        written.map_err(io)?;
        counted.map_err(io)
    })
}
