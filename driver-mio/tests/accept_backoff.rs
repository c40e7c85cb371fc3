//! Accept errors such as `EMFILE`: the listener backs off (no busy loop), counts the error, and
//! resumes once descriptors are available again. Alone in its binary: it lowers the process's
//! descriptor limit.
#![allow(unsafe_code)] // setrlimit/getrlimit only.

mod common;

use common::{expect, PATIENCE};
use openp2p_mio::{Config, Event, Node};
use socket2::{Domain, Socket, Type};
use std::time::{Duration, Instant};

fn nofile() -> libc::rlimit {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable rlimit.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    assert_eq!(rc, 0, "getrlimit");
    limit
}

fn set_nofile(limit: libc::rlimit) {
    // SAFETY: `limit` is a valid rlimit; lowering the soft limit below the hard one is allowed.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) };
    assert_eq!(rc, 0, "setrlimit");
}

/// The descriptor limit that leaves exactly `room` new descriptors: the kernel hands out the
/// lowest free number and refuses numbers at or above the limit, so count free numbers, not
/// open descriptors.
fn limit_leaving(room: usize) -> u64 {
    let own = std::path::PathBuf::from(format!("/proc/{}/fd", std::process::id()));
    let mut open: Vec<u64> = std::fs::read_dir("/proc/self/fd")
        .expect("procfs")
        .filter_map(Result::ok)
        // Not the descriptor this listing itself holds (it is closed when done).
        .filter(|e| std::fs::read_link(e.path()).ok().as_ref() != Some(&own))
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    open.sort_unstable();
    let mut free = 0;
    let mut fd = 0;
    loop {
        if open.binary_search(&fd).is_err() {
            if free == room {
                return fd;
            }
            free += 1;
        }
        fd += 1;
    }
}

#[test]
fn emfile_on_accept_backs_off_without_spinning_and_resumes() {
    const CLIENTS: usize = 8;
    const ROOM: usize = 2;
    let (server, mut events) = Node::start(Config::default()).expect("start");
    let addr = server
        .listen("127.0.0.1:0".parse().expect("addr"))
        .expect("listen");

    // The client sockets exist before the limit drops; connecting them needs no descriptor.
    let clients: Vec<Socket> = (0..CLIENTS)
        .map(|_| Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket"))
        .collect();
    let original = nofile();
    set_nofile(libc::rlimit {
        rlim_cur: limit_leaving(ROOM),
        rlim_max: original.rlim_max,
    });
    for client in &clients {
        client
            .connect(&addr.into())
            .expect("the kernel completes the handshake");
    }

    // Two connections fit; the third accept fails with EMFILE and the listener backs off.
    let deadline = Instant::now() + PATIENCE;
    let backing_off = loop {
        let stats = server.driver_stats().expect("running");
        if stats.accept_backoffs > 0 {
            break stats;
        }
        assert!(Instant::now() < deadline, "no accept error seen");
        std::thread::yield_now();
    };
    assert!(backing_off.accept_errors >= 1);
    let engine_count = server.global_stats().expect("running").accept_errors;
    assert!(engine_count >= 1, "the engine counted the failed accept");
    // While the error persists the IO thread wakes about once per back-off, not continuously.
    let window = Duration::from_millis(500);
    let start = Instant::now();
    let (mut connected, mut failed) = (0, 0);
    while start.elapsed() < window {
        let left = window.saturating_sub(start.elapsed());
        match events.recv_timeout(left) {
            Ok(Event::Connected { .. }) => connected += 1,
            Ok(Event::AcceptFailed { .. }) => failed += 1,
            _ => {}
        }
    }
    assert!(failed >= 1, "the failed accepts are reported as events");
    assert!(
        connected <= ROOM,
        "{connected} accepted with room for {ROOM}"
    );
    let later = server.driver_stats().expect("running");
    let wakeups = later.wakeups - backing_off.wakeups;
    assert!(
        wakeups < 60,
        "{wakeups} wake-ups in {window:?} while accepts fail"
    );
    assert!(
        later.accept_backoffs > backing_off.accept_backoffs,
        "it keeps retrying"
    );

    set_nofile(original);
    while connected < CLIENTS {
        expect(&mut events, "Connected", |e| {
            matches!(e, Event::Connected { .. })
        });
        connected += 1;
    }
    assert_eq!(server.global_stats().expect("running").peers, CLIENTS);
    drop(clients);
    server.shutdown();
}
