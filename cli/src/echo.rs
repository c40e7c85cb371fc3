//! `openp2p echo`: every inbound peer's bytes are written back to it through its stream.

use crate::error::{Context, Failure, Result};
use crate::identity::{allow_only, SecureArgs};
use openp2p_tokio::{Config, Direction, Event, Node, PeerKey};
use std::collections::HashMap;
use std::net::SocketAddr;

/// Listens on `listen` and echoes until interrupted, to the peers whose keys `allow` lists (any
/// with none listed).
pub async fn run(listen: SocketAddr, allow: &[PeerKey], secure: &SecureArgs) -> Result<()> {
    let mut config = Config::default();
    secure.apply(&mut config, allow_only(allow))?;
    let node = Node::start(config).context(|| "cannot start the node".into())?;
    let bound = node.listen(listen).await.map_err(|e| {
        Failure::new(format!(
            "cannot listen on {listen}: {}",
            crate::config::describe_bind_error(e)
        ))
    })?;
    println!("echo listening on {bound}");
    let mut peers = HashMap::new();
    while let Some(event) = node.next_event().await {
        match event {
            Event::Connected {
                peer,
                addr,
                direction: Direction::Inbound,
                key,
            } => {
                match key {
                    Some(key) => println!("{addr} connected (key {key})"),
                    None => println!("{addr} connected"),
                }
                peers.insert(peer, addr);
                let Ok(stream) = node.stream(peer) else {
                    continue;
                };
                let (mut reader, mut writer) = tokio::io::split(stream);
                tokio::spawn(async move { tokio::io::copy(&mut reader, &mut writer).await });
            }
            Event::Disconnected { peer, reason, .. } => {
                if let Some(addr) = peers.remove(&peer) {
                    println!("{addr} left: {reason}");
                }
            }
            Event::HandshakeFailed { addr, reason } => println!("{addr} refused: {reason}"),
            _ => {}
        }
    }
    Err(Failure::new("the node stopped"))
}
