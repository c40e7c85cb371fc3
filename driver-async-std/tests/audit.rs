//! Correctness audit: interleavings a demanding user hits (sends racing the node's end, send
//! credit, wake-ups). Where an interleaving must be forced, the test polls the node's [`Driver`]
//! by hand, so the order of commands and driver rounds is exact.

mod common;

use bytes::Bytes;
use futures_lite::future::{self, poll_once};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use openp2p_async_std::{Config, Event, Node, PeerId, PeerStream, SendError};
use socket2::{Domain, Socket, Type};
use std::net::{SocketAddr, TcpStream};
use std::pin::pin;
use std::time::Duration;

/// A loopback address whose connects stay in flight: its listener's accept queue (backlog 0) is
/// held full by one connection nobody accepts, so the kernel drops further SYNs and the first
/// retransmission is a second away. Keep the returned sockets alive.
fn unanswered() -> (Socket, TcpStream, SocketAddr) {
    let listener = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    let addr: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    listener.bind(&addr.into()).expect("bind");
    listener.listen(0).expect("listen");
    let addr = listener
        .local_addr()
        .expect("addr")
        .as_socket()
        .expect("inet");
    let filler = TcpStream::connect(addr).expect("the one queued connection");
    (listener, filler, addr)
}

/// A node whose driver runs as a smol task, with the stream of a peer whose connect stays in
/// flight (to [`unanswered`]), so everything written to it stays queued. Keep `held` alive.
struct Connecting {
    node: Node,
    driver: smol::Task<()>,
    peer: PeerId,
    stream: PeerStream,
    held: (Socket, TcpStream),
}

async fn connecting_stream(config: Config) -> Connecting {
    let (node, driver) = Node::new(config).expect("valid config");
    let driver = smol::spawn(driver);
    let (listener, filler, addr) = unanswered();
    let peer = node.connect(addr).await.expect("connect starts");
    let stream = node.stream(peer).expect("the peer is connecting");
    Connecting {
        node,
        driver,
        peer,
        stream,
        held: (listener, filler),
    }
}

/// Every send the handle accepted (`Ok`) is written, counted as `unsent` in the peer's last event,
/// or handed back as `SendRefused`, even when the node finishes with sends still queued for it.
#[test]
fn sends_queued_when_the_node_finishes_are_handed_back() {
    const SENDS: usize = 2_000;
    future::block_on(async {
        let (node, mut driver) = Node::new(Config::default()).expect("valid config");
        let (_listener, _filler, addr) = unanswered();

        // The driver learns of the peer; its connect stays in flight.
        let mut connect = pin!(node.connect(addr));
        assert!(
            poll_once(&mut connect).await.is_none(),
            "waits for the driver"
        );
        assert!(poll_once(&mut driver).await.is_none());
        let peer = connect.await.expect("connect queued");

        // Shutdown, then a burst of sends the handle accepts before the driver runs again.
        let mut shutdown = pin!(node.shutdown());
        assert!(
            poll_once(&mut shutdown).await.is_none(),
            "waits for the driver"
        );
        for _ in 0..SENDS {
            assert_eq!(node.send_now(peer, Bytes::from_static(b"x")), Ok(()));
        }
        driver.await;
        shutdown.await;

        let (mut unsent, mut refused, mut last) = (0u64, 0usize, None);
        while let Some(event) = node.next_event().await {
            last = Some(event.clone());
            match event {
                Event::ConnectFailed { unsent: u, .. } | Event::Disconnected { unsent: u, .. } => {
                    unsent += u
                }
                Event::SendRefused {
                    peer: p,
                    error: SendError::UnknownPeer,
                    data,
                } if p == peer && data == "x" => refused += 1,
                _ => {}
            }
        }
        assert_eq!(
            unsent + refused as u64,
            SENDS as u64,
            "{unsent} unsent + {refused} handed back of {SENDS} accepted"
        );
        assert_eq!(last, Some(Event::ShutdownComplete), "the last event");
    });
}

