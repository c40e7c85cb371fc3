//! What the demo does: nodes, limits, and which files go where.

use crate::config::transfer_config;
use crate::rate::human_rate;
use openp2p_tokio::{Config, Limits, Rate};
use std::time::Duration;

/// One planned transfer.
#[derive(Debug, Clone)]
pub struct Planned {
    /// Sending node.
    pub from: usize,
    /// Receiving node.
    pub to: usize,
    /// File size in bytes.
    pub size: u64,
    /// The rate the limits allow this transfer, bytes per second.
    pub expected: u64,
    /// Which limit sets `expected`, in words.
    pub limited_by: String,
}

impl Planned {
    /// `n0 → n1`.
    pub fn label(&self) -> String {
        format!("n{} → n{}", self.from, self.to)
    }

    /// The file's announced name, by which the receiver finds its progress bar.
    pub fn file_name(&self) -> String {
        format!("n{}-to-n{}.bin", self.from, self.to)
    }

    /// The seed of the generated content.
    pub fn seed(&self) -> u64 {
        (self.from * 1000 + self.to) as u64
    }
}

/// The whole demo.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Number of nodes.
    pub nodes: usize,
    /// Upload limit of every connection, bytes per second.
    pub per_peer: u64,
    /// Global upload limit per node (even nodes only), bytes per second.
    pub global: Vec<Option<u64>>,
    /// The transfers: node `i` sends to `i + 1` and `i + 2` (mod `nodes`).
    pub transfers: Vec<Planned>,
    seconds: f64,
}

impl Plan {
    /// The full demo (about 18 s of transfers) or the quick one (about 2.5 s, slower rates).
    pub fn new(nodes: usize, quick: bool) -> Plan {
        let per_peer: u64 = if quick { 256 << 10 } else { 1 << 20 };
        let global_rate = per_peer * 3 / 2;
        let seconds = if quick { 2.5 } else { 18.0 };
        let global: Vec<Option<u64>> = (0..nodes)
            .map(|i| (i % 2 == 0).then_some(global_rate))
            .collect();
        let mut transfers = Vec::new();
        for (from, limit) in global.iter().enumerate() {
            for hop in [1, 2] {
                let (expected, limited_by) = match limit {
                    Some(g) if g / 2 < per_peer => {
                        (g / 2, format!("global {} / 2", human_rate(*g as f64)))
                    }
                    _ => (per_peer, "per-peer".to_string()),
                };
                transfers.push(Planned {
                    from,
                    to: (from + hop) % nodes,
                    size: (expected as f64 * seconds) as u64,
                    expected,
                    limited_by,
                });
            }
        }
        Plan {
            nodes,
            per_peer,
            global,
            transfers,
            seconds,
        }
    }

    /// Node `i`'s configuration.
    pub fn config(&self, i: usize) -> Config {
        Config {
            peer_limits: Limits::upload(Rate::per_second(self.per_peer)),
            global_limits: self
                .global
                .get(i)
                .copied()
                .flatten()
                .map_or(Limits::UNLIMITED, |g| Limits::upload(Rate::per_second(g))),
            sent_events: false,
            ..transfer_config()
        }
    }

    /// How long the transfers should take at their configured rates.
    pub fn expected_duration(&self) -> Duration {
        Duration::from_secs_f64(self.seconds)
    }

    /// What the demo is about to do, in a few lines.
    pub fn describe(&self) -> String {
        let limited: Vec<String> = (0..self.nodes)
            .filter(|&i| self.global[i].is_some())
            .map(|i| format!("n{i}"))
            .collect();
        let global = self.global.iter().flatten().next().copied().unwrap_or(0);
        format!(
            "openp2p demo: {} nodes on 127.0.0.1, {} transfers (each node sends a generated file to the next two)\n\
             limits: upload {} per peer on every node; global upload {} on {} (shared by its two transfers)\n",
            self.nodes,
            self.transfers.len(),
            human_rate(self.per_peer as f64),
            human_rate(global as f64),
            limited.join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_node_sends_two_files_and_receives_two() {
        let plan = Plan::new(5, false);
        assert_eq!(plan.transfers.len(), 10);
        for i in 0..5 {
            assert_eq!(plan.transfers.iter().filter(|t| t.from == i).count(), 2);
            assert_eq!(plan.transfers.iter().filter(|t| t.to == i).count(), 2);
        }
        assert!(plan.transfers.iter().all(|t| t.from != t.to));
        // Global-limited transfers get half the global rate; the others the per-peer rate.
        let t = &plan.transfers[0];
        assert_eq!(t.expected, 768 << 10);
        assert_eq!(plan.transfers[2].expected, 1 << 20);
        assert!(plan.config(0).validate().is_ok());
    }
}
