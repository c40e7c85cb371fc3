//! `openp2p chat`: a LAN chat with no server and no addresses to type.
//!
//! Each node listens on TCP, announces itself by UDP broadcast (LAN discovery of the Tokio
//! driver, with auto-connect: of two nodes only one dials) and connects to the nodes it hears;
//! the address of a node is the source of its beacon, so it works across machines. Messages are
//! length-prefixed; the first one on a connection is the sender's name, every later one is a
//! line of chat, sent to every connected peer with `send_many`.
//!
//! Standard output carries one line per happening, made to be parsed (fields separated by one
//! space; names never contain spaces; text is the rest of the line, with control characters
//! escaped):
//!
//! ```text
//! LISTENING <name> <tcp address>
//! DISCOVERED <name> <address>     a node's beacon was heard
//! UNREACHABLE <address> <reason>  a discovered node could not be connected to
//! JOINED <name> <address>         a peer connected and said its name
//! MSG <name> <text>               a line from a peer
//! LEFT <name> <address>           the peer disconnected
//! LOST <name> <address>           the node's beacons stopped
//! REFUSED <address> <reason>      an inbound connection failed the secure handshake
//! ```
//!
//! The chat is secure unless `--insecure`: `identity: <key>` comes before `LISTENING`. With
//! `--peer-key` (repeatable) only those keys may chat: discovery dials every node it hears, so
//! the keys are an allowlist checked in the handshake of both directions; a node dialled that
//! proves another key is `UNREACHABLE` (`... is not allowed`), one that dials in is `REFUSED`.
//!
//! Warnings (a line too long, a line nobody received) go to standard error.
//!
//! Lines come from standard input, or from `--say` (then standard input is not read). The chat
//! ends at the end of standard input, or with the options meant for scripts and tests:
//! `--wait-peers N` holds the lines back until N peers have joined, `--exit-after-messages N`
//! leaves once N lines have arrived (and ours are sent), and `--duration SECS` leaves after that
//! long (a failure if `--exit-after-messages` was not reached by then). With `--say` and neither
//! exit option, the node stays until interrupted. A chat leaves gracefully: what was queued for
//! each peer is delivered before the connection closes.
//!
//! A connection that ends while both nodes keep announcing is dialled again when the next beacon
//! is heard (the core's discovery follows each dial), and two nodes never hold two connections.

mod input;
mod roster;

use crate::error::{Failure, Result};
use crate::identity::{allow_only, parse_key, SecureArgs};
use clap::Args;
use input::{Input, Line};
use openp2p_tokio::discovery::{DiscoveryConfig, DiscoveryOptions, NodeKey, DEFAULT_PORT};
use openp2p_tokio::{Bytes, Config, Event, Framing, Node, PeerKey};
use roster::{Heard, Roster};
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hasher};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;
use tokio::time::Instant;

/// Longest line sent or accepted, in bytes (a longer message disconnects its sender).
pub const MAX_LINE: usize = 64 * 1024;

/// Options of `openp2p chat`.
#[derive(Debug, Args)]
pub struct ChatArgs {
    /// Your name as the others see it: one word of at most 64 bytes (default: chat-XXXX).
    #[arg(long, value_parser = parse_name)]
    pub name: Option<String>,
    /// TCP port the others connect to (0: the OS picks one).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// UDP port of the discovery beacons: the same on every node of the chat.
    #[arg(long, value_name = "PORT", default_value_t = DEFAULT_PORT)]
    pub discovery_port: u16,
    /// Where beacons are broadcast: 255.255.255.255, or a subnet's broadcast address such as
    /// 192.168.1.255 (127.255.255.255 for nodes on one host).
    #[arg(long, value_name = "ADDR", default_value = "255.255.255.255")]
    pub broadcast: Ipv4Addr,
    /// Say LINE instead of reading standard input (repeatable; the lines go in order, to the
    /// peers joined by then: see --wait-peers).
    #[arg(long = "say", value_name = "LINE", value_parser = parse_line)]
    pub say: Vec<String>,
    /// Hold the lines back until N peers have joined.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub wait_peers: usize,
    /// Leave once N lines from the others have arrived.
    #[arg(long, value_name = "N")]
    pub exit_after_messages: Option<u64>,
    /// Leave after SECS seconds (a failure if --exit-after-messages was not reached by then).
    #[arg(long, value_name = "SECS")]
    pub duration: Option<u64>,
    /// Chat only with the node proving this key (repeatable; default: any key). Discovery dials
    /// whoever it hears, so this is an allowlist enforced in the handshake of both directions:
    /// a node dialled that proves another key is UNREACHABLE, one dialling in is REFUSED.
    #[arg(long, value_name = "HEX", value_parser = parse_key, conflicts_with = "insecure")]
    pub peer_key: Vec<PeerKey>,
    #[command(flatten)]
    pub secure: SecureArgs,
}

