//! The raw mio baseline: a sender and a receiver thread each with its own `Poll`; an echo
//! server on one `Poll` thread with a slab of connections.

use super::{BulkClock, ECHO_BUF, READ_BUF, WRITE_CHUNK};
use crate::cpu::{Linger, Span};
use crate::subject::{BenchResult, BulkSize, EchoServer};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

fn pair() -> io::Result<(std::net::TcpStream, std::net::TcpStream)> {
    let listener = std::net::TcpListener::bind(super::loopback())?;
    let a = std::net::TcpStream::connect(listener.local_addr()?)?;
    let (b, _) = listener.accept()?;
    for s in [&a, &b] {
        s.set_nodelay(true)?;
        s.set_nonblocking(true)?;
    }
    Ok((a, b))
}

/// One GiB-scale transfer: a thread writing 1 MiB at a time, this thread reading into 128 KiB.
pub fn bulk(size: BulkSize) -> BenchResult<Span> {
    let (tx, rx) = pair()?;
    let (release, linger) = Linger::pair();
    let total = size.total();
    let sender = std::thread::spawn(move || -> io::Result<()> {
        let mut stream = TcpStream::from_std(tx);
        let mut poll = Poll::new()?;
        poll.registry()
            .register(&mut stream, Token(0), Interest::WRITABLE)?;
        let mut events = Events::with_capacity(8);
        let data = vec![0x5au8; WRITE_CHUNK];
        let mut sent = 0u64;
        while sent < total {
            let n = (total - sent).min(WRITE_CHUNK as u64) as usize;
            match stream.write(&data[..n]) {
                Ok(k) => sent += k as u64,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => poll.poll(&mut events, None)?,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        linger.wait();
        Ok(())
    });
    let mut stream = TcpStream::from_std(rx);
    let mut poll = Poll::new()?;
    poll.registry()
        .register(&mut stream, Token(0), Interest::READABLE)?;
    let mut events = Events::with_capacity(8);
    let mut buf = vec![0u8; READ_BUF];
    let mut clock = BulkClock::new(size);
    while !clock.done() {
        match stream.read(&mut buf) {
            Ok(0) => return Err("raw mio bulk: early EOF".into()),
            Ok(n) => {
                clock.add(n);
                // A short read drained the socket: wait for the next edge (see `serve`).
                if n < buf.len() && !clock.done() {
                    poll.poll(&mut events, None)?;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => poll.poll(&mut events, None)?,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    let span = clock.elapsed();
    drop(release);
    sender
        .join()
        .map_err(|_| "raw mio bulk: sender panicked")??;
    Ok(span)
}

const LISTENER: Token = Token(usize::MAX);
const WAKER: Token = Token(usize::MAX - 1);

/// A one-thread mio echo server.
#[derive(Debug)]
pub struct EchoLoop {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    waker: Arc<Waker>,
    thread: JoinHandle<io::Result<()>>,
}

/// A connection of the echo server: the socket and what it read but could not write back yet.
type Conn = (TcpStream, Vec<u8>);

/// Serves readiness of one connection; false when it is finished (closed, reset, failed).
fn serve(conn: &mut Conn, buf: &mut [u8]) -> bool {
    let (s, pending) = conn;
    loop {
        if !pending.is_empty() {
            match s.write(pending) {
                Ok(n) => drop(pending.drain(..n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
            continue;
        }
        match s.read(buf) {
            Ok(0) => return false,
            Ok(n) => {
                match s.write(&buf[..n]) {
                    Ok(w) => pending.extend_from_slice(&buf[w..n]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        pending.extend_from_slice(&buf[..n])
                    }
                    Err(_) => return false,
                }
                // A short read drained the socket (Linux epoll raises a new edge for data
                // that arrives later): skip the read that would only say WouldBlock, as
                // Tokio's `poll_read` does.
                if n < buf.len() && pending.is_empty() {
                    return true;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
}

impl EchoLoop {
    /// Binds a loopback port and starts the server thread.
    pub fn start() -> BenchResult<Box<dyn EchoServer>> {
        let mut listener = TcpListener::bind(super::loopback())?;
        let addr = listener.local_addr()?;
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || -> io::Result<()> {
            let mut poll = poll;
            poll.registry()
                .register(&mut listener, LISTENER, Interest::READABLE)?;
            let mut conns: Slab<Conn> = Slab::new();
            let mut events = Events::with_capacity(1024);
            let mut buf = vec![0u8; ECHO_BUF];
            while !flag.load(Ordering::Relaxed) {
                match poll.poll(&mut events, None) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    other => other?,
                }
                for event in events.iter() {
                    match event.token() {
                        WAKER => {}
                        LISTENER => loop {
                            match listener.accept() {
                                Ok((mut s, _)) => {
                                    s.set_nodelay(true)?;
                                    let entry = conns.vacant_entry();
                                    poll.registry().register(
                                        &mut s,
                                        Token(entry.key()),
                                        Interest::READABLE | Interest::WRITABLE,
                                    )?;
                                    entry.insert((s, Vec::new()));
                                }
                                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                                // A connection reset before it was accepted, out of fds, ...
                                Err(_) => break,
                            }
                        },
                        Token(key) => {
                            let finished = match conns.get_mut(key) {
                                Some(conn) => !serve(conn, &mut buf),
                                None => false,
                            };
                            if finished {
                                let (mut s, _) = conns.remove(key);
                                let _ = poll.registry().deregister(&mut s);
                            }
                        }
                    }
                }
            }
            Ok(())
        });
        Ok(Box::new(EchoLoop {
            addr,
            stop,
            waker,
            thread,
        }))
    }
}

impl EchoServer for EchoLoop {
    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn stop(self: Box<Self>) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.waker.wake();
        let _ = self.thread.join();
    }
}
