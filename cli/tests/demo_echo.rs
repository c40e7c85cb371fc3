//! `openp2p demo --quick` and `openp2p echo` end to end.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use support::*;

#[test]
fn the_quick_demo_verifies_every_transfer_and_prints_its_table() {
    let dir = tempfile::tempdir().unwrap();
    let end = run(&["demo", "--quick"], dir.path());
    assert!(end.status.success(), "{end:?}");
    assert!(end.stderr.is_empty(), "{}", end.stderr);
    let out = end.stdout.join("\n");
    assert!(out.contains("10 of 10 transfers verified"), "{out}");
    // One table row per transfer (n0 → n1, n0 → n2, ...), each verified.
    let rows: Vec<&String> = end
        .stdout
        .iter()
        .skip_while(|l| !l.starts_with("transfer "))
        .skip(1)
        .take_while(|l| !l.is_empty())
        .collect();
    assert_eq!(rows.len(), 10, "{out}");
    assert!(rows.iter().all(|r| r.ends_with(" ok")), "{out}");
}

#[test]
fn echo_returns_what_it_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let echo = Proc::start(
        &["echo", "--insecure", "--listen", "127.0.0.1:0"],
        dir.path(),
    );
    let mut client = TcpStream::connect(echo.bound_addr()).unwrap();
    client.set_read_timeout(Some(WAIT)).unwrap();
    let message = content(100_000, 9);
    client.write_all(&message).unwrap();
    let mut back = vec![0; message.len()];
    client.read_exact(&mut back).unwrap();
    assert_eq!(back, message);
    echo.wait_line(|l| l.ends_with("connected"));
    echo.kill();
}
