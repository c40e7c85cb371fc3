//! An application that takes events slower than the socket delivers them stops the reads: the
//! data received but not yet taken stays bounded, and all of it still arrives, in order.

use openp2p_mio::{Bytes, Config, Direction, Event, Node, SendError, SendWaitError};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);
/// Data the IO thread may hand over past the pause mark: one pass of reads.
const SLACK: u64 = 8 << 20;

fn pattern(i: usize) -> u8 {
    (i % 251) as u8
}

#[test]
fn a_slow_event_consumer_bounds_what_is_read_ahead() {
    let config = Config {
        sent_events: false,
        ..Config::default()
    };
    let (server, mut server_events) = Node::start(config.clone()).unwrap();
    let addr = server.listen("127.0.0.1:0".parse().unwrap()).unwrap();
    let (client, mut client_events) = Node::start(config).unwrap();
    let peer = client.connect_wait(addr).unwrap();
    let total = 48usize << 20;
    let data = Bytes::from((0..total).map(pattern).collect::<Vec<u8>>());
    let sender = {
        let data = data.clone();
        std::thread::spawn(move || {
            let mut at = 0;
            while at < total {
                match client.send_wait(peer, data.slice(at..at + (1 << 20))) {
                    Ok(()) => at += 1 << 20,
                    Err(SendWaitError::Rejected(SendError::QueueFull { .. })) => {
                        // Wait for the queue to drain.
                        loop {
                            match client_events.recv_timeout(WAIT) {
                                Ok(Event::Writable { .. }) => break,
                                Ok(_) => {}
                                Err(e) => panic!("no Writable: {e}"),
                            }
                        }
                    }
                    Err(e) => panic!("send: {e}"),
                }
            }
            client
        })
    };
    let mut taken = 0usize;
    let mut worst = 0u64;
    while taken < total {
        match server_events
            .recv_timeout(WAIT)
            .expect("data keeps arriving")
        {
            Event::Connected { direction, .. } => assert_eq!(direction, Direction::Inbound),
            Event::Received { data: got, .. } => {
                assert!(got
                    .iter()
                    .enumerate()
                    .all(|(i, b)| *b == pattern(taken + i)));
                taken += got.len();
                let read = server.global_stats().unwrap().received.bytes;
                worst = worst.max(read - taken as u64);
            }
            _ => {}
        }
    }
    let client = sender.join().unwrap();
    assert!(
        worst <= (1 << 20) + SLACK,
        "read ahead of the application by {worst} bytes"
    );
    println!("read ahead at most {worst} bytes");
    client.shutdown();
    server.shutdown();
}
