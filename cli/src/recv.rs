//! `openp2p recv --listen ADDR [--down RATE] [-o DIR]`: accept one sender, write its file to
//! `NAME.part`, fsync, verify the checksum, then rename to `NAME` and confirm. On any failure the
//! `.part` file is deleted, so a partial file never sits under the final name.

use crate::config::{engine_rate, transfer_config};
use crate::error::{Context, Failure, Result};
use crate::identity::{allow_only, SecureArgs};
use crate::progress::{Bar, Progress};
use crate::rate::{human_bytes, human_rate, ByteRate};
use crate::transfer::{Incoming, Step};
use crate::wire::{Ack, Header};
use bytes::Bytes;
use openp2p_tokio::{Direction, DisconnectReason, Event, Limits, Node, PeerId, PeerKey};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A file being received: `NAME.part` until [`commit`](Self::commit) renames it; removed when
/// dropped uncommitted.
#[derive(Debug)]
struct PartFile {
    part: PathBuf,
    target: PathBuf,
    file: Option<File>,
}

impl PartFile {
    /// Creates `dir/NAME.part` (the name was checked by the header codec: no separators).
    fn create(dir: &Path, name: &str) -> io::Result<PartFile> {
        let part = dir.join(format!("{name}.part"));
        match std::fs::remove_file(&part) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        // `create_new` refuses to follow a symlink planted under the .part name.
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&part)?;
        Ok(PartFile {
            part,
            target: dir.join(name),
            file: Some(file),
        })
    }

    fn write(&mut self, data: &[u8]) -> io::Result<()> {
        match &mut self.file {
            Some(file) => file.write_all(data),
            None => Err(io::Error::other("file already closed")),
        }
    }

    /// Flushes the data to disk and closes the file.
    fn sync(&mut self) -> io::Result<()> {
        match self.file.take() {
            Some(file) => file.sync_all(),
            None => Ok(()),
        }
    }

    /// Renames the synced file to its final name.
    fn commit(mut self) -> io::Result<PathBuf> {
        self.sync()?;
        std::fs::rename(&self.part, &self.target)?;
        if let Some(dir) = self.target.parent() {
            // Make the rename durable where the platform allows opening a directory.
            if let Ok(d) = File::open(if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            }) {
                let _ = d.sync_all();
            }
        }
        self.part = PathBuf::new();
        Ok(self.target.clone())
    }
}

impl Drop for PartFile {
    fn drop(&mut self) {
        self.file.take();
        if !self.part.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.part);
        }
    }
}

/// The one sender being served.
struct Session {
    peer: PeerId,
    addr: SocketAddr,
    incoming: Incoming,
    part: Option<PartFile>,
    bar: Option<Bar>,
    started: Instant,
}

/// Receives one file into `out_dir`, from a sender whose key `allow` lists (any with none listed).
pub async fn run(
    listen: SocketAddr,
    down: Option<ByteRate>,
    out_dir: &Path,
    allow: &[PeerKey],
    secure: &SecureArgs,
) -> Result<()> {
    let meta =
        std::fs::metadata(out_dir).context(|| format!("output directory {}", out_dir.display()))?;
    if !meta.is_dir() {
        return Err(Failure::new(format!(
            "output directory {}: not a directory",
            out_dir.display()
        )));
    }
    let mut config = transfer_config();
    secure.apply(&mut config, allow_only(allow))?;
    if let Some(rate) = down {
        config.peer_limits = Limits::download(engine_rate(rate));
    }
    let node = Node::start(config).context(|| "cannot start the node".into())?;
    let bound = node.listen(listen).await.map_err(|e| {
        Failure::new(format!(
            "cannot listen on {listen}: {}",
            crate::config::describe_bind_error(e)
        ))
    })?;
    println!("listening on {bound}");
    let mut session = None;
    let result = serve(&node, &mut session, out_dir).await;
    if result.is_err() {
        if let Some(s) = &session {
            let _ = node.abort(s.peer).await;
        }
    }
    drop(session); // removes an uncommitted .part file
    let _ = tokio::time::timeout(Duration::from_secs(5), node.shutdown()).await;
    result
}

