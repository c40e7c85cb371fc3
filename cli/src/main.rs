//! # openp2p
//!
//! The command-line face of openp2p, on the Tokio driver:
//!
//! - `openp2p demo`: a five-node swarm on loopback exchanging generated files under per-peer and
//!   global upload limits, with live progress and a final table of achieved against configured
//!   rates;
//! - `openp2p echo --listen ADDR`: an echo service;
//! - `openp2p chat [--name NAME]`: a LAN chat; nodes find each other by UDP broadcast and
//!   connect automatically (see the `chat` module for its options and output lines);
//! - `openp2p send ADDR FILE [--up RATE]` and `openp2p recv --listen ADDR [--down RATE] [-o DIR]`:
//!   a rate-limited file transfer with a header (name, size, SHA-256) and verification.
//!
//! Every subcommand runs over the Noise XX secure channel unless given `--insecure`, and first
//! prints `identity: <64 hex>`, the key others pin (`send --peer-key`, `recv` / `echo --allow`,
//! `chat --peer-key`); see the `identity` module.
//!
//! Every failure is one line on stderr and a non-zero exit status (1 for a failed command, 2 for
//! bad arguments).
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod args;
mod chat;
mod config;
mod demo;
mod echo;
mod error;
mod identity;
mod progress;
mod rate;
mod recv;
mod send;
mod transfer;
mod wire;

use args::{Cli, Command};
use clap::error::ErrorKind;
use clap::Parser;
use error::{Failure, Result};
use std::process::ExitCode;

fn main() -> ExitCode {
    // Last line of defence: whatever goes wrong is one line, never a backtrace.
    std::panic::set_hook(Box::new(|info| {
        eprintln!("openp2p: internal error: {info}");
    }));
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => match e.kind() {
            ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => e.exit(),
            _ => {
                // clap's message, up to its first blank line, on one line.
                let text = e.to_string();
                let message: Vec<&str> = text
                    .lines()
                    .map(str::trim)
                    .skip_while(|l| l.is_empty())
                    .take_while(|l| !l.is_empty())
                    .collect();
                eprintln!("openp2p: {} (see `openp2p --help`)", message.join(" "));
                return ExitCode::from(2);
            }
        },
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("openp2p: error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async {
        tokio::select! {
            outcome = run(cli.command) => outcome,
            _ = tokio::signal::ctrl_c() => Err(Failure::new("interrupted")),
        }
    });
    // Do not wait for tasks still running (an echo peer, a lingering close).
    runtime.shutdown_background();
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("openp2p: error: {failure}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> Result<()> {
    match command {
        Command::Demo(options) => demo::run(&options).await,
        Command::Echo {
            listen,
            allow,
            secure,
        } => echo::run(listen, &allow, &secure).await,
        Command::Chat(options) => chat::run(&options).await,
        Command::Send {
            addr,
            file,
            up,
            peer_key,
            secure,
        } => send::run(&addr, &file, up, peer_key, &secure).await,
        Command::Recv {
            listen,
            down,
            out_dir,
            allow,
            secure,
        } => recv::run(listen, down, &out_dir, &allow, &secure).await,
    }
}
