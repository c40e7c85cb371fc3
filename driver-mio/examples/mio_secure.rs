//! Two secure nodes in one process: one listens, the other dials it pinned to the listener's key
//! and says hello; the listener prints the message and the key the dialer proved.
//!
//! `cargo run -p openp2p-mio --example mio_secure`

use openp2p_mio::{Config, Event, Framing, Identity, Node, SecureConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let secure = |me| Config {
        framing: Framing::LengthPrefixed,
        secure: Some(SecureConfig::new(me)),
        ..Config::default()
    };
    // `getrandom::Error` is not a `std::error::Error`: keep its message.
    let identity = || Identity::generate().map_err(|e| format!("OS RNG: {e}"));
    let listener_identity = identity()?;
    let listener_key = listener_identity.public();
    let (listener, mut events) = Node::start(secure(listener_identity))?;
    let addr = listener.listen("127.0.0.1:0".parse()?)?;

    let (dialer, _dialer_events) = Node::start(secure(identity()?))?;
    let peer = dialer.connect_pinned(addr, listener_key)?;
    dialer.send(peer, "hello")?;

    let mut from = None;
    loop {
        match events.recv_timeout(std::time::Duration::from_secs(10))? {
            Event::Connected { key, .. } => from = key,
            Event::HandshakeFailed { reason, .. } => return Err(reason.into()),
            Event::Received { data, .. } => {
                let from = from.map(|key| key.to_string()).unwrap_or_default();
                println!("{:?} from {from}", String::from_utf8_lossy(&data));
                break;
            }
            _ => {}
        }
    }
    dialer.shutdown();
    listener.shutdown();
    Ok(())
}
