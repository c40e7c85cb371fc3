//! The raw smol baseline: `async_io::Async` sockets, tasks of a `smol::LocalExecutor` on one
//! thread.

use super::{BulkClock, ECHO_BUF, READ_BUF, WRITE_CHUNK};
use crate::cpu::Span;
use crate::subject::{BenchResult, BulkSize, EchoServer};
use async_io::Async;
use futures_lite::{future, AsyncReadExt, AsyncWriteExt};
use std::future::Future;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::pin::Pin;
use std::rc::Rc;
use std::thread::JoinHandle;

/// A writer of 1 MiB `write_all`s and a reader into 128 KiB, tasks of a `LocalExecutor` on
/// this thread.
pub fn bulk(size: BulkSize) -> BenchResult<Span> {
    async_io::block_on(async {
        let listener = Async::<TcpListener>::bind(super::loopback())?;
        let addr = listener.get_ref().local_addr()?;
        let (writer, accepted) =
            future::zip(Async::<TcpStream>::connect(addr), listener.accept()).await;
        let (writer, (reader, _)) = (writer?, accepted?);
        writer.get_ref().set_nodelay(true)?;
        reader.get_ref().set_nodelay(true)?;
        let total = size.total();
        let write = async {
            let data = vec![0x5au8; WRITE_CHUNK];
            let mut sent = 0u64;
            while sent < total {
                let n = (total - sent).min(WRITE_CHUNK as u64) as usize;
                (&writer).write_all(&data[..n]).await?;
                sent += n as u64;
            }
            std::io::Result::Ok(())
        };
        let read = async {
            let mut buf = vec![0u8; READ_BUF];
            let mut clock = BulkClock::new(size);
            while !clock.done() {
                match (&reader).read(&mut buf).await? {
                    0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                    n => clock.add(n),
                };
            }
            std::io::Result::Ok(clock.elapsed())
        };
        // Tasks of one executor, as openp2p-async-std's drivers and application run.
        let ex = smol::LocalExecutor::new();
        let (written, span) = ex
            .run(async {
                let (w, r) = (ex.spawn(write), ex.spawn(read));
                (w.await, r.await)
            })
            .await;
        written?;
        Ok(span?)
    })
}

/// A thread running a `LocalExecutor` until the server is stopped.
#[derive(Debug)]
pub struct ExecutorThread {
    stop: Option<smol::channel::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl ExecutorThread {
    /// Runs `serve(executor)` on a new thread's executor until [`stop`](Self::stop); `setup`'s
    /// answer (e.g. the bound address) comes back from the thread.
    pub fn spawn<T: Send + 'static>(
        serve: impl FnOnce(
                Rc<smol::LocalExecutor<'static>>,
                std::sync::mpsc::Sender<BenchResult<T>>,
                smol::channel::Receiver<()>,
            ) -> Pin<Box<dyn Future<Output = ()>>>
            + Send
            + 'static,
    ) -> BenchResult<(ExecutorThread, T)> {
        let (stop, stopped) = smol::channel::bounded::<()>(1);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("smol-executor".into())
            .spawn(move || {
                let ex = Rc::new(smol::LocalExecutor::new());
                async_io::block_on(ex.run(serve(Rc::clone(&ex), ready_tx, stopped)));
            })?;
        let ready = ready_rx
            .recv()
            .map_err(|_| "the executor thread failed to start")??;
        Ok((
            ExecutorThread {
                stop: Some(stop),
                thread: Some(thread),
            },
            ready,
        ))
    }

    /// Signals the server to stop and waits for the thread.
    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.try_send(());
            drop(stop);
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The echo server: an accept loop spawning a task per connection (16 KiB buffer, `write_all`).
#[derive(Debug)]
pub struct Echo {
    addr: SocketAddr,
    thread: ExecutorThread,
}

impl Echo {
    /// Starts the executor thread and the accept loop.
    pub fn start() -> BenchResult<Box<dyn EchoServer>> {
        let (thread, addr) = ExecutorThread::spawn(|ex, ready, stopped| {
            Box::pin(async move {
                let listener = match Async::<TcpListener>::bind(super::loopback()) {
                    Ok(l) => l,
                    Err(e) => {
                        let _ = ready.send(Err(e.into()));
                        return;
                    }
                };
                let _ = ready.send(listener.get_ref().local_addr().map_err(Into::into));
                let serve = async {
                    loop {
                        let Ok((stream, _)) = listener.accept().await else {
                            continue;
                        };
                        let _ = stream.get_ref().set_nodelay(true);
                        ex.spawn(async move {
                            let mut buf = vec![0u8; ECHO_BUF];
                            while let Ok(n) = (&stream).read(&mut buf).await {
                                if n == 0 || (&stream).write_all(&buf[..n]).await.is_err() {
                                    break;
                                }
                            }
                        })
                        .detach();
                    }
                };
                future::or(serve, async {
                    let _ = stopped.recv().await;
                })
                .await;
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