fn parse_name(name: &str) -> std::result::Result<String, String> {
    let max = openp2p_tokio::discovery::MAX_NAME;
    if name.is_empty() || name.len() > max {
        Err(format!("a name has 1 to {max} bytes"))
    } else if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Err("a name is one word (no spaces or control characters)".into())
    } else {
        Ok(name.to_owned())
    }
}

fn parse_line(line: &str) -> std::result::Result<String, String> {
    if line.len() > MAX_LINE {
        Err(format!("a line has at most {MAX_LINE} bytes"))
    } else {
        Ok(line.to_owned())
    }
}

/// A chat node: messages are lines, no idle timeout (a chat may be silent for hours; TCP
/// keepalive notices dead peers), a short linger when leaving (lines are small; a peer that does
/// not close is not waited for long), a small receive pool.
fn chat_config() -> Config {
    Config {
        framing: Framing::LengthPrefixed,
        max_frame_size: MAX_LINE,
        idle_timeout: None,
        linger_timeout: Duration::from_secs(3),
        sent_events: false,
        segment_size: 16 * 1024,
        pool_segments: 64,
        ..Config::default()
    }
}

/// A random node identity (the standard library's per-process random hash keys, mixed with the
/// time and the process id).
fn random_key() -> NodeKey {
    let mut key = [0u8; 16];
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    for (i, half) in key.chunks_mut(8).enumerate() {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_usize(i);
        hasher.write_u32(std::process::id());
        hasher.write_u128(nanos);
        half.copy_from_slice(&hasher.finish().to_le_bytes());
    }
    NodeKey(key)
}

/// One chat session's state.
struct Chat {
    node: Node,
    roster: Roster,
    /// Names of the nodes heard, for `LOST`.
    heard: HashMap<NodeKey, String>,
    held: VecDeque<Bytes>,
    wait_peers: usize,
    received: u64,
}

impl Chat {
    async fn on_event(&mut self, event: Event, name: &Bytes) {
        match event {
            Event::Connected { peer, addr, .. } => {
                self.roster.connected(peer, addr);
                // Our name first. A refusal means the peer is already gone: its `Disconnected`
                // follows and takes it off the roster.
                let _ = self.node.send(peer, name.clone()).await;
            }
            Event::Received { peer, data } => match self.roster.heard(peer, &data) {
                Heard::Joined { name, addr } => {
                    println!("JOINED {name} {addr}");
                    self.flush().await;
                }
                Heard::Line { name, text } => {
                    println!("MSG {name} {text}");
                    self.received += 1;
                }
                Heard::NotChat { addr, len } => {
                    eprintln!("openp2p: warning: {addr} is not a chat peer (a first message of {len} bytes); disconnecting");
                    let _ = self.node.abort(peer).await;
                }
                Heard::Unknown => {}
            },
            Event::Disconnected { peer, reason, .. } => {
                if let Some((name, addr)) = self.roster.left(peer) {
                    println!("LEFT {name} {addr}");
                    if !matches!(
                        reason,
                        openp2p_tokio::DisconnectReason::Remote
                            | openp2p_tokio::DisconnectReason::Local
                    ) {
                        eprintln!("openp2p: warning: {name} left: {reason}");
                    }
                }
            }
            Event::ConnectFailed { addr, reason, .. } => {
                // Not a warning: a node that is leaving may still be heard once.
                println!(
                    "UNREACHABLE {addr} {}",
                    crate::config::describe_connect_failure(reason)
                );
            }
            Event::HandshakeFailed { addr, reason } => println!("REFUSED {addr} {reason}"),
            Event::Discovered { node, addr, name } => {
                let name = roster::printable_name(name.as_bytes());
                println!("DISCOVERED {name} {addr}");
                self.heard.insert(node, name);
            }
            Event::Lost { node, addr } => {
                let name = self.heard.remove(&node).unwrap_or_else(|| "?".into());
                println!("LOST {name} {addr}");
            }
            _ => {}
        }
    }

