//! `openp2p echo`: every inbound peer's bytes are written back to it through its stream.

use crate::error::{Context, Failure, Result};
use openp2p_tokio::{Config, Direction, Event, Node};
use std::collections::HashMap;
use std::net::SocketAddr;

/// Listens on `listen` and echoes until interrupted.
pub async fn run(listen: SocketAddr) -> Result<()> {
    let node = Node::start(Config::default()).context(|| "cannot start the node".into())?;
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
                key: _,
            } => {
                println!("{addr} connected");
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
            _ => {}
        }
    }
    Err(Failure::new("the node stopped"))
}
