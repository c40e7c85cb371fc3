//! The README echo service: every peer's stream is read and written back to it.
//!
//! `cargo run -p openp2p-tokio --example tokio_echo [-- 127.0.0.1:9988]`, then e.g. `nc 127.0.0.1 9988`.

use openp2p_tokio::{Config, Direction, Event, Node};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9988".into())
        .parse()?;
    let node = Node::start(Config::default())?;
    println!("echo listening on {}", node.listen(addr).await?);
    while let Some(event) = node.next_event().await {
        match event {
            Event::Connected {
                peer,
                addr,
                direction: Direction::Inbound,
                key: _,
            } => {
                println!("{peer} connected from {addr}");
                let (mut reader, mut writer) = tokio::io::split(node.stream(peer)?);
                tokio::spawn(async move { tokio::io::copy(&mut reader, &mut writer).await });
            }
            Event::Disconnected { peer, reason, .. } => println!("{peer} left: {reason}"),
            _ => {}
        }
    }
    Ok(())
}
