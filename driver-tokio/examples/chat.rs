//! A LAN chat: nodes find each other by UDP broadcast and connect by themselves; every line typed
//! goes to every connected peer. The first message on a connection is the sender's name, the
//! others are lines (the protocol of `openp2p chat`, which it talks to).
//!
//! ```text
//! cargo run -p openp2p-tokio --example chat -- alice        # on one machine of the LAN
//! cargo run -p openp2p-tokio --example chat -- bob          # on another (or the same) one
//! cargo run -p openp2p-tokio --example chat -- carol 127.255.255.255   # loopback-only host
//! ```
//!
//! The optional second argument is the broadcast address (default `255.255.255.255`). Nothing
//! in a beacon names an address: a node is reached at the address its beacon came from.

use openp2p_tokio::discovery::{DiscoveryConfig, DiscoveryOptions, NodeKey};
use openp2p_tokio::{Config, Event, Framing, Node, PeerId};
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_else(|| "anonymous".into());
    let broadcast = args
        .next()
        .as_deref()
        .unwrap_or("255.255.255.255")
        .parse()?;

    // Lines are messages; a chat may stay silent for hours, so no idle timeout.
    let config = Config {
        framing: Framing::LengthPrefixed,
        idle_timeout: None,
        ..Config::default()
    };
    let node = Node::start(config)?;
    let addr = node.listen("0.0.0.0:0".parse()?).await?;
    node.enable_discovery(DiscoveryOptions {
        broadcast,
        config: DiscoveryConfig {
            auto_connect: true,
            ..DiscoveryConfig::default()
        },
        ..DiscoveryOptions::new(random_key(), &name, addr.port())
    })?;
    println!("{name} on {addr}: type lines to send them, Ctrl-D to leave");

    // Connected peers: their address, and their name once they have said it.
    let mut peers: HashMap<PeerId, (SocketAddr, Option<String>)> = HashMap::new();
    let mut stdin = BufReader::new(tokio::io::stdin()).split(b'\n');
    loop {
        tokio::select! {
            line = stdin.next_segment() => {
                let Some(line) = line? else { break };
                let everyone: Vec<PeerId> = peers.keys().copied().collect();
                for (_, error) in node.send_many(&everyone, line.into()).await {
                    eprintln!("not sent: {error}");
                }
            }
            Some(event) = node.next_event() => match event {
                Event::Connected { peer, addr, .. } => {
                    peers.insert(peer, (addr, None));
                    let _ = node.send(peer, name.clone().into()).await;
                }
                Event::Received { peer, data } => {
                    let text = String::from_utf8_lossy(&data);
                    match peers.get_mut(&peer) {
                        Some((addr, who @ None)) => {
                            println!("* {text} joined from {addr}");
                            *who = Some(text.into_owned());
                        }
                        Some((_, Some(who))) => println!("<{who}> {}", text.trim_end()),
                        None => {}
                    }
                }
                Event::Disconnected { peer, .. } => {
                    if let Some((addr, Some(who))) = peers.remove(&peer) {
                        println!("* {who} left ({addr})");
                    }
                }
                _ => {}
            },
        }
    }
    node.shutdown().await; // delivers what was queued, then closes
    Ok(())
}

/// A random node identity, from the standard library's randomly keyed hasher.
fn random_key() -> NodeKey {
    let random = || {
        std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish()
    };
    let mut key = [0; 16];
    key[..8].copy_from_slice(&random().to_le_bytes());
    key[8..].copy_from_slice(&random().to_le_bytes());
    NodeKey(key)
}
