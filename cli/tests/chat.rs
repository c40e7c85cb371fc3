//! `openp2p chat` over loopback: nodes find each other by broadcast on `127.255.255.255` (a UDP
//! port of its own per test) and exchange lines; bad input never breaks a node.

mod chat_support;

use chat_support::*;
use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};

/// `--discovery-port PORT --broadcast 127.255.255.255`.
fn on_loopback(mut args: Vec<String>, port: u16) -> Vec<String> {
    args.extend([
        "--discovery-port".into(),
        port.to_string(),
        "--broadcast".into(),
        "127.255.255.255".into(),
    ]);
    args
}

/// A length-prefixed message, as the chat's framing writes it.
fn frame(data: &[u8]) -> Vec<u8> {
    let mut out = (data.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(data);
    out
}

#[test]
fn three_nodes_on_one_host_find_each_other_and_hear_every_line() {
    let port = free_udp_port();
    let names = ["alice", "bob", "carol"];
    let said = |name: &str| {
        vec![
            format!("hello from {name}"),
            format!("{name} says ünïcode ✓"),
        ]
    };
    let nodes: Vec<ChatProc> = names
        .iter()
        .map(|name| {
            ChatProc::start(
                &on_loopback(scripted(name, &said(name), 2, 4, 50), port),
                None,
            )
        })
        .collect();
    for (me, node) in names.iter().zip(nodes) {
        let end = node.finish();
        assert!(end.status.success(), "{me}: {end:?}");
        assert!(end.stderr.is_empty(), "{me}: {}", end.stderr);
        let others: Vec<&str> = names.iter().copied().filter(|n| n != me).collect();
        assert_eq!(
            names_in(&end.stdout, "JOINED"),
            others,
            "{me} saw both others join"
        );
        let messages = end.messages();
        assert_eq!(messages.len(), 4, "{me}: {messages:?}");
        for other in others {
            let from: Vec<String> = messages
                .iter()
                .filter(|(sender, _)| sender == other)
                .map(|(_, text)| text.clone())
                .collect();
            assert_eq!(from, said(other), "{me} heard {other}'s lines in order");
        }
    }
}

fn names_in(lines: &[String], kind: &str) -> Vec<String> {
    names(lines, kind).into_iter().collect()
}

#[test]
fn lines_typed_on_stdin_arrive_one_per_message_and_bad_lines_do_not_break_the_chat() {
    let port = free_udp_port();
    let mut typed = b"first line\r\n\xff\xfe not utf-8\n".to_vec();
    typed.extend_from_slice(&[b'x'; 70_000]);
    typed.extend_from_slice(b"\ntab\there \x1b[0m\nlast line without a newline");
    let typist = ChatProc::start(
        &on_loopback(
            ["chat", "--name", "typist", "--wait-peers", "1"]
                .map(String::from)
                .to_vec(),
            port,
        ),
        Some(typed),
    );
    let reader = ChatProc::start(&on_loopback(scripted("reader", &[], 1, 4, 50), port), None);
    let heard = reader.finish();
    assert!(heard.status.success(), "{heard:?}");
    let texts: Vec<String> = heard.messages().into_iter().map(|(_, t)| t).collect();
    assert_eq!(
        texts,
        [
            "first line",
            "\u{fffd}\u{fffd} not utf-8",
            "tab\\there \\u{1b}[0m",
            "last line without a newline"
        ]
    );
    assert!(heard.messages().iter().all(|(name, _)| name == "typist"));
    // The end of its input ends the typist's chat once its lines are out.
    let typed = typist.finish();
    assert!(typed.status.success(), "{typed:?}");
    assert_eq!(
        typed.stderr.trim(),
        "openp2p: warning: a line of 70000 bytes was not sent (the limit is 65536)"
    );
}

#[test]
fn hostile_peers_and_garbage_beacons_are_shrugged_off() {
    let port = free_udp_port();
    let mut host = ChatProc::start(
        &on_loopback(
            [
                "chat",
                "--insecure",
                "--name",
                "host",
                "--exit-after-messages",
                "1",
                "--duration",
                "50",
            ]
            .map(String::from)
            .to_vec(),
            port,
        ),
        None,
    );
    let tcp = host.tcp_port();
    let noise = UdpSocket::bind("127.0.0.1:0").unwrap();
    for garbage in [&b""[..], b"OP2P", &[0xff; 1400], &[0; 60_000]] {
        noise.send_to(garbage, ("127.0.0.1", port)).unwrap();
    }
    let connect = || {
        let stream = TcpStream::connect(("127.0.0.1", tcp)).unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        stream
    };
    // A peer announcing a frame far over the line limit is cut off.
    let mut big = connect();
    big.write_all(&frame(b"big")).unwrap();
    big.write_all(&1_000_000u32.to_be_bytes()).unwrap();
    big.write_all(&[b'y'; 100]).unwrap();
    host.wait_line(|l| l.starts_with("LEFT big "));
    // A first message too long for a name: not a chat peer, disconnected without a word.
    let mut stranger = connect();
    stranger.write_all(&frame(&[b'n'; 100])).unwrap();
    // The host hangs up on it (end of stream or reset, either way the read returns).
    let _ = stranger.read_to_end(&mut Vec::new());
    // Its name first, then a line with a newline and invalid UTF-8 in it.
    let mut raw = connect();
    raw.write_all(&frame(b"raw")).unwrap();
    raw.write_all(&frame(b"hi\xff\nthere")).unwrap();
    // The host said its name first. With nothing left unread, closing sends a FIN, not a reset.
    let mut hello = [0; 8];
    raw.read_exact(&mut hello).unwrap();
    assert_eq!(hello[..], frame(b"host")[..]);
    drop(raw);
    let end = host.finish();
    assert!(end.status.success(), "{end:?}");
    assert_eq!(
        end.messages(),
        [("raw".into(), "hi\u{fffd}\\nthere".into())]
    );
    assert_eq!(names_in(&end.stdout, "JOINED"), ["big", "raw"]);
    assert!(
        names(&end.stdout, "DISCOVERED").is_empty(),
        "garbage announced nobody: {:?}",
        end.stdout
    );
    assert!(
        end.stderr
            .contains("big left: frame of 1000000 bytes exceeds"),
        "{}",
        end.stderr
    );
    assert!(end.stderr.contains("is not a chat peer"), "{}", end.stderr);
}

#[test]
fn a_node_that_hears_too_few_lines_in_time_fails_with_one_line() {
    let port = free_udp_port();
    let lonely = ChatProc::start(&on_loopback(scripted("lonely", &[], 0, 1, 1), port), None);
    let end = lonely.finish();
    assert_eq!(end.status.code(), Some(1), "{end:?}");
    assert_eq!(
        end.stderr.trim(),
        "openp2p: error: only 0 of 1 lines arrived within 1 s (0 peers joined)"
    );
}

#[test]
fn a_said_line_over_the_limit_is_a_usage_error() {
    let long = "z".repeat(70_000);
    let end = ChatProc::start(&["chat".into(), "--say".into(), long], None).finish();
    assert_eq!(end.status.code(), Some(2), "{end:?}");
    assert!(end.stderr.contains("at most 65536 bytes"), "{}", end.stderr);
}

#[test]
fn names_must_be_one_short_word() {
    for bad in ["two words", "", &"x".repeat(65)] {
        let end = ChatProc::start(&["chat".into(), "--name".into(), bad.into()], None).finish();
        assert_eq!(end.status.code(), Some(2), "{bad:?}: {end:?}");
        assert!(end.stderr.starts_with("openp2p: "), "{}", end.stderr);
        assert_eq!(end.stderr.lines().count(), 1, "{}", end.stderr);
    }
}

#[test]
fn ports_already_taken_are_reported_in_one_line() {
    let tcp = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let port = tcp.local_addr().unwrap().port().to_string();
    let end = ChatProc::start(&["chat", "--port", &port].map(String::from), None).finish();
    assert_eq!(end.status.code(), Some(1), "{end:?}");
    assert!(
        end.stderr
            .starts_with("openp2p: error: cannot listen on 0.0.0.0:"),
        "{}",
        end.stderr
    );
    // A socket on the discovery port that does not share it (no SO_REUSEADDR).
    let udp = UdpSocket::bind("0.0.0.0:0").unwrap();
    let port = udp.local_addr().unwrap().port().to_string();
    let end =
        ChatProc::start(&["chat", "--discovery-port", &port].map(String::from), None).finish();
    assert_eq!(end.status.code(), Some(1), "{end:?}");
    assert!(
        end.stderr.starts_with(&format!(
            "openp2p: error: cannot use the discovery port {port}"
        )),
        "{}",
        end.stderr
    );
    assert_eq!(end.stderr.lines().count(), 1, "{}", end.stderr);
}
