//! The command line.

use crate::chat::ChatArgs;
use crate::identity::{parse_key, SecureArgs};
use crate::rate::ByteRate;
use clap::{Args, Parser, Subcommand};
use openp2p_tokio::PeerKey;
use std::net::SocketAddr;
use std::path::PathBuf;

/// openp2p: peer-to-peer TCP with per-peer and global rate limits.
#[derive(Debug, Parser)]
#[command(name = "openp2p", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a live swarm of nodes on loopback that exchange files under rate limits.
    Demo(DemoArgs),
    /// Echo back whatever each connecting peer sends.
    Echo {
        /// Address to listen on (port 0 picks a free port).
        #[arg(long, default_value = "127.0.0.1:9988")]
        listen: SocketAddr,
        /// Admit only peers proving this key (repeatable; default: any key).
        #[arg(long, value_name = "HEX", value_parser = parse_key, conflicts_with = "insecure")]
        allow: Vec<PeerKey>,
        #[command(flatten)]
        secure: SecureArgs,
    },
    /// Send a file to `openp2p recv` and wait for it to confirm the checksum.
    Send {
        /// The receiver, as HOST:PORT.
        addr: String,
        /// The file to send.
        file: PathBuf,
        /// Upload limit, e.g. 512KiB/s or 10MB/s (default: unlimited).
        #[arg(long, value_name = "RATE")]
        up: Option<ByteRate>,
        /// The key the receiver must prove (its `identity:` line); another key fails the send
        /// before any data leaves.
        #[arg(long, value_name = "HEX", value_parser = parse_key, conflicts_with = "insecure")]
        peer_key: Option<PeerKey>,
        #[command(flatten)]
        secure: SecureArgs,
    },
    /// Chat with the other nodes of the LAN: they are found by UDP broadcast and connected to
    /// automatically; each line of standard input goes to all of them.
    Chat(ChatArgs),
    /// Receive one file from `openp2p send`, verify it and store it (replacing a file of that name).
    Recv {
        /// Address to listen on (port 0 picks a free port; the bound address is printed).
        #[arg(long)]
        listen: SocketAddr,
        /// Download limit, e.g. 512KiB/s or 10MB/s (default: unlimited).
        #[arg(long, value_name = "RATE")]
        down: Option<ByteRate>,
        /// Directory to store the file in.
        #[arg(short = 'o', long = "out-dir", value_name = "DIR", default_value = ".")]
        out_dir: PathBuf,
        /// Admit only senders proving this key (repeatable; default: any key).
        #[arg(long, value_name = "HEX", value_parser = parse_key, conflicts_with = "insecure")]
        allow: Vec<PeerKey>,
        #[command(flatten)]
        secure: SecureArgs,
    },
}

/// Options of `openp2p demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// A short run (a few seconds, small files and rates) instead of the full ~20 s one.
    #[arg(long)]
    pub quick: bool,
    /// Number of nodes in the swarm.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u8).range(3..=16))]
    pub nodes: u8,
    /// Plaintext TCP instead of the secure channel (each node otherwise has a fresh key, kept
    /// in memory only).
    #[arg(long)]
    pub insecure: bool,
}
