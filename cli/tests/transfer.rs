//! `openp2p send` and `openp2p recv` over loopback: content, timing under limits, and hostile
//! or vanishing senders.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use support::*;

/// 10 MiB under a 2 MiB/s upload limit: arrives intact in about 5 s, stored under its name only.
#[test]
fn ten_mib_at_two_mib_per_second_takes_about_five_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let data = content(10 << 20, 1);
    std::fs::write(dir.path().join("ten.bin"), &data).unwrap();

    let recv = Proc::start(
        &["recv", "--listen", "127.0.0.1:0", "-o", "out"],
        dir.path(),
    );
    let addr = recv.bound_addr().to_string();
    let started = Instant::now();
    let send = run(&["send", &addr, "ten.bin", "--up", "2MiB/s"], dir.path());
    let wall = started.elapsed();
    let recv = recv.finish();

    assert!(send.status.success(), "{send:?}");
    assert!(recv.status.success(), "{recv:?}");
    assert_eq!(std::fs::read(out.join("ten.bin")).unwrap(), data);
    assert_eq!(entries(&out), ["ten.bin"]);
    // The sender reports the transfer time from connection to confirmation.
    let report = send
        .stdout
        .iter()
        .find(|l| l.starts_with("sent ten.bin"))
        .expect("a summary line");
    let secs: f64 = report
        .split(" in ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|s| s.parse().ok())
        .expect("a duration in the summary");
    println!("10 MiB at 2 MiB/s: transfer {secs:.2} s, whole command {wall:?}");
    assert!(
        (4.7..6.0).contains(&secs),
        "transfer took {secs} s: {report}"
    );
    assert!(
        wall >= Duration::from_millis(4_700) && wall < Duration::from_secs(9),
        "{wall:?}"
    );
    assert!(
        recv.stdout.iter().any(|l| l.contains("checksum ok")),
        "{recv:?}"
    );
}

/// The receiver's download limit paces the sender through TCP's window.
#[test]
fn the_download_limit_paces_the_transfer() {
    let dir = tempfile::tempdir().unwrap();
    let data = content(1 << 20, 2);
    std::fs::write(dir.path().join("one.bin"), &data).unwrap();
    std::fs::create_dir(dir.path().join("in")).unwrap();
    let recv = Proc::start(
        &[
            "recv",
            "--listen",
            "127.0.0.1:0",
            "--down",
            "512KiB/s",
            "-o",
            "in",
        ],
        dir.path(),
    );
    let addr = recv.bound_addr().to_string();
    let started = Instant::now();
    let send = run(&["send", &addr, "one.bin"], dir.path());
    let elapsed = started.elapsed();
    let recv = recv.finish();
    assert!(
        send.status.success() && recv.status.success(),
        "{send:?} {recv:?}"
    );
    assert_eq!(std::fs::read(dir.path().join("in/one.bin")).unwrap(), data);
    // 1 MiB at 512 KiB/s: 2 s (less the socket buffers' worth, which TCP takes at once).
    assert!(elapsed >= Duration::from_millis(1_200), "{elapsed:?}");
}

/// An empty file is a valid transfer too.
#[test]
fn an_empty_file_is_sent_and_verified() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("empty"), b"").unwrap();
    std::fs::create_dir(dir.path().join("in")).unwrap();
    let recv = Proc::start(&["recv", "--listen", "127.0.0.1:0", "-o", "in"], dir.path());
    let addr = recv.bound_addr().to_string();
    let send = run(&["send", &addr, "empty"], dir.path());
    let recv = recv.finish();
    assert!(
        send.status.success() && recv.status.success(),
        "{send:?} {recv:?}"
    );
    assert_eq!(std::fs::read(dir.path().join("in/empty")).unwrap(), b"");
}