async fn serve(node: &Node, session: &mut Option<Session>, out_dir: &Path) -> Result<()> {
    let progress = Progress::new();
    while let Some(event) = node.next_event().await {
        match event {
            Event::Connected {
                peer,
                addr,
                direction: Direction::Inbound,
                key,
            } => {
                if session.is_some() {
                    // One transfer at a time: turn others away.
                    let _ = node.abort(peer).await;
                    continue;
                }
                progress.println(&match key {
                    Some(key) => format!("{addr} connected (key {key})"),
                    None => format!("{addr} connected"),
                });
                *session = Some(Session {
                    peer,
                    addr,
                    incoming: Incoming::default(),
                    part: None,
                    bar: None,
                    started: Instant::now(),
                });
            }
            // Not a sender: keep waiting for one.
            Event::HandshakeFailed { addr, reason } => {
                progress.println(&format!("{addr} refused: {reason}"));
            }
            Event::Received { peer, data } => {
                let Some(s) = session.as_mut().filter(|s| s.peer == peer) else {
                    continue;
                };
                if receive(s, data, out_dir, &progress)? {
                    return finish(node, s, progress).await;
                }
            }
            Event::Disconnected { peer, reason, .. } => {
                let Some(s) = session.as_ref().filter(|s| s.peer == peer) else {
                    continue;
                };
                return Err(Failure::new(match s.incoming.header() {
                    _ if matches!(reason, DisconnectReason::FrameTooLarge { .. }) => {
                        format!("{} sent garbage: {reason}", s.addr)
                    }
                    None => format!("{} disconnected before sending a header ({reason})", s.addr),
                    Some(h) => format!(
                        "{} disconnected after {} of {} bytes of {} ({reason}); nothing was kept",
                        s.addr,
                        s.incoming.received(),
                        h.size,
                        h.name
                    ),
                }));
            }
            _ => {}
        }
    }
    Err(Failure::new("the node stopped unexpectedly"))
}

/// Takes one message; true once every announced byte has arrived.
fn receive(s: &mut Session, data: Bytes, out_dir: &Path, progress: &Progress) -> Result<bool> {
    let step = s
        .incoming
        .on_message(data)
        .map_err(|e| Failure::new(format!("{} {e}", s.addr)))?;
    match step {
        Step::Header(Header { name, size, .. }) => {
            let part = PartFile::create(out_dir, &name)
                .context(|| format!("cannot create {}", out_dir.join(&name).display()))?;
            s.part = Some(part);
            s.bar = Some(progress.add(&name, size));
            s.started = Instant::now();
        }
        Step::Data(bytes) => {
            if let Some(part) = &mut s.part {
                part.write(&bytes)
                    .context(|| format!("cannot write {}", part.part.display()))?;
            }
            if let Some(bar) = &s.bar {
                bar.set_position(s.incoming.received());
            }
        }
    }
    Ok(s.incoming.is_complete())
}

/// Verifies and stores the complete file, then confirms it to the sender.
async fn finish(node: &Node, s: &mut Session, progress: Progress) -> Result<()> {
    let (Some(header), Some(mut part)) = (s.incoming.header().cloned(), s.part.take()) else {
        return Err(Failure::new("internal error: no file to finish"));
    };
    let secs = s.started.elapsed().as_secs_f64();
    if let Err(e) = part.sync() {
        let _ = node.send_now(s.peer, Bytes::from(Ack::Refused.encode()));
        return Err(Failure::new(format!(
            "cannot write {}: {e}",
            part.part.display()
        )));
    }
    if !s.incoming.verified() {
        let _ = node.send_now(s.peer, Bytes::from(Ack::Mismatch.encode()));
        let _ = node.disconnect(s.peer).await;
        return Err(Failure::new(format!(
            "checksum mismatch for {} from {}; the file was not kept",
            header.name, s.addr
        )));
    }
    let path = match part.commit() {
        Ok(path) => path,
        Err(e) => {
            let _ = node.send_now(s.peer, Bytes::from(Ack::Refused.encode()));
            return Err(Failure::new(format!("cannot store {}: {e}", header.name)));
        }
    };
    if let Some(bar) = &s.bar {
        bar.finish("verified");
    }
    drop(progress);
    println!(
        "received {} ({} bytes, {}) in {secs:.2} s ({}), checksum ok, saved to {}",
        header.name,
        header.size,
        human_bytes(header.size),
        human_rate(header.size as f64 / secs.max(1e-6)),
        path.display()
    );
    // Confirm, and let the sender close first so the confirmation is not cut off.
    if node
        .send_now(s.peer, Bytes::from(Ack::Verified.encode()))
        .is_ok()
    {
        let _ = node.disconnect(s.peer).await;
        let peer = s.peer;
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            while let Some(event) = node.next_event().await {
                if matches!(event, Event::Disconnected { peer: p, .. } if p == peer) {
                    break;
                }
            }
        })
        .await;
    }
    Ok(())
}
