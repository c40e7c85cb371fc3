//! The demo's final tables.

use super::plan::Plan;
use crate::rate::{human_bytes, human_rate};
use openp2p_tokio::PeerKey;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// One transfer as its receiver measured it.
#[derive(Debug, Clone)]
pub struct Record {
    /// Index in the plan.
    pub index: usize,
    /// File bytes received.
    pub bytes: u64,
    /// From the connection to its close.
    pub connected: Duration,
    /// When the first data message arrived, and its size.
    pub first: Option<(Instant, u64)>,
    /// When the last data message arrived.
    pub last_at: Option<Instant>,
    /// Whether the checksum matched.
    pub verified: bool,
}

impl Record {
    /// Bytes per second from the first data message to the last (the first message's bytes
    /// are not counted: they arrived at its start).
    pub fn achieved(&self) -> f64 {
        match (self.first, self.last_at) {
            (Some((first, first_len)), Some(last)) if last > first => {
                (self.bytes - first_len) as f64 / (last - first).as_secs_f64()
            }
            _ => 0.0,
        }
    }

    fn span(&self) -> Option<(Instant, Instant)> {
        Some((self.first?.0, self.last_at?))
    }
}

/// Prints the per-transfer and per-node tables (with each node's key prefix, `-` for a plaintext
/// node); true if every checksum matched.
pub fn print(
    plan: &Plan,
    addrs: &[SocketAddr],
    keys: &[Option<PeerKey>],
    records: &[Record],
    elapsed: Duration,
) -> bool {
    println!();
    println!(
        "{:<10} {:>11} {:>10} {:>14} {:>14} {:>7}  {:<24} checksum",
        "transfer", "bytes", "connected", "achieved", "configured", "diff", "limited by",
    );
    let mut all_ok = true;
    for r in records {
        let Some(t) = plan.transfers.get(r.index) else {
            continue;
        };
        let achieved = r.achieved();
        let diff = (achieved / t.expected as f64 - 1.0) * 100.0;
        all_ok &= r.verified;
        println!(
            "{:<10} {:>11} {:>9.2}s {:>14} {:>14} {:>+6.1}%  {:<24} {}",
            t.label(),
            human_bytes(r.bytes),
            r.connected.as_secs_f64(),
            human_rate(achieved),
            human_rate(t.expected as f64),
            diff,
            t.limited_by,
            if r.verified { "ok" } else { "MISMATCH" }
        );
    }
    println!();
    println!(
        "{:<5} {:<8} {:<22} {:>11} {:>11} {:>16}  upload limit",
        "node", "key", "address", "sent", "received", "upload achieved"
    );
    for (i, addr) in addrs.iter().enumerate() {
        let mine = |from: bool| {
            records.iter().filter(move |r| {
                plan.transfers
                    .get(r.index)
                    .is_some_and(|t| if from { t.from == i } else { t.to == i })
            })
        };
        let sent: u64 = mine(true).map(|r| r.bytes).sum();
        let received: u64 = mine(false).map(|r| r.bytes).sum();
        // Upload rate over the span in which this node was sending anything.
        let start = mine(true).filter_map(|r| r.span()).map(|s| s.0).min();
        let end = mine(true).filter_map(|r| r.span()).map(|s| s.1).max();
        let first_bytes: u64 = mine(true).filter_map(|r| r.first).map(|f| f.1).sum();
        let upload = match start.zip(end) {
            Some((s, e)) if e > s => (sent - first_bytes) as f64 / (e - s).as_secs_f64(),
            _ => 0.0,
        };
        let limit = match plan.global.get(i).copied().flatten() {
            Some(g) => format!("{} global", human_rate(g as f64)),
            None => format!("2 x {}", human_rate(plan.per_peer as f64)),
        };
        let key = keys
            .get(i)
            .copied()
            .flatten()
            .map_or_else(|| "-".to_string(), |k| k.short());
        println!(
            "{:<5} {:<8} {:<22} {:>11} {:>11} {:>16}  {}",
            format!("n{i}"),
            key,
            addr.to_string(),
            human_bytes(sent),
            human_bytes(received),
            human_rate(upload),
            limit
        );
    }
    let verified = records.iter().filter(|r| r.verified).count();
    println!(
        "\n{verified} of {} transfers verified (SHA-256) in {:.1} s",
        plan.transfers.len(),
        elapsed.as_secs_f64()
    );
    all_ok
}
