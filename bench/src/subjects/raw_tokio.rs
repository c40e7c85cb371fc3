//! The raw Tokio baseline on a 2-worker multi-thread runtime (the machine's cores): a writer and
//! a reader task; an echo server with a task per connection.

use super::{BulkClock, ECHO_BUF, READ_BUF, WRITE_CHUNK};
use crate::cpu::Span;
use crate::subject::{BenchResult, BulkSize, EchoServer};
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;

/// The runtime every Tokio subject runs on.
pub fn runtime() -> std::io::Result<Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
}

/// A task writing 1 MiB at a time with `write_all`; a task reading into 128 KiB.
pub fn bulk(size: BulkSize) -> BenchResult<Span> {
    let rt = runtime()?;
    rt.block_on(async {
        let listener = TcpListener::bind(super::loopback()).await?;
        let addr = listener.local_addr()?;
        let (writer, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
        let (mut writer, (mut reader, _)) = (writer?, accepted?);
        writer.set_nodelay(true)?;
        reader.set_nodelay(true)?;
        let total = size.total();
        let receiving = tokio::spawn(async move {
            let mut buf = vec![0u8; READ_BUF];
            let mut clock = BulkClock::new(size);
            while !clock.done() {
                match reader.read(&mut buf).await? {
                    0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                    n => clock.add(n),
                };
            }
            std::io::Result::Ok(clock.elapsed())
        });
        let sending = tokio::spawn(async move {
            let data = vec![0x5au8; WRITE_CHUNK];
            let mut sent = 0u64;
            while sent < total {
                let n = (total - sent).min(WRITE_CHUNK as u64) as usize;
                writer.write_all(&data[..n]).await?;
                sent += n as u64;
            }
            std::io::Result::Ok(writer)
        });
        let span = receiving.await??;
        let _writer = sending.await??;
        Ok(span)
    })
}

/// The echo server: accept loop, a task per connection reading into 16 KiB and `write_all`ing.
#[derive(Debug)]
pub struct Echo {
    addr: SocketAddr,
    rt: Runtime,
}

impl Echo {
    /// Starts the runtime and the accept loop.
    pub fn start() -> BenchResult<Box<dyn EchoServer>> {
        let rt = runtime()?;
        let listener = rt.block_on(TcpListener::bind(super::loopback()))?;
        let addr = listener.local_addr()?;
        rt.spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    continue;
                };
                let _ = socket.set_nodelay(true);
                tokio::spawn(async move {
                    let mut buf = vec![0u8; ECHO_BUF];
                    loop {
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => {
                                if socket.write_all(&buf[..n]).await.is_err() {
                                    return;
                                }
                            }
                        }
                    }
                });
            }
        });
        Ok(Box::new(Echo { addr, rt }))
    }
}

impl EchoServer for Echo {
    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn stop(self: Box<Self>) {
        self.rt.shutdown_timeout(std::time::Duration::from_secs(2));
    }
}