fn frame(msg: &[u8]) -> Vec<u8> {
    let mut out = (msg.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(msg);
    out
}

/// A header as the wire format defines it (see `src/wire.rs`), built by hand.
fn raw_header(name: &[u8], size: u64, checksum: [u8; 32]) -> Vec<u8> {
    let mut h = b"OP2PFILE".to_vec();
    h.push(1);
    h.extend_from_slice(&size.to_be_bytes());
    h.extend_from_slice(&checksum);
    h.extend_from_slice(&(name.len() as u16).to_be_bytes());
    h.extend_from_slice(name);
    frame(&h)
}

/// Starts `recv` in an empty `in/` directory, lets a raw TCP client send `bytes`, and returns
/// the receiver's end and the client's socket.
fn hostile(bytes: &[u8]) -> (Finished, TcpStream, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("in")).unwrap();
    // Plaintext, so the raw client reaches the file protocol.
    let recv = Proc::start(
        &["recv", "--insecure", "--listen", "127.0.0.1:0", "-o", "in"],
        dir.path(),
    );
    let mut client = TcpStream::connect(recv.bound_addr()).unwrap();
    client.write_all(bytes).unwrap();
    let end = recv.finish();
    (end, client, dir)
}

#[test]
fn a_peer_sending_garbage_is_refused_with_one_line() {
    let (end, _client, dir) = hostile(b"GET / HTTP/1.1\r\nHost: example\r\n\r\n");
    end.assert_one_line_error(1, "garbage");
    assert!(entries(&dir.path().join("in")).is_empty());

    let (end, _client, _dir) = hostile(&frame(b"hello, not a header"));
    end.assert_one_line_error(1, "bad magic");
}

#[test]
fn a_header_naming_a_path_is_refused_and_nothing_is_written() {
    for name in [&b"../escape.txt"[..], b"/tmp/abs", b"..", b"a/b"] {
        let mut bytes = raw_header(name, 5, [0; 32]);
        bytes.extend_from_slice(&frame(b"12345"));
        let (end, _client, dir) = hostile(&bytes);
        end.assert_one_line_error(1, "unsafe file name");
        assert!(entries(&dir.path().join("in")).is_empty());
        assert_eq!(
            entries(dir.path()),
            ["in"],
            "nothing written next to the output dir"
        );
    }
}

#[test]
fn a_checksum_mismatch_keeps_nothing_and_tells_the_sender() {
    let mut bytes = raw_header(b"data.bin", 100, [0; 32]);
    bytes.extend_from_slice(&frame(&[7; 100]));
    let (end, mut client, dir) = hostile(&bytes);
    end.assert_one_line_error(1, "checksum mismatch");
    assert!(entries(&dir.path().join("in")).is_empty());
    let mut ack = Vec::new();
    client.set_read_timeout(Some(WAIT)).unwrap();
    let _ = client.read_to_end(&mut ack);
    assert_eq!(ack, frame(b"OP2PACK\x01"), "the sender is told: mismatch");
}

#[test]
fn more_data_than_announced_is_refused() {
    let data = [1u8; 10];
    let mut bytes = raw_header(b"x.bin", 4, [0; 32]);
    bytes.extend_from_slice(&frame(&data));
    let (end, _client, dir) = hostile(&bytes);
    end.assert_one_line_error(1, "more than the 4 bytes");
    assert!(entries(&dir.path().join("in")).is_empty());
}

/// A sender that dies mid-transfer leaves neither the final name nor the `.part` file.
#[test]
fn an_interrupted_transfer_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("slow.bin"), content(4 << 20, 3)).unwrap();
    std::fs::create_dir(dir.path().join("in")).unwrap();
    let recv = Proc::start(&["recv", "--listen", "127.0.0.1:0", "-o", "in"], dir.path());
    let addr = recv.bound_addr().to_string();
    let send = Proc::start(&["send", &addr, "slow.bin", "--up", "512KiB/s"], dir.path());
    // A progress line means the header arrived and data is being written to the .part file.
    recv.wait_line(|l| l.starts_with("slow.bin: "));
    assert_eq!(entries(&dir.path().join("in")), ["slow.bin.part"]);
    send.kill();
    let end = recv.finish();
    end.assert_one_line_error(1, "nothing was kept");
    assert!(entries(&dir.path().join("in")).is_empty());
}
