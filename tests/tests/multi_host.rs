//! Peers on three hosts (network namespaces on one bridge): cutting one host's link in the
//! middle of a transfer yields `Disconnected` on the two others, whose own transfer carries on.
//!
//! Needs root and iproute2; elsewhere it is skipped with the reason printed.

use openp2p_tests::netns::{Hosts, Unsupported};
use std::io::{BufRead, BufReader};
use std::net::{IpAddr, SocketAddr};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

const PORT: u16 = 7000;
/// The engine's idle timeout: how a host notices a silent (cut) peer.
const IDLE_MS: u64 = 1500;
const PATIENCE: Duration = Duration::from_secs(20);

/// One line of a peer's report, with the host it came from.
#[derive(Debug, Clone, PartialEq)]
enum Report {
    Connected(IpAddr),
    Bytes(IpAddr, u64),
    Disconnected(IpAddr, String),
    Other(String),
}

fn parse(line: &str) -> Report {
    let parts: Vec<&str> = line.splitn(3, ' ').collect();
    let ip = |i: usize| parts.get(i).and_then(|s| s.parse::<IpAddr>().ok());
    match (parts.first().copied(), ip(1)) {
        (Some("CONNECTED"), Some(a)) => Report::Connected(a),
        (Some("BYTES"), Some(a)) => match parts.get(2).and_then(|n| n.parse().ok()) {
            Some(n) => Report::Bytes(a, n),
            None => Report::Other(line.to_owned()),
        },
        (Some("DISCONNECTED"), Some(a)) => {
            Report::Disconnected(a, parts.get(2).copied().unwrap_or("").to_owned())
        }
        _ => Report::Other(line.to_owned()),
    }
}

/// Waits until `want` accepts a report of host `host`.
fn wait(rx: &Receiver<(usize, Report)>, what: &str, mut want: impl FnMut(usize, &Report) -> bool) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((host, report)) => {
                if let Report::Disconnected(..) = report {
                    println!("host {host}: {report:?}");
                }
                if want(host, &report) {
                    return;
                }
            }
            Err(_) => panic!("timed out waiting for {what}"),
        }
    }
}

#[test]
fn cutting_a_hosts_link_mid_transfer_disconnects_it_from_the_others() {
    let mut hosts = match Hosts::create(3) {
        Ok(hosts) => hosts,
        Err(Unsupported(why)) => {
            println!("SKIPPED multi-host test: {why}");
            return;
        }
    };
    let addrs: Vec<SocketAddr> = (0..3)
        .map(|i| SocketAddr::new(IpAddr::V4(hosts.addr(i)), PORT))
        .collect();
    let addr = |i: usize| addrs[i];
    let peer_bin = env!("CARGO_BIN_EXE_netns_peer");
    let (tx, rx) = mpsc::channel();
    // Host 0 connects to nobody, host 1 to host 0, host 2 to both: a full mesh.
    let plans: Vec<Vec<SocketAddr>> = vec![vec![], vec![addr(0)], vec![addr(0), addr(1)]];
    for (i, targets) in plans.into_iter().enumerate() {
        let mut args = vec![
            addr(i).to_string(),
            IDLE_MS.to_string(),
            (512 * 1024).to_string(),
        ];
        args.extend(targets.iter().map(SocketAddr::to_string));
        let child = hosts.spawn(i, peer_bin, &args).expect("spawn a peer");
        let stdout = child.stdout.take().expect("piped stdout");
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send((i, parse(&line))).is_err() {
                    return;
                }
            }
        });
        // The next host connects to this one: wait until it listens.
        wait(&rx, "a host listening", |host, r| {
            host == i && matches!(r, Report::Other(line) if line.starts_with("LISTENING"))
        });
    }
    let (ip1, ip2) = (addrs[1].ip(), addrs[2].ip());

    // Every pair is transferring: each host has received 256 KiB from each of the others.
    let mut flowing = std::collections::HashSet::new();
    wait(&rx, "data flowing between every pair", |host, r| {
        if let Report::Bytes(from, n) = r {
            if *n >= 256 * 1024 {
                flowing.insert((host, *from));
            }
        }
        if let Report::Disconnected(from, why) = r {
            panic!("host {host} lost {from} before the cut: {why}");
        }
        flowing.len() == 6
    });

    hosts.cut(2).expect("cut host 2's link");
    let cut_at = Instant::now();
    // Hosts 0 and 1 notice that host 2 went silent; their own link is unaffected.
    let mut lost = std::collections::HashSet::new();
    let mut progress_after_cut = 0u64;
    let mut at_cut = None;
    wait(
        &rx,
        "Disconnected from host 2 on hosts 0 and 1",
        |host, r| {
            match r {
                Report::Disconnected(from, why) if *from == ip2 && host != 2 => {
                    assert!(
                        why.contains("IdleTimeout") || why.contains("Io"),
                        "host {host}: {why}"
                    );
                    lost.insert(host);
                }
                Report::Disconnected(from, why) if host != 2 => {
                    panic!("host {host} lost {from}, which was not cut: {why}")
                }
                Report::Bytes(from, n) if host == 0 && *from == ip1 => {
                    let first = *at_cut.get_or_insert(*n);
                    progress_after_cut = n - first;
                }
                _ => {}
            }
            lost.len() == 2
        },
    );
    let took = cut_at.elapsed();
    println!("hosts 0 and 1 lost host 2 {took:?} after the cut");
    assert!(
        took >= Duration::from_millis(IDLE_MS - 100),
        "noticed after {took:?}"
    );
    // Host 0 kept receiving from host 1 all along (512 KiB/s for over a second).
    wait(&rx, "host 1's data still reaching host 0", |host, r| {
        if let Report::Bytes(from, n) = r {
            if host == 0 && *from == ip1 {
                progress_after_cut = n - at_cut.unwrap_or(*n);
            }
        }
        progress_after_cut >= 256 * 1024
    });
    drop(hosts);
}
