//! A rate-limited file send: one node serves a file to every peer that connects, at most
//! `RATE` bytes per second per peer, through the peer's stream; a second node downloads it.
//!
//! `cargo run -p openp2p-tokio --example file_send -- [path] [bytes_per_second]`
//! (without a path it sends 1 MiB of generated data at 256 KiB/s, which takes about 4 s).

use openp2p_tokio::{Config, Direction, Event, Limits, Node, Rate};
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let contents = match args.next() {
        Some(path) => tokio::fs::read(path).await?,
        None => (0..1 << 20).map(|i| (i % 251) as u8).collect(),
    };
    let rate: u64 = args
        .next()
        .map(|r| r.parse())
        .transpose()?
        .unwrap_or(256 * 1024);

    // The sender: every new peer gets the file through its stream, at the per-peer rate.
    let sender = Node::start(Config {
        peer_limits: Limits::upload(Rate::per_second(rate)),
        ..Config::default()
    })?;
    let addr = sender.listen("127.0.0.1:0".parse()?).await?;
    let serving = sender.clone();
    let file = contents.clone();
    tokio::spawn(async move {
        while let Some(event) = serving.next_event().await {
            if let Event::Connected {
                peer,
                direction: Direction::Inbound,
                ..
            } = event
            {
                let Ok(mut stream) = serving.stream(peer) else {
                    continue;
                };
                let file = file.clone();
                tokio::spawn(async move {
                    stream.write_all(&file).await?;
                    stream.shutdown().await // flushes, then closes gracefully
                });
            }
        }
    });

    // The receiver: read the peer's stream to its end.
    let receiver = Node::start(Config::default())?;
    let peer = receiver.connect(addr).await?;
    let mut stream = receiver.stream(peer)?;
    let start = Instant::now();
    let mut received = Vec::with_capacity(contents.len());
    stream.read_to_end(&mut received).await?;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "received {} bytes in {secs:.2} s ({:.0} B/s, limit {rate} B/s), intact: {}",
        received.len(),
        received.len() as f64 / secs,
        received == contents
    );
    receiver.shutdown().await;
    sender.shutdown().await;
    Ok(())
}
