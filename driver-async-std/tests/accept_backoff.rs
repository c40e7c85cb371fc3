//! A listener that runs out of file descriptors reports `AcceptFailed`, backs off and accepts
//! the waiting connection once descriptors are free again. In a test binary of its own, with a
//! single test: it exhausts the process's descriptors, which would break tests running beside it.

mod common;

use common::{expect, within, AsyncStd, Smol};
use openp2p_async_std::{Config, Event, Node};
use std::fs::File;
use std::net::{SocketAddr, TcpStream};

/// Opens `/dev/null` until the process has no descriptor left; returns the files.
fn exhaust_descriptors() -> Vec<File> {
    let mut files = Vec::new();
    loop {
        match File::open("/dev/null") {
            Ok(file) => files.push(file),
            Err(e) if e.raw_os_error().is_some() => return files,
            Err(e) => panic!("unexpected error while opening files: {e}"),
        }
        assert!(files.len() < 1_000_000, "no descriptor limit in sight");
    }
}

async fn a_listener_out_of_descriptors_backs_off_and_recovers(start: fn(Config) -> Node) {
    let server = start(Config::default());
    let addr: SocketAddr = within(
        "listen",
        server.listen("127.0.0.1:0".parse().expect("addr")),
    )
    .await
    .expect("listen");
    let mut files = exhaust_descriptors();
    // One descriptor for the dialling socket; the kernel completes the handshake on its own, so
    // the listener's accept is what finds no descriptor left.
    drop(files.pop());
    let client = TcpStream::connect(addr);
    let failed = expect(&server, "AcceptFailed", |e| {
        matches!(e, Event::AcceptFailed { .. } | Event::Connected { .. })
    })
    .await;
    drop(files);
    let client = client.expect("connect with the last descriptor");
    assert!(matches!(failed, Event::AcceptFailed { .. }), "{failed:?}");
    let connected = expect(&server, "Connected after the back-off", |e| {
        matches!(e, Event::Connected { .. })
    })
    .await;
    assert!(
        matches!(connected, Event::Connected { addr, .. } if client.local_addr().ok() == Some(addr))
    );
    drop(client);
    within("shutdown", server.shutdown()).await;
}

#[test]
fn a_listener_out_of_descriptors_backs_off_and_recovers_on_both_runtimes() {
    // One after the other: both exhaust the same process's descriptors.
    common::run::<AsyncStd, _>(a_listener_out_of_descriptors_backs_off_and_recovers);
    common::run::<Smol, _>(a_listener_out_of_descriptors_backs_off_and_recovers);
}
