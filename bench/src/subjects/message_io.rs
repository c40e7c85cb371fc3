//! message-io 0.19 through its network layer (`network::split()`): a `NetworkController` to
//! listen, connect and send, a `NetworkProcessor` polled on a thread of its own. The transport is
//! `Tcp` (raw stream chunks, as the baselines), not `FramedTcp`, which adds its own framing.
//!
//! Two properties of message-io show in the figures: `send` writes from the calling thread and
//! busy-retries while the socket would block (its source says so), and it does not set
//! `TCP_NODELAY`.

use super::BulkClock;
use crate::cpu::{Linger, Span};
use crate::subject::{BenchResult, BulkSize, EchoServer};
use message_io::network::{self, NetEvent, NetworkController, SendStatus, Transport};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long the processor waits for readiness before it looks at its stop flag (message-io's
/// poll waker is not implemented, so stopping means polling with a timeout).
const TICK: Duration = Duration::from_millis(10);

/// A network whose processor runs on a thread until `stop`, handing each event to `on_event`.
struct Net {
    controller: Arc<NetworkController>,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl Net {
    fn start(
        mut on_event: impl FnMut(&NetworkController, NetEvent<'_>) + Send + 'static,
    ) -> BenchResult<Net> {
        let (controller, mut processor) = network::split();
        let controller = Arc::new(controller);
        let stop = Arc::new(AtomicBool::new(false));
        let (flag, ctl) = (Arc::clone(&stop), Arc::clone(&controller));
        let thread = std::thread::Builder::new()
            .name("message-io".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    processor.process_poll_event(Some(TICK), |event| on_event(&ctl, event));
                }
            })?;
        Ok(Net {
            controller,
            stop,
            thread,
        })
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
    }
}

/// A sender thread `send`ing 1 MiB slices; the receiver's processor thread counts `Message`s.
pub fn bulk(size: BulkSize) -> BenchResult<Span> {
    let (done_tx, done_rx) = mpsc::channel();
    let mut clock = BulkClock::new(size);
    let mut reported = false;
    let receiver = Net::start(move |_, event| {
        if let NetEvent::Message(_, data) = event {
            if clock.add(data.len()) && !reported {
                reported = true;
                let _ = done_tx.send(clock.elapsed());
            }
        }
    })?;
    let (_, addr) = receiver
        .controller
        .listen(Transport::Tcp, super::loopback())?;
    let sender = Net::start(|_, _| {})?;
    let (endpoint, _) = sender.controller.connect(Transport::Tcp, addr)?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while sender.controller.is_ready(endpoint.resource_id()) != Some(true) {
        if Instant::now() > deadline || sender.controller.is_ready(endpoint.resource_id()).is_none()
        {
            return Err("message-io bulk: connect failed".into());
        }
        std::thread::yield_now();
    }
    let total = size.total();
    let (release, linger) = Linger::pair();
    let controller = Arc::clone(&sender.controller);
    let sending = std::thread::spawn(move || -> Result<(), String> {
        let data = vec![0x5au8; super::WRITE_CHUNK];
        let mut sent = 0u64;
        while sent < total {
            let n = (total - sent).min(data.len() as u64) as usize;
            match controller.send(endpoint, &data[..n]) {
                SendStatus::Sent => sent += n as u64,
                other => return Err(format!("message-io send: {other:?}")),
            }
        }
        linger.wait();
        Ok(())
    });
    let outcome = done_rx
        .recv_timeout(Duration::from_secs(120))
        .map_err(|_| "message-io bulk: the receiver did not finish".into());
    drop(release);
    let sent = sending.join();
    sender.stop();
    receiver.stop();
    sent.map_err(|_| "message-io bulk: sender panicked")??;
    outcome
}

/// An echo server: every `Message` is sent straight back from the processor thread.
pub struct Echo {
    addr: SocketAddr,
    net: Net,
}

impl std::fmt::Debug for Echo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Echo").field("addr", &self.addr).finish()
    }
}

impl Echo {
    /// Listens on loopback and starts the processor thread.
    pub fn start() -> BenchResult<Box<dyn EchoServer>> {
        let net = Net::start(|controller, event| {
            if let NetEvent::Message(endpoint, data) = event {
                controller.send(endpoint, data);
            }
        })?;
        let (_, addr) = net.controller.listen(Transport::Tcp, super::loopback())?;
        Ok(Box::new(Echo { addr, net }))
    }
}

impl EchoServer for Echo {
    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn stop(self: Box<Self>) {
        self.net.stop();
    }
}
