//! rust-libp2p (TCP + Noise + Yamux) on the raw Tokio baseline's runtime (2 workers): the
//! secure workload's anchor, an established P2P stack doing the same bulk transfer as
//! openp2p-tokio's secure mode. Built only with the `libp2p-anchor` feature.
//!
//! Two swarms in this process, each with a `libp2p-stream` behaviour (the plainest way to a raw
//! substream) and libp2p's defaults otherwise (`TCP_NODELAY` on; libp2p-noise's only suite,
//! `Noise_XX_25519_ChaChaPoly_SHA256`; Yamux's default windows). The dialer opens one stream
//! and writes into it; the listener reads it.

use super::{BulkClock, READ_BUF, WRITE_CHUNK};
use crate::cpu::Span;
use crate::subject::{BenchResult, BulkSize};
use futures_lite::io::{AsyncReadExt, AsyncWriteExt};
use futures_lite::StreamExt;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::SwarmEvent;
use libp2p::{noise, tcp, yamux, Multiaddr, StreamProtocol, Swarm, SwarmBuilder};
use std::net::Ipv4Addr;
use std::time::Duration;

/// The subject's name in tables and progress lines.
pub const SUBJECT: &str = "rust-libp2p tcp+noise+yamux";

/// The libp2p release measured: the requirement in `bench/Cargo.toml` (keep the two in step).
pub const VERSION: &str = "0.57";

/// The protocol the bulk stream is negotiated under.
const BULK: StreamProtocol = StreamProtocol::new("/openp2p-bench/bulk/1");

/// A swarm with a fresh Ed25519 identity, TCP + Noise + Yamux, and the stream behaviour. Must
/// be called inside the runtime (the swarm spawns its connection tasks on it).
fn swarm() -> BenchResult<Swarm<libp2p_stream::Behaviour>> {
    Ok(SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )?
        .with_behaviour(|_| libp2p_stream::Behaviour::new())?
        // The connection carries one stream; keep it open between the stream's phases.
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build())
}

/// Polls a swarm (its listeners, dials and connection events) until it is dropped.
async fn drive(mut swarm: Swarm<libp2p_stream::Behaviour>) {
    while swarm.next().await.is_some() {}
}

/// A dialer swarm writing `size.total()` bytes, 1 MiB at a time, into one stream to a listener
/// swarm, whose reader task (128 KiB reads) times the last `size.timed` bytes.
pub fn bulk(size: BulkSize) -> BenchResult<Span> {
    let rt = super::raw_tokio::runtime()?;
    let span = rt.block_on(async {
        let mut listener = swarm()?;
        let mut incoming = listener.behaviour().new_control().accept(BULK)?;
        listener.listen_on(
            Multiaddr::empty()
                .with(Protocol::Ip4(Ipv4Addr::LOCALHOST))
                .with(Protocol::Tcp(0)),
        )?;
        let addr = loop {
            match listener.next().await {
                Some(SwarmEvent::NewListenAddr { address, .. }) => break address,
                Some(SwarmEvent::ListenerError { error, .. }) => return Err(error.into()),
                Some(_) => {}
                None => return Err("rust-libp2p bulk: listener swarm stopped".into()),
            }
        };
        let listener_id = *listener.local_peer_id();
        let listening = tokio::spawn(drive(listener));

        let mut dialer = swarm()?;
        let mut control = dialer.behaviour().new_control();
        dialer.dial(addr.with(Protocol::P2p(listener_id)))?;
        loop {
            match dialer.next().await {
                Some(SwarmEvent::ConnectionEstablished { .. }) => break,
                Some(SwarmEvent::OutgoingConnectionError { error, .. }) => return Err(error.into()),
                Some(_) => {}
                None => return Err("rust-libp2p bulk: dialer swarm stopped".into()),
            }
        }
        let dialing = tokio::spawn(drive(dialer));

        let total = size.total();
        let receiving = tokio::spawn(async move {
            let (_, mut stream) = incoming
                .next()
                .await
                .ok_or("rust-libp2p bulk: no inbound stream")?;
            let mut buf = vec![0u8; READ_BUF];
            let mut clock = BulkClock::new(size);
            while !clock.done() {
                match stream.read(&mut buf).await? {
                    0 => return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into()),
                    n => clock.add(n),
                };
            }
            BenchResult::Ok(clock.elapsed())
        });
        let sending = tokio::spawn(async move {
            let mut stream = control.open_stream(listener_id, BULK).await?;
            let data = vec![0x5au8; WRITE_CHUNK];
            let mut sent = 0u64;
            while sent < total {
                let n = (total - sent).min(WRITE_CHUNK as u64) as usize;
                stream.write_all(&data[..n]).await?;
                sent += n as u64;
            }
            stream.close().await?;
            BenchResult::Ok(())
        });
        let span = receiving.await??;
        sending.await??;
        listening.abort();
        dialing.abort();
        BenchResult::Ok(span)
    })?;
    rt.shutdown_timeout(Duration::from_secs(2));
    Ok(span)
}
