//! An echo server and a client in one process, over loopback, with length-prefixed framing.
//!
//! The server's node runs its driver on a thread of its own (`Node::start`); the client's
//! driver is a task on smol's executor (`Node::new` + `smol::spawn`). Under async-std, spawn it
//! with `async_std::task::spawn(driver)` instead: nothing else changes.
//!
//!     cargo run -p openp2p-async-std --example async_std_echo [-- MESSAGES]

use openp2p_async_std::{Config, Event, Framing, Node};
use std::error::Error;
use std::time::Instant;

fn main() -> Result<(), Box<dyn Error>> {
    let messages: usize = match std::env::args().nth(1) {
        Some(n) => n.parse()?,
        None => 1_000,
    };
    smol::block_on(async {
        let config = Config {
            framing: Framing::LengthPrefixed,
            ..Config::default()
        };

        // The server: echo every message back to its sender.
        let server = Node::start(config.clone())?;
        let addr = server.listen("127.0.0.1:0".parse()?).await?;
        println!("echo server on {addr}");
        let echo = server.clone();
        smol::spawn(async move {
            while let Some(event) = echo.next_event().await {
                match event {
                    Event::Received { peer, data } => {
                        if let Err(e) = echo.send(peer, data).await {
                            eprintln!("server: cannot echo to {peer}: {e}");
                        }
                    }
                    Event::Connected { peer, addr, .. } => println!("server: {peer} from {addr}"),
                    Event::Disconnected { peer, reason, .. } => {
                        println!("server: {peer} left ({reason})")
                    }
                    _ => {}
                }
            }
        })
        .detach();

        // The client: one message at a time, each checked against its echo.
        let (client, driver) = Node::new(config)?;
        smol::spawn(driver).detach();
        let peer = client.connect(addr).await?;
        let started = Instant::now();
        for i in 0..messages {
            let message = format!("message {i}");
            client.send(peer, message.clone().into()).await?;
            loop {
                match client.next_event().await {
                    Some(Event::Received { data, .. }) => {
                        assert_eq!(data, message.as_bytes(), "the echo matches");
                        break;
                    }
                    Some(Event::Disconnected { reason, .. }) => {
                        return Err(format!("disconnected: {reason}").into())
                    }
                    Some(_) => {}
                    None => return Err("the client node stopped".into()),
                }
            }
        }
        let elapsed = started.elapsed();
        println!(
            "{messages} round trips in {elapsed:.2?} ({:.0} per second)",
            messages as f64 / elapsed.as_secs_f64()
        );
        client.disconnect(peer).await?;
        client.shutdown().await;
        server.shutdown().await;
        Ok(())
    })
}
