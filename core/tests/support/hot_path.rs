//! Shared by the hot-path bench and the allocation test: a counting allocator and an in-memory
//! pair of engines joined by a byte buffer (no sockets, so only the engine's own work is measured).
#![allow(unsafe_code, dead_code)]

use openp2p_core::{
    Bytes, Config, Engine, Event, Framing, Identity, PeerId, SecureConfig, Transfer,
};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::SocketAddr;
use std::time::Instant;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

/// Counts heap allocations made by the current thread while counting is on.
pub struct CountingAlloc;

// SAFETY: defers every call to the system allocator; only adds a thread-local counter, whose
// const-initialised cells never allocate.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        bump();
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        bump();
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        bump();
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

fn bump() {
    let _ = COUNTING.try_with(|on| {
        if on.get() {
            let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        }
    });
}

/// Runs `f` and returns how many allocations this thread made during it.
pub fn count_allocations(f: impl FnOnce()) -> u64 {
    ALLOCATIONS.with(|n| n.set(0));
    COUNTING.with(|on| on.set(true));
    f();
    COUNTING.with(|on| on.set(false));
    ALLOCATIONS.with(|n| n.get())
}

/// Two engines, one connection, and the bytes in flight between them.
pub struct Pair {
    pub sender: Engine,
    pub receiver: Engine,
    to_receiver: PeerId,
    from_sender: PeerId,
    wire: Vec<u8>,
    now: Instant,
    pub received: u64,
}

impl Pair {
    pub fn new(framing: Framing) -> Pair {
        Self::with(framing, false)
    }

    /// A pair over a Noise secure channel (AES-GCM), its handshake completed.
    pub fn secure(framing: Framing) -> Pair {
        Self::with(framing, true)
    }

    fn with(framing: Framing, secure: bool) -> Pair {
        let now = Instant::now();
        let config = |n: u8| Config {
            framing,
            secure: secure.then(|| SecureConfig::new(Identity::from_entropy([n; 32]))),
            ..Config::default()
        };
        let mut sender = Engine::with_entropy(config(1), [1; 32]).expect("valid config");
        let mut receiver = Engine::with_entropy(config(2), [2; 32]).expect("valid config");
        let addr: SocketAddr = "127.0.0.1:1".parse().expect("address");
        let listener = receiver.listen(addr).expect("listen");
        receiver.handle_listening(listener, addr, now);
        let to_receiver = sender.connect(addr, now).expect("connect");
        sender.handle_connected(to_receiver, now);
        let from_sender = receiver
            .handle_accepted(listener, addr, now)
            .expect("accept");
        let mut pair = Pair {
            sender,
            receiver,
            to_receiver,
            from_sender,
            wire: Vec::with_capacity(1 << 20),
            now,
            received: 0,
        };
        pair.drain();
        if secure {
            pair.handshake();
        }
        pair
    }

    /// Moves handshake messages both ways until neither side has anything to write.
    fn handshake(&mut self) {
        let now = self.now;
        for _ in 0..4 {
            let ab = Self::written(&mut self.sender, self.to_receiver, now);
            let ba = Self::written(&mut self.receiver, self.from_sender, now);
            Self::deliver(&mut self.receiver, self.from_sender, now, &ab);
            Self::deliver(&mut self.sender, self.to_receiver, now, &ba);
            self.drain();
        }
    }

    /// Everything `engine` writes to `peer` now, appended to `out` (cleared first).
    pub fn written_into(engine: &mut Engine, peer: PeerId, now: Instant, out: &mut Vec<u8>) {
        out.clear();
        while let Transfer::Moved(_) = engine.write_to(peer, now, |slices| {
            slices.iter().for_each(|s| out.extend_from_slice(s));
            Ok(slices.iter().map(|s| s.len()).sum())
        }) {}
    }

    fn written(engine: &mut Engine, peer: PeerId, now: Instant) -> Vec<u8> {
        let mut out = Vec::new();
        Self::written_into(engine, peer, now, &mut out);
        out
    }

    /// Feeds `bytes` to `engine`'s `peer` through its read path.
    pub fn deliver(engine: &mut Engine, peer: PeerId, now: Instant, bytes: &[u8]) {
        let mut at = 0;
        while at < bytes.len() {
            let moved = engine.read_from(peer, now, |buf| {
                let n = buf.len().min(bytes.len() - at);
                buf[..n].copy_from_slice(&bytes[at..at + n]);
                at += n;
                Ok(n)
            });
            if !matches!(moved, Transfer::Moved(_)) {
                break;
            }
        }
    }

    /// Sends one message and moves it across; returns the payload bytes delivered.
    pub fn transfer(&mut self, message: &Bytes) -> u64 {
        let now = self.now;
        let wire = &mut self.wire;
        self.sender
            .send(self.to_receiver, message.clone(), now)
            .expect("send");
        while let Transfer::Moved(_) = self.sender.write_to(self.to_receiver, now, |slices| {
            let mut n = 0;
            for s in slices {
                wire.extend_from_slice(s);
                n += s.len();
            }
            Ok(n)
        }) {}
        let mut at = 0;
        loop {
            let r = self.receiver.read_from(self.from_sender, now, |buf| {
                let n = buf.len().min(wire.len() - at);
                if n == 0 {
                    return Err(std::io::ErrorKind::WouldBlock.into());
                }
                buf[..n].copy_from_slice(&wire[at..at + n]);
                at += n;
                Ok(n)
            });
            if !matches!(r, Transfer::Moved(_)) {
                break;
            }
        }
        wire.clear();
        self.drain()
    }

    fn drain(&mut self) -> u64 {
        let mut got = 0;
        while self.sender.poll_io().is_some() {}
        while self.receiver.poll_io().is_some() {}
        while self.sender.poll_event().is_some() {}
        while let Some(event) = self.receiver.poll_event() {
            if let Event::Received { data, .. } = event {
                got += data.len() as u64;
            }
        }
        self.received += got;
        got
    }
}
