//! Bad input: one clear line on stderr and a non-zero exit status, never a panic.

mod support;

use support::*;

#[test]
fn an_unreadable_file_is_reported_before_connecting() {
    let dir = tempfile::tempdir().unwrap();
    let addr = closed_port().to_string();
    run(&["send", &addr, "missing.bin"], dir.path())
        .assert_one_line_error(1, "cannot read missing.bin");
    run(&["send", &addr, "."], dir.path()).assert_one_line_error(1, "cannot");
}

#[test]
fn a_port_in_use_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    run(&["recv", "--listen", &addr], dir.path()).assert_one_line_error(1, "cannot listen");
    run(&["echo", "--listen", &addr], dir.path()).assert_one_line_error(1, "in use");
}

#[test]
fn an_unreachable_peer_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f"), b"some bytes").unwrap();
    let addr = closed_port().to_string();
    run(&["send", &addr, "f"], dir.path()).assert_one_line_error(1, "connection refused");
    run(&["send", "not an address", "f"], dir.path()).assert_one_line_error(1, "bad address");
}

#[test]
fn bad_rate_strings_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f"), b"x").unwrap();
    let addr = closed_port().to_string();
    run(&["send", &addr, "f", "--up", "10XB/s"], dir.path())
        .assert_one_line_error(2, "unknown unit");
    run(&["send", &addr, "f", "--up", "0"], dir.path()).assert_one_line_error(2, "more than 0");
    run(
        &["recv", "--listen", "127.0.0.1:0", "--down", "fast"],
        dir.path(),
    )
    .assert_one_line_error(2, "--down");
}

#[test]
fn bad_arguments_are_one_line_too() {
    let dir = tempfile::tempdir().unwrap();
    run(&["send"], dir.path()).assert_one_line_error(2, "<ADDR>");
    run(&["recv", "--listen", "nowhere"], dir.path()).assert_one_line_error(2, "--listen");
    run(&["frobnicate"], dir.path()).assert_one_line_error(2, "frobnicate");
    let missing_dir = run(
        &["recv", "--listen", "127.0.0.1:0", "-o", "no/such/dir"],
        dir.path(),
    );
    missing_dir.assert_one_line_error(1, "output directory");
}
