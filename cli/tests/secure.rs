//! The command's secure channel: identities, pinned sends, and what a plaintext client gets.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use support::*;

/// The key of an `identity: <64 hex>` line.
fn identity_of(proc: &Proc) -> String {
    let line = proc.wait_line(|l| l.starts_with("identity: "));
    let key = line.trim_start_matches("identity: ").to_string();
    assert!(
        key.len() == 64 && key.bytes().all(|b| b.is_ascii_hexdigit()),
        "{line:?}"
    );
    key
}

#[test]
fn secure_echo_prints_its_identity_and_drops_a_plaintext_client_within_the_handshake_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let echo = Proc::start(
        &[
            "echo",
            "--listen",
            "127.0.0.1:0",
            "--handshake-timeout",
            "1",
        ],
        dir.path(),
    );
    identity_of(&echo);
    let mut client = TcpStream::connect(echo.bound_addr()).unwrap();
    client.set_read_timeout(Some(WAIT)).unwrap();
    let started = Instant::now();
    client.write_all(b"hello\n").unwrap();
    let mut back = Vec::new();
    // End of stream or a reset: either way the connection is gone, and nothing came back.
    let _ = client.read_to_end(&mut back);
    assert!(back.is_empty(), "a plaintext client got {back:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "dropped after {:?}, not within the 1 s handshake timeout",
        started.elapsed()
    );
    echo.wait_line(|l| l.contains(" refused: "));
    echo.kill();
}

#[test]
fn a_send_pinned_to_the_receivers_key_is_delivered_and_a_wrong_pin_fails_before_any_data() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f.bin"), content(10_000, 3)).unwrap();
    std::fs::create_dir(dir.path().join("in")).unwrap();
    let recv = Proc::start(&["recv", "--listen", "127.0.0.1:0", "-o", "in"], dir.path());
    let key = identity_of(&recv);
    let addr = recv.bound_addr().to_string();
    let wrong = "ab".repeat(32);
    let refused = run(&["send", &addr, "f.bin", "--peer-key", &wrong], dir.path());
    refused.assert_one_line_error(1, "key mismatch");
    assert!(entries(&dir.path().join("in")).is_empty());

    let send = run(&["send", &addr, "f.bin", "--peer-key", &key], dir.path());
    assert!(send.status.success(), "{send:?}");
    assert!(send.stdout[0].starts_with("identity: "), "{send:?}");
    let end = recv.finish();
    assert!(end.status.success(), "{end:?}");
    assert_eq!(
        std::fs::read(dir.path().join("in/f.bin")).unwrap(),
        content(10_000, 3)
    );
}

#[test]
fn an_identity_file_is_created_owner_only_once_and_a_wrong_sized_one_is_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys/me");
    let path_arg = path.display().to_string();
    let echo = |dir: &std::path::Path| {
        Proc::start(
            &["echo", "--listen", "127.0.0.1:0", "--identity", &path_arg],
            dir,
        )
    };
    let first = echo(dir.path());
    let key = identity_of(&first);
    first.kill();
    assert_eq!(std::fs::read(&path).unwrap().len(), 32);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let again = echo(dir.path());
    assert_eq!(identity_of(&again), key, "the same file, the same key");
    again.kill();

    std::fs::write(&path, b"too short").unwrap();
    run(
        &["echo", "--listen", "127.0.0.1:0", "--identity", &path_arg],
        dir.path(),
    )
    .assert_one_line_error(1, "not a 32-byte secret key");
}

#[test]
fn a_bad_peer_key_and_a_pin_without_security_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    run(
        &["send", "127.0.0.1:1", "f", "--peer-key", "xyz"],
        dir.path(),
    )
    .assert_one_line_error(2, "64 hex");
    let key = "ab".repeat(32);
    run(
        &[
            "recv",
            "--listen",
            "127.0.0.1:0",
            "--insecure",
            "--allow",
            &key,
        ],
        dir.path(),
    )
    .assert_one_line_error(2, "--insecure");
    run(
        &[
            "echo",
            "--listen",
            "127.0.0.1:0",
            "--insecure",
            "--handshake-timeout",
            "3",
        ],
        dir.path(),
    )
    .assert_one_line_error(2, "--insecure");
}
