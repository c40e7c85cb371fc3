//! The Echo service: listen on a port and send back whatever each peer sends.
//!
//! ```text
//! cargo run -p openp2p-mio --example mio_echo            # port 9988
//! cargo run -p openp2p-mio --example mio_echo -- 7000    # another port
//! nc 127.0.0.1 9988                                  # type a line: it comes back
//! ```

use openp2p_mio::{Config, Event, Node};
use std::net::{Ipv6Addr, SocketAddr};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = match std::env::args().nth(1) {
        Some(arg) => arg.parse().map_err(|e| format!("port `{arg}`: {e}"))?,
        None => 9988,
    };
    // Half-close: a client that sends, then shuts down its side (`nc -N`, a pipe into `nc`) still
    // gets every echo; the peer is closed once the echoes are queued.
    let config = Config {
        half_close: true,
        sent_events: false,
        ..Config::default()
    };
    let (node, mut events) = Node::start(config)?;
    // `[::]` accepts IPv6 and, on dual-stack systems, IPv4 too; fall back to IPv4 only.
    let addr = match node.listen(SocketAddr::from((Ipv6Addr::UNSPECIFIED, port))) {
        Ok(addr) => addr,
        Err(_) => node.listen(SocketAddr::from(([0, 0, 0, 0], port)))?,
    };
    println!("echo: listening on {addr}");
    while let Ok(event) = events.recv() {
        match event {
            Event::Connected { peer, addr, .. } => println!("{peer} connected from {addr}"),
            Event::Received { peer, data } => node.send(peer, data)?,
            // Everything it sent was echoed (events of a peer arrive in order): flush and close.
            Event::ReadClosed { peer } => node.disconnect(peer)?,
            Event::Disconnected { peer, reason, .. } => println!("{peer} left: {reason}"),
            Event::Refused { addr, reason, .. } => println!("refused {addr}: {reason}"),
            _ => {}
        }
        // A refused echo (the peer does not read and its queue is full): drop that peer.
        while let Some(failure) = events.send_failure() {
            println!("{}: {}; disconnecting", failure.peer, failure.error);
            node.abort(failure.peer)?;
        }
    }
    Ok(())
}
