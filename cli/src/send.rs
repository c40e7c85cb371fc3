//! `openp2p send ADDR FILE [--up RATE]`: hash the file, connect, send the header and the data
//! under the upload limit, and succeed only when the receiver confirms the checksum.

use crate::config::{describe_connect_failure, engine_rate, transfer_config};
use crate::error::{Context, Failure, Result};
use crate::identity::SecureArgs;
use crate::progress::Progress;
use crate::rate::{human_bytes, human_rate, ByteRate};
use crate::transfer::{checksum_of, FileSource, Outgoing};
use crate::wire::{check_name, Ack, Header};
use openp2p_tokio::{Allow, Event, Limits, Node, PeerId, PeerKey};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

/// Resolves `HOST:PORT` (an IP literal or a name) to its first address.
pub async fn resolve(addr: &str) -> Result<SocketAddr> {
    if let Ok(parsed) = addr.parse() {
        return Ok(parsed);
    }
    tokio::net::lookup_host(addr)
        .await
        .context(|| format!("bad address `{addr}` (expected HOST:PORT)"))?
        .next()
        .ok_or_else(|| Failure::new(format!("`{addr}` resolves to no address")))
}

/// The file's name as it will be announced.
fn announced_name(file: &Path) -> Result<String> {
    let name = file.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
        Failure::new(format!(
            "cannot send {}: not a file name in UTF-8",
            file.display()
        ))
    })?;
    check_name(name).context(|| format!("cannot send {}", file.display()))?;
    Ok(name.to_string())
}

/// Opens and hashes the file; returns the header and a fresh source positioned at its start.
async fn prepare(file: &Path) -> Result<(Header, FileSource)> {
    let name = announced_name(file)?;
    let path = file.to_path_buf();
    let unreadable =
        |e: std::io::Error| Failure::new(format!("cannot read {}: {e}", path.display()));
    let hashed = tokio::task::spawn_blocking({
        let path = path.clone();
        move || -> std::io::Result<(u64, [u8; 32])> {
            let f = std::fs::File::open(&path)?;
            let meta = f.metadata()?;
            if !meta.is_file() {
                return Err(std::io::Error::other("not a regular file"));
            }
            let size = meta.len();
            let checksum = checksum_of(&mut FileSource(f), size)?;
            Ok((size, checksum))
        }
    })
    .await
    .map_err(|e| Failure::new(format!("hashing failed: {e}")))?;
    let (size, checksum) = hashed.map_err(unreadable)?;
    let source = FileSource(std::fs::File::open(&path).map_err(unreadable)?);
    Ok((
        Header {
            name,
            size,
            checksum,
        },
        source,
    ))
}

/// Sends `file` to `addr`, which must prove `peer_key` if given.
pub async fn run(
    addr: &str,
    file: &Path,
    up: Option<ByteRate>,
    peer_key: Option<PeerKey>,
    secure: &SecureArgs,
) -> Result<()> {
    let mut config = transfer_config();
    secure.apply(&mut config, Allow::Any)?;
    let target = resolve(addr).await?;
    let (header, source) = prepare(file).await?;
    let mut outgoing = Outgoing::new(&header, Box::new(source))?;
    if let Some(rate) = up {
        config.peer_limits = Limits::upload(engine_rate(rate));
    }
    let node = Node::start(config).context(|| "cannot start the node".into())?;
    let peer = match peer_key {
        Some(key) => node.connect_pinned(target, key).await,
        None => node.connect(target).await,
    }
    .context(|| format!("cannot connect to {target}"))?;
    let result = transfer(&node, peer, target, &header, &mut outgoing, up).await;
    if result.is_err() {
        let _ = node.abort(peer).await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), node.shutdown()).await;
    result
}

async fn transfer(
    node: &Node,
    peer: PeerId,
    target: SocketAddr,
    header: &Header,
    outgoing: &mut Outgoing,
    up: Option<ByteRate>,
) -> Result<()> {
    let progress = Progress::new();
    let mut bar = None;
    let mut started = Instant::now();
    while let Some(event) = node.next_event().await {
        match event {
            Event::Connected { peer: p, key, .. } if p == peer => {
                let limit = up.map_or(String::new(), |r| format!(" at most {r}"));
                let proven = key.map_or(String::new(), |k| format!(" (key {k})"));
                progress.println(&format!(
                    "connected to {target}{proven}; sending {} ({}){limit}",
                    header.name,
                    human_bytes(header.size)
                ));
                bar = Some(progress.add(&header.name, header.size));
                started = Instant::now();
                outgoing.pump(node, peer)?;
            }
            Event::ConnectFailed {
                peer: p, reason, ..
            } if p == peer => {
                return Err(Failure::new(format!(
                    "cannot connect to {target}: {}",
                    describe_connect_failure(reason)
                )));
            }
            Event::Writable { peer: p } if p == peer => {
                // On `PeerGone` its Disconnected event follows.
                outgoing.pump(node, peer)?;
            }
            Event::Sent { peer: p, bytes } if p == peer => {
                outgoing.on_sent(bytes);
                if let Some(bar) = &bar {
                    bar.set_position(outgoing.payload_sent());
                }
            }
            Event::Received { peer: p, data } if p == peer => {
                let ack =
                    Ack::decode(&data).context(|| format!("{target} answered with garbage"))?;
                if let Some(bar) = &bar {
                    bar.set_position(outgoing.payload_sent());
                }
                match ack {
                    Ack::Verified if outgoing.all_sent() => {
                        if let Some(bar) = &bar {
                            bar.finish("verified");
                        }
                        drop(progress);
                        let secs = started.elapsed().as_secs_f64();
                        println!(
                            "sent {} ({} bytes) in {secs:.2} s ({}), checksum verified by the receiver",
                            header.name,
                            header.size,
                            human_rate(header.size as f64 / secs.max(1e-6))
                        );
                        let _ = node.disconnect(peer).await;
                        return Ok(());
                    }
                    Ack::Verified => {
                        return Err(Failure::new(format!(
                            "{target} confirmed the file before it was sent"
                        )))
                    }
                    Ack::Mismatch => {
                        return Err(Failure::new(format!(
                            "{target} reports a checksum mismatch; the file was not kept"
                        )))
                    }
                    Ack::Refused => {
                        return Err(Failure::new(format!("{target} could not store the file")))
                    }
                }
            }
            Event::Disconnected {
                peer: p, reason, ..
            } if p == peer => {
                return Err(Failure::new(format!(
                    "{target} closed the connection after {} of {} bytes ({reason}) without confirming the file",
                    outgoing.payload_sent(),
                    header.size
                )));
            }
            _ => {}
        }
    }
    Err(Failure::new("the node stopped unexpectedly"))
}
