//! The cost of secure connection set-up on the engine alone (no sockets): one engine dials
//! another over and over (connect, accept, the XX handshake, one 64-byte message, abort), in
//! plaintext and secure mode. Prints microseconds per connection, both sides together.
//!
//! `cargo bench -p openp2p-core --bench handshake`

#[path = "../tests/support/hot_path.rs"]
mod hot_path;

use hot_path::Pair;
use openp2p_core::{Config, Engine, Event, Identity, SecureConfig};
use std::net::SocketAddr;
use std::time::Instant;

fn config(secure: bool, n: u8) -> Config {
    Config {
        pool_segments: 8,
        secure: secure.then(|| SecureConfig::new(Identity::from_entropy([n; 32]))),
        ..Config::default()
    }
}

/// Microseconds per connection over `n` connections.
fn churn(secure: bool, n: u32) -> f64 {
    let now = Instant::now();
    let mut client = Engine::with_entropy(config(secure, 1), [1; 32]).expect("config");
    let mut server = Engine::with_entropy(config(secure, 2), [2; 32]).expect("config");
    let addr: SocketAddr = "127.0.0.1:4000".parse().expect("addr");
    let listener = server.listen(addr).expect("listen");
    server.handle_listening(listener, addr, now);
    let (mut ab, mut ba) = (Vec::new(), Vec::new());
    let start = Instant::now();
    for _ in 0..n {
        let c = client.connect(addr, now).expect("connect");
        client.handle_connected(c, now);
        let s = server.handle_accepted(listener, addr, now).expect("accept");
        client
            .send(
                c,
                "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef".into(),
                now,
            )
            .expect("send");
        let mut received = false;
        for _ in 0..4 {
            Pair::written_into(&mut client, c, now, &mut ab);
            Pair::deliver(&mut server, s, now, &ab);
            Pair::written_into(&mut server, s, now, &mut ba);
            Pair::deliver(&mut client, c, now, &ba);
            while client.poll_event().is_some() {}
            while let Some(e) = server.poll_event() {
                received |= matches!(e, Event::Received { .. });
            }
            if received {
                break;
            }
        }
        assert!(received, "the message crossed");
        let _ = client.abort(c, now);
        let _ = server.abort(s, now);
        while client.poll_io().is_some() {}
        while server.poll_io().is_some() {}
        while client.poll_event().is_some() {}
        while server.poll_event().is_some() {}
    }
    start.elapsed().as_secs_f64() * 1e6 / f64::from(n)
}

fn main() {
    churn(true, 100);
    let mut plain = Vec::new();
    let mut secure = Vec::new();
    for _ in 0..5 {
        plain.push(churn(false, 2_000));
        secure.push(churn(true, 1_000));
    }
    plain.sort_by(f64::total_cmp);
    secure.sort_by(f64::total_cmp);
    println!(
        "µs per connection, both sides (connect, accept, handshake, 64 B, abort): plaintext {:.1}, secure {:.1} (median of 5)",
        plain[2], secure[2]
    );
    println!("secure runs: {secure:.1?}");
}