    /// A line to say: now, or once enough peers have joined.
    async fn say(&mut self, line: Line) {
        match line {
            Line::Text(text) => {
                self.held.push_back(Bytes::from(text));
                self.flush().await;
            }
            Line::TooLong(len) => {
                eprintln!("openp2p: warning: a line of {len} bytes was not sent (the limit is {MAX_LINE})");
            }
        }
    }

    /// Sends the held lines if enough peers have joined.
    async fn flush(&mut self) {
        if self.roster.joined() < self.wait_peers {
            return;
        }
        let peers = self.roster.peers();
        while let Some(line) = self.held.pop_front() {
            if peers.is_empty() {
                eprintln!("openp2p: warning: nobody has joined yet; the line was not sent");
                continue;
            }
            for (_, error) in self.node.send_many(&peers, line).await {
                eprintln!("openp2p: warning: a peer did not take the line: {error}");
            }
        }
    }
}

/// Runs the chat until the input ends or an exit option says so.
pub async fn run(args: &ChatArgs) -> Result<()> {
    let mut config = chat_config();
    args.secure.apply(&mut config, allow_only(&args.peer_key))?;
    let node =
        Node::start(config).map_err(|e| Failure::new(format!("cannot start the node: {e}")))?;
    let listen = SocketAddr::from((Ipv4Addr::UNSPECIFIED, args.port));
    let bound = node.listen(listen).await.map_err(|e| {
        Failure::new(format!(
            "cannot listen on {listen}: {}",
            crate::config::describe_bind_error(e)
        ))
    })?;
    let key = random_key();
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| format!("chat-{:02x}{:02x}", key.0[0], key.0[1]));
    let options = DiscoveryOptions {
        port: args.discovery_port,
        broadcast: args.broadcast.into(),
        config: DiscoveryConfig {
            auto_connect: true,
            ..DiscoveryConfig::default()
        },
        ..DiscoveryOptions::new(key, name.clone(), bound.port())
    };
    node.enable_discovery(options).map_err(|e| {
        Failure::new(format!(
            "cannot use the discovery port {}: {e}",
            args.discovery_port
        ))
    })?;
    println!("LISTENING {name} {bound}");
    let name = Bytes::from(name);
    // `--say` lines are ours from the start; standard input's when they are typed.
    let mut input = if args.say.is_empty() {
        Input::stdin(MAX_LINE)
    } else {
        Input::closed()
    };
    // With no exit option, the end of standard input ends the chat.
    let stays =
        args.exit_after_messages.is_some() || args.duration.is_some() || !args.say.is_empty();
    let deadline = args
        .duration
        .map(|secs| Instant::now() + Duration::from_secs(secs));
    let mut chat = Chat {
        node: node.clone(),
        roster: Roster::default(),
        heard: HashMap::new(),
        held: args
            .say
            .iter()
            .map(|line| Bytes::from(line.clone()))
            .collect(),
        wait_peers: args.wait_peers,
        received: 0,
    };
    chat.flush().await;
    let mut input_open = true;
    let outcome = loop {
        // Leave only once our own lines are out.
        let done =
            args.exit_after_messages.is_some_and(|n| chat.received >= n) || (!input_open && !stays);
        if done && chat.held.is_empty() {
            break Ok(());
        }
        tokio::select! {
            event = node.next_event() => match event {
                Some(event) => chat.on_event(event, &name).await,
                None => break Err(Failure::new("the node stopped")),
            },
            // While a line is held back, input waits (memory stays bounded by the channel).
            line = input.next(), if input_open && chat.held.is_empty() => match line {
                Some(line) => chat.say(line).await,
                None => input_open = false,
            },
            () = sleep_until(deadline) => {
                break match args.exit_after_messages {
                    Some(n) if chat.received < n => Err(Failure::new(format!(
                        "only {} of {n} lines arrived within {} s ({} peers joined)",
                        chat.received,
                        args.duration.unwrap_or(0),
                        chat.roster.joined()
                    ))),
                    _ => Ok(()),
                };
            }
        }
    };
    // Flushes what was queued to each peer, then closes.
    node.shutdown().await;
    outcome
}

/// Sleeps until `deadline`, or forever without one.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
