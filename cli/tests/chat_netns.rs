//! `openp2p chat` on three hosts: three network namespaces on one bridge, each running the
//! binary. The nodes find each other by broadcast (two send to the limited broadcast address
//! `255.255.255.255`, the default, routed out of their LAN interface; the third to the subnet's
//! broadcast address), connect, and each says one line; every node must hear both others'.
//! The transcript is printed.
//!
//! Needs root and iproute2; elsewhere it is skipped with the reason printed. The namespaces are
//! removed, and the nodes killed, when the test ends, also when it fails.

mod chat_support;

use chat_support::{messages, names, scripted, BIN};
use openp2p_tests::netns::{Hosts, Unsupported};
use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

const HOSTS: usize = 3;
const PATIENCE: Duration = Duration::from_secs(60);

/// Routes the limited broadcast out of each host's LAN interface (a LAN's DHCP would give a
/// default route; the bare namespaces have none).
fn add_default_routes(hosts: &Hosts) -> Result<(), String> {
    for i in 0..HOSTS {
        let ns = hosts.namespace(i);
        let out = Command::new("ip")
            .args(["-n", &ns, "route", "add", "default", "dev", "eth0"])
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
        }
    }
    Ok(())
}

#[test]
fn three_chat_nodes_in_three_namespaces_find_each_other_by_broadcast() {
    let mut hosts = match Hosts::create(HOSTS) {
        Ok(hosts) => hosts,
        Err(Unsupported(why)) => {
            println!("SKIPPED chat namespace test: {why}");
            return;
        }
    };
    let limited_broadcast = match add_default_routes(&hosts) {
        Ok(()) => true,
        Err(why) => {
            println!("no default route ({why}): every node broadcasts to the subnet's address");
            false
        }
    };
    let [a, b, c, _] = hosts.addr(0).octets();
    let subnet_broadcast = Ipv4Addr::new(a, b, c, 255);
    let name = |i: usize| format!("host{i}");
    let addrs: Vec<Ipv4Addr> = (0..HOSTS).map(|i| hosts.addr(i)).collect();
    let line = |i: usize| format!("hello from {} at {}", name(i), addrs[i]);
    let (tx, rx) = mpsc::channel();
    let started = Instant::now();
    // Each host its own identity file, never the user's.
    let identities = tempfile::tempdir().expect("a temporary directory");
    for i in 0..HOSTS {
        let mut args = scripted(&name(i), &[line(i)], HOSTS - 1, HOSTS - 1, 50);
        let identity = identities.path().join(name(i));
        args.extend(["--identity".into(), identity.display().to_string()]);
        if i == HOSTS - 1 || !limited_broadcast {
            args.extend(["--broadcast".into(), subnet_broadcast.to_string()]);
        }
        println!("host{i} ({}): openp2p {}", hosts.addr(i), args.join(" "));
        let child = hosts.spawn(i, BIN, &args).expect("spawn openp2p chat");
        let stdout = child.stdout.take().expect("piped stdout");
        let tx = tx.clone();
        std::thread::spawn(move || {
            for report in chat_support::forward_lines(stdout) {
                let _ = tx.send((i, Some(report)));
            }
            // Stdout closed: the node has left.
            let _ = tx.send((i, None));
        });
    }
    let mut transcript: Vec<Vec<String>> = vec![Vec::new(); HOSTS];
    let mut ended = BTreeSet::new();
    let deadline = started + PATIENCE;
    while ended.len() < HOSTS {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((i, Some(report))) => {
                println!(
                    "{:>6.2}s host{i} {}: {report}",
                    started.elapsed().as_secs_f64(),
                    hosts.addr(i)
                );
                transcript[i].push(report);
            }
            Ok((i, None)) => {
                ended.insert(i);
            }
            Err(_) => panic!("the nodes did not all finish in {PATIENCE:?}: {transcript:?}"),
        }
    }
    println!(
        "all three nodes heard each other and left after {:.2}s",
        started.elapsed().as_secs_f64()
    );
    for (i, lines) in transcript.iter().enumerate() {
        let others: BTreeSet<String> = (0..HOSTS).filter(|&j| j != i).map(name).collect();
        assert_eq!(names(lines, "JOINED"), others, "host{i} joined: {lines:?}");
        // Every pair met by broadcast: at least one of the two heard the other's beacon (one
        // is enough to connect; a beacon sent before the other node was up is only repeated
        // seconds later), at the other's LAN address, the beacon's source.
        for j in (i + 1)..HOSTS {
            let found = |by: usize, whom: usize| {
                let prefix = format!("DISCOVERED {} {}:", name(whom), addrs[whom]);
                transcript[by].iter().any(|l| l.starts_with(&prefix))
            };
            assert!(
                found(i, j) || found(j, i),
                "host{i} and host{j} discovered each other: {transcript:?}"
            );
        }
        let heard: BTreeSet<(String, String)> = messages(lines).into_iter().collect();
        let expected: BTreeSet<(String, String)> = (0..HOSTS)
            .filter(|&j| j != i)
            .map(|j| (name(j), line(j)))
            .collect();
        assert_eq!(heard, expected, "host{i} heard every other host's line");
        assert!(
            lines.iter().all(|l| !l.contains("127.0.0.1")),
            "no loopback address anywhere: {lines:?}"
        );
    }
    drop(hosts);
}
