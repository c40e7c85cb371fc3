//! `openp2p demo`: a small swarm on 127.0.0.1. Every node sends a generated file to the next two
//! nodes under a per-peer upload limit, and every other node also has a global upload limit that
//! its two transfers share. Receivers verify checksums; progress is live; the run ends with a
//! table of achieved against configured rates. The nodes are secure (unless `--insecure`), each
//! with a fresh key kept in memory, and every dial is pinned to its target's key.

mod plan;
mod report;

use crate::args::DemoArgs;
use crate::error::{Context, Failure, Result};
use crate::progress::{Bar, Progress};
use crate::transfer::{checksum_of, Incoming, Outgoing, PatternSource, Pump, Step};
use crate::wire::{Ack, Header};
use bytes::Bytes;
use openp2p_tokio::{Direction, Event, Node, PeerId, PeerKey, SecureConfig};
use plan::{Plan, Planned};
use report::Record;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Runs the demo and prints its report; fails if any transfer did not verify.
pub async fn run(options: &DemoArgs) -> Result<()> {
    let plan = Plan::new(usize::from(options.nodes), options.quick);
    println!("{}", plan.describe());
    let progress = Progress::new();
    let mut nodes = Vec::new();
    let mut addrs = Vec::new();
    let mut keys: Vec<Option<PeerKey>> = Vec::new();
    for i in 0..plan.nodes {
        let mut config = plan.config(i);
        if !options.insecure {
            let identity = crate::identity::generate()?;
            println!("n{i} identity: {}", identity.public());
            keys.push(Some(identity.public()));
            crate::identity::make_secure(&mut config, SecureConfig::new(identity));
        } else {
            keys.push(None);
        }
        let node = Node::start(config).context(|| "cannot start a node".into())?;
        let addr = node
            .listen(
                "127.0.0.1:0"
                    .parse()
                    .map_err(|_| Failure::new("bad literal"))?,
            )
            .await
            .context(|| "cannot listen on 127.0.0.1".into())?;
        nodes.push(node);
        addrs.push(addr);
    }
    let headers = tokio::task::spawn_blocking({
        let plan = plan.clone();
        move || {
            plan.transfers
                .iter()
                .map(header_for)
                .collect::<Result<Vec<_>>>()
        }
    })
    .await
    .map_err(|e| Failure::new(format!("preparing the files failed: {e}")))??;
    let slots: Arc<HashMap<String, (usize, Bar)>> = Arc::new(
        plan.transfers
            .iter()
            .zip(&headers)
            .enumerate()
            .map(|(k, (t, h))| (h.name.clone(), (k, progress.add(&t.label(), t.size))))
            .collect(),
    );
    let t0 = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, node) in nodes.iter().enumerate() {
        let mut outgoing = HashMap::new();
        for (k, t) in plan
            .transfers
            .iter()
            .enumerate()
            .filter(|(_, t)| t.from == i)
        {
            let peer = match keys[t.to] {
                Some(key) => node.connect_pinned(addrs[t.to], key).await,
                None => node.connect(addrs[t.to]).await,
            }
            .context(|| format!("n{i} cannot connect to {}", addrs[t.to]))?;
            let source = PatternSource::new(t.seed(), t.size);
            outgoing.insert(peer, Outgoing::new(&headers[k], Box::new(source))?);
        }
        let incoming = plan.transfers.iter().filter(|t| t.to == i).count();
        tasks.spawn(run_node(i, node.clone(), outgoing, incoming, slots.clone()));
    }
    let deadline = plan.expected_duration() * 3 + Duration::from_secs(10);
    let mut records = Vec::new();
    tokio::time::timeout(deadline, async {
        while let Some(outcome) = tasks.join_next().await {
            let node_records =
                outcome.map_err(|e| Failure::new(format!("a node task failed: {e}")))??;
            records.extend(node_records);
        }
        Ok::<(), Failure>(())
    })
    .await
    .map_err(|_| Failure::new(format!("the demo did not finish within {deadline:?}")))??;
    let elapsed = t0.elapsed();
    for node in &nodes {
        let _ = tokio::time::timeout(Duration::from_secs(5), node.shutdown()).await;
    }
    drop(progress);
    records.sort_by_key(|r| r.index);
    let all_verified = report::print(&plan, &addrs, &keys, &records, elapsed);
    if all_verified && records.len() == plan.transfers.len() {
        Ok(())
    } else {
        Err(Failure::new("some transfers did not arrive intact"))
    }
}

fn header_for(t: &Planned) -> Result<Header> {
    let checksum = checksum_of(&mut PatternSource::new(t.seed(), t.size), t.size)
        .context(|| "generating a file".into())?;
    Ok(Header {
        name: t.file_name(),
        size: t.size,
        checksum,
    })
}