/// A stream whose connect fails reads the failure, not a clean EOF: `Ok(0)` would tell the
/// application that the remote closed after sending everything.
#[test]
fn a_stream_whose_connect_times_out_reads_the_time_out() {
    future::block_on(async {
        let config = Config {
            connect_timeout: Duration::from_millis(200),
            ..Config::default()
        };
        let (node, mut driver) = Node::new(config).expect("valid config");
        let (_listener, _filler, addr) = unanswered();

        // Take the stream while the connect is in flight (the driver has polled it once).
        let mut connect = pin!(node.connect(addr));
        assert!(
            poll_once(&mut connect).await.is_none(),
            "waits for the driver"
        );
        assert!(poll_once(&mut driver).await.is_none());
        let peer = connect.await.expect("connect queued");
        let mut stream = node.stream(peer).expect("the peer is connecting");

        let mut buf = [0u8; 16];
        let read = common::within(
            "the stream's read",
            future::or(stream.read(&mut buf), async {
                (&mut driver).await;
                panic!("the driver stopped");
            }),
        )
        .await;
        assert_eq!(
            read.map_err(|e| e.kind()),
            Err(std::io::ErrorKind::TimedOut)
        );
        let mut write = pin!(stream.write(b"x"));
        assert!(
            matches!(poll_once(&mut write).await, Some(Err(_))),
            "writing fails at once too"
        );
    });
}

/// With `half_close`, a stream taken after the remote's EOF reads that EOF at once (the peer
/// stays open for writing) instead of waiting for the whole connection to close.
#[test]
fn a_stream_taken_after_the_remote_half_closed_reads_eof() {
    async_io::block_on(async {
        let config = Config {
            half_close: true,
            ..Config::default()
        };
        let (node, driver) = Node::new(config).expect("valid config");
        let driver = smol::spawn(driver);
        let addr = node
            .listen("127.0.0.1:0".parse().expect("addr"))
            .await
            .expect("listen");
        let remote = TcpStream::connect(addr).expect("connect");
        remote
            .set_read_timeout(Some(common::PATIENCE))
            .expect("timeout");
        let peer = common::inbound(&node).await;
        remote
            .shutdown(std::net::Shutdown::Write)
            .expect("half-close");
        common::expect(&node, "ReadClosed", |e| {
            matches!(e, Event::ReadClosed { .. })
        })
        .await;

        let mut stream = node.stream(peer).expect("the peer is open for writing");
        let mut buf = [0u8; 16];
        let read = common::within("the stream's read", stream.read(&mut buf)).await;
        assert_eq!(read.map_err(|e| e.kind()), Ok(0));
        common::within("writing on", stream.write_all(b"still open"))
            .await
            .expect("write");
        common::within("flush", stream.flush())
            .await
            .expect("flush");
        let mut got = [0u8; 10];
        std::io::Read::read_exact(&mut &remote, &mut got).expect("the remote reads");
        assert_eq!(&got, b"still open");
        node.shutdown().await;
        driver.await;
    });
}

/// `flush` and `close` promise that the socket took every byte written: when the peer ends with
/// bytes still unwritten (here its connect times out), they fail instead of reporting success.
#[test]
fn flush_and_close_fail_when_the_peer_ends_with_bytes_unwritten() {
    async_io::block_on(async {
        let config = Config {
            connect_timeout: Duration::from_millis(200),
            ..Config::default()
        };
        let Connecting {
            node,
            driver,
            mut stream,
            held: _held,
            ..
        } = connecting_stream(config).await;
        common::within("write", stream.write_all(b"never leaves"))
            .await
            .expect("queued while connecting");

        let flushed = common::within("flush", stream.flush()).await;
        assert_eq!(
            flushed.map_err(|e| e.kind()),
            Err(std::io::ErrorKind::TimedOut)
        );
        let closed = common::within("close", stream.close()).await;
        assert!(closed.is_err(), "{closed:?}");
        let failed = common::expect(&node, "ConnectFailed", |e| {
            matches!(e, Event::ConnectFailed { .. })
        })
        .await;
        assert!(
            matches!(failed, Event::ConnectFailed { unsent: 12, .. }),
            "{failed:?}"
        );
        node.shutdown().await;
        driver.await;
    });
}