/// One inbound transfer as its receiver saw it.
#[derive(Debug)]
struct Receiving {
    addr: SocketAddr,
    incoming: Incoming,
    slot: Option<usize>,
    connected_at: Instant,
    first: Option<(Instant, u64)>,
    last_at: Option<Instant>,
    verified: Option<bool>,
}

/// Drives one node: its outgoing transfers (queue, await the ack, close) and its incoming ones
/// (verify, ack, record). Returns the records of the transfers it received.
async fn run_node(
    index: usize,
    node: Node,
    mut outgoing: HashMap<PeerId, Outgoing>,
    expected_incoming: usize,
    slots: Arc<HashMap<String, (usize, Bar)>>,
) -> Result<Vec<Record>> {
    let mut acked = std::collections::HashSet::new();
    let mut receiving: HashMap<PeerId, Receiving> = HashMap::new();
    let mut records = Vec::new();
    let total_out = outgoing.len();
    while acked.len() < total_out || records.len() < expected_incoming {
        let Some(event) = node.next_event().await else {
            return Err(Failure::new(format!("n{index} stopped unexpectedly")));
        };
        match event {
            Event::Connected {
                peer,
                addr,
                direction: Direction::Outbound,
                key: _,
            } => {
                if let Some(out) = outgoing.get_mut(&peer) {
                    if out.pump(&node, peer)? == Pump::PeerGone {
                        return Err(Failure::new(format!("n{index}: {addr} went away")));
                    }
                }
            }
            Event::Connected {
                peer,
                addr,
                direction: Direction::Inbound,
                key: _,
            } => {
                receiving.insert(
                    peer,
                    Receiving {
                        addr,
                        incoming: Incoming::default(),
                        slot: None,
                        connected_at: Instant::now(),
                        first: None,
                        last_at: None,
                        verified: None,
                    },
                );
            }
            Event::ConnectFailed { reason, addr, .. } => {
                return Err(Failure::new(format!(
                    "n{index} cannot connect to {addr}: {}",
                    crate::config::describe_connect_failure(reason)
                )));
            }
            Event::Writable { peer } => {
                if let Some(out) = outgoing.get_mut(&peer) {
                    out.pump(&node, peer)?;
                }
            }
            Event::Received { peer, data } => {
                if outgoing.contains_key(&peer) {
                    match Ack::decode(&data) {
                        Ok(_) => {
                            // Mismatches are reported by the receiver's record.
                            acked.insert(peer);
                            let _ = node.disconnect(peer).await;
                        }
                        Err(e) => return Err(Failure::new(format!("n{index}: bad ack: {e}"))),
                    }
                } else if let Some(r) = receiving.get_mut(&peer) {
                    receive(&node, peer, r, data, &slots).await?;
                }
            }
            Event::Disconnected { peer, reason, .. } => {
                if let Some(r) = receiving.remove(&peer) {
                    match (r.verified, r.slot) {
                        (Some(verified), Some(slot)) => records.push(Record {
                            index: slot,
                            bytes: r.incoming.received(),
                            connected: r.connected_at.elapsed(),
                            first: r.first,
                            last_at: r.last_at,
                            verified,
                        }),
                        _ => {
                            return Err(Failure::new(format!(
                                "n{index}: {} left before its file arrived ({reason})",
                                r.addr
                            )))
                        }
                    }
                } else if outgoing.remove(&peer).is_some() && !acked.contains(&peer) {
                    return Err(Failure::new(format!(
                        "n{index}: a receiver left before confirming ({reason})"
                    )));
                }
            }
            _ => {}
        }
    }
    Ok(records)
}

async fn receive(
    node: &Node,
    peer: PeerId,
    r: &mut Receiving,
    data: Bytes,
    slots: &HashMap<String, (usize, Bar)>,
) -> Result<()> {
    let len = data.len() as u64;
    match r
        .incoming
        .on_message(data)
        .map_err(|e| Failure::new(format!("{} {e}", r.addr)))?
    {
        Step::Header(h) => {
            let (slot, _) = slots
                .get(&h.name)
                .ok_or_else(|| Failure::new(format!("unexpected file {}", h.name)))?;
            r.slot = Some(*slot);
        }
        Step::Data(_) => {
            let now = Instant::now();
            r.first.get_or_insert((now, len));
            r.last_at = Some(now);
        }
    }
    let bar = r
        .incoming
        .header()
        .and_then(|h| slots.get(&h.name))
        .map(|(_, bar)| bar);
    if let Some(bar) = bar {
        bar.set_position(r.incoming.received());
    }
    if r.incoming.is_complete() && r.verified.is_none() {
        let verified = r.incoming.verified();
        r.verified = Some(verified);
        if let Some(bar) = bar {
            bar.finish(if verified { "ok" } else { "CHECKSUM MISMATCH" });
        }
        let ack = if verified {
            Ack::Verified
        } else {
            Ack::Mismatch
        };
        let _ = node.send_now(peer, Bytes::from(ack.encode()));
    }
    Ok(())
}