/// In a framed mode each stream write is one message: a write is taken whole (any message up to
/// `max_frame_size` fits an empty queue, as with `send`) or waits for room, and is never cut into
/// several messages by the queue's high-water mark.
#[test]
fn a_framed_stream_write_is_one_message_whatever_the_queue_holds() {
    async_io::block_on(async {
        let config = Config {
            framing: openp2p_async_std::Framing::LengthPrefixed,
            send_queue_high_water: 4096,
            send_queue_low_water: 1024,
            ..Config::default()
        };
        // The connect stays in flight, so everything written stays queued.
        let Connecting {
            node,
            driver,
            peer,
            mut stream,
            held: _held,
        } = connecting_stream(config).await;

        let big = vec![7u8; 10_000];
        let mut write = pin!(stream.write(&big));
        assert_eq!(
            poll_once(&mut write).await.map(|r| r.map_err(|e| e.kind())),
            Some(Ok(10_000)),
            "a message above the high-water mark goes whole into an empty queue"
        );
        assert_eq!(node.queued(peer), Some(10_004));
        let mut write = pin!(stream.write(&big[..3_000]));
        assert!(
            poll_once(&mut write).await.is_none(),
            "no room for the whole message: the write waits"
        );
        assert_eq!(node.queued(peer), Some(10_004), "nothing of it was queued");
        node.shutdown().await;
        driver.await;
    });
}

/// Misuse is answered, never a panic: stale ids, a second stream of one peer, and every call on a
/// stopped node.
async fn stale_ids_double_takes_and_calls_after_shutdown_are_answered(start: fn(Config) -> Node) {
    use openp2p_async_std::{BindError, ConnectError, Limits, StreamError, UnknownId};
    let server = start(Config::default());
    let client = start(Config::default());
    let addr = server
        .listen("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("listen");
    let peer = client.connect(addr).await.expect("connect");
    let inbound = common::inbound(&server).await;
    common::expect(&client, "Connected", |e| {
        matches!(e, Event::Connected { .. })
    })
    .await;

    let stream = client.stream(peer).expect("first take");
    assert!(matches!(
        client.stream(peer),
        Err(StreamError::AlreadyTaken)
    ));
    drop(stream);
    let _again = client.stream(peer).expect("taken again once dropped");

    // The server's id for the connection is meaningless to the client: a stale id there.
    client.abort(peer).await.expect("abort");
    common::expect(&client, "Disconnected", |e| {
        matches!(e, Event::Disconnected { .. })
    })
    .await;
    for stale in [peer, inbound] {
        assert_eq!(
            client.send(stale, "x".into()).await,
            Err(SendError::UnknownPeer)
        );
        assert_eq!(client.disconnect(stale).await, Err(UnknownId));
        assert_eq!(client.abort(stale).await, Err(UnknownId));
        assert_eq!(
            client.set_limits(stale, Limits::UNLIMITED).await,
            Err(UnknownId)
        );
        assert!(client.stats(stale).await.is_none());
        assert!(client.peer_info(stale).await.is_none());
        assert!(client.queued(stale).is_none());
        assert!(matches!(
            client.stream(stale),
            Err(StreamError::UnknownPeer)
        ));
        assert_eq!(client.send_many(&[stale, stale], "x".into()).await.len(), 2);
    }

    client.shutdown().await;
    client.shutdown().await;
    assert!(matches!(
        client.listen("127.0.0.1:0".parse().expect("addr")).await,
        Err(BindError::ShuttingDown)
    ));
    assert!(matches!(
        client.connect(addr).await,
        Err(ConnectError::ShuttingDown)
    ));
    assert!(client.global_stats().await.is_none());
    client.set_global_limits(Limits::UNLIMITED).await;
    let mut rest = Vec::new();
    while let Some(event) = client.next_event().await {
        rest.push(event);
    }
    assert_eq!(rest.last(), Some(&Event::ShutdownComplete), "{rest:?}");
    assert!(client.try_next_event().is_none());
    server.shutdown().await;
}

on_both_runtimes!(stale_ids_double_takes_and_calls_after_shutdown_are_answered);
