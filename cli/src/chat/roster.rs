//! Who is in the chat: the connected peers, and the name each one gave in its first message.
//!
//! The chat protocol is one rule on top of length-prefixed messages: the first message on every
//! connection, in both directions, is the sender's name; every later message is one line of chat.

use openp2p_tokio::discovery::MAX_NAME;
use openp2p_tokio::PeerId;
use std::collections::HashMap;
use std::net::SocketAddr;

/// A connected peer.
#[derive(Debug)]
struct Member {
    addr: SocketAddr,
    /// `None` until its first message (its name) arrived.
    name: Option<String>,
}

/// What a received message meant.
#[derive(Debug, PartialEq, Eq)]
pub enum Heard {
    /// The peer's first message: it has joined under this (printable) name.
    Joined { name: String, addr: SocketAddr },
    /// A line from a peer that has joined.
    Line { name: String, text: String },
    /// The first message is no name (too long): not a chat peer.
    NotChat { addr: SocketAddr, len: usize },
    /// The peer is not (or no longer) connected.
    Unknown,
}

/// The connected peers by id.
#[derive(Debug, Default)]
pub struct Roster {
    members: HashMap<PeerId, Member>,
    joined: usize,
}

impl Roster {
    /// A connection is up (our name has been sent on it).
    pub fn connected(&mut self, peer: PeerId, addr: SocketAddr) {
        self.members.insert(peer, Member { addr, name: None });
    }

    /// A message arrived from `peer`.
    pub fn heard(&mut self, peer: PeerId, data: &[u8]) -> Heard {
        let Some(member) = self.members.get_mut(&peer) else {
            return Heard::Unknown;
        };
        match &member.name {
            Some(name) => Heard::Line {
                name: name.clone(),
                text: printable(data),
            },
            None if data.len() > MAX_NAME => Heard::NotChat {
                addr: member.addr,
                len: data.len(),
            },
            None => {
                let name = printable_name(data);
                member.name = Some(name.clone());
                self.joined += 1;
                Heard::Joined {
                    name,
                    addr: member.addr,
                }
            }
        }
    }

    /// The peer is gone: its name and address if it had joined.
    pub fn left(&mut self, peer: PeerId) -> Option<(String, SocketAddr)> {
        let member = self.members.remove(&peer)?;
        let name = member.name?;
        self.joined -= 1;
        Some((name, member.addr))
    }

    /// Every connected peer (the ones that have not sent their name yet included: they have
    /// ours, so they read our lines in order after it).
    pub fn peers(&self) -> Vec<PeerId> {
        self.members.keys().copied().collect()
    }

    /// Peers that have joined (sent their name).
    pub fn joined(&self) -> usize {
        self.joined
    }
}

/// A received line made printable on one line: invalid UTF-8 becomes U+FFFD, control characters
/// (line ends included) are escaped (`\n`, `\u{1b}`), so one message is always one output line.
pub fn printable(data: &[u8]) -> String {
    let text = String::from_utf8_lossy(data);
    if !text.chars().any(char::is_control) {
        return text.into_owned();
    }
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// A name made into one printable word: whitespace and control characters become `_`; an empty
/// name is `?`.
pub fn printable_name(data: &[u8]) -> String {
    let name: String = String::from_utf8_lossy(data)
        .chars()
        .map(|c| {
            if c.is_whitespace() || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    if name.is_empty() {
        "?".into()
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openp2p_tokio::{Config, Engine};
    use std::time::Instant;

    fn peers(n: usize) -> Vec<PeerId> {
        let mut engine = Engine::new(Config::default()).unwrap();
        (0..n)
            .map(|_| {
                engine
                    .connect("127.0.0.1:9".parse().unwrap(), Instant::now())
                    .unwrap()
            })
            .collect()
    }

    #[test]
    fn the_first_message_is_the_name_and_later_ones_are_lines() {
        let [a, b] = peers(2)[..] else { panic!() };
        let addr: SocketAddr = "10.0.0.2:4000".parse().unwrap();
        let mut roster = Roster::default();
        roster.connected(a, addr);
        roster.connected(b, addr);
        assert_eq!(roster.joined(), 0);
        assert_eq!(roster.peers().len(), 2);
        assert_eq!(
            roster.heard(a, b"alice"),
            Heard::Joined {
                name: "alice".into(),
                addr
            }
        );
        assert_eq!(
            roster.heard(a, b"hi there"),
            Heard::Line {
                name: "alice".into(),
                text: "hi there".into()
            }
        );
        assert_eq!(roster.joined(), 1);
        assert_eq!(
            roster.heard(b, &[b'x'; MAX_NAME + 1]),
            Heard::NotChat {
                addr,
                len: MAX_NAME + 1
            }
        );
        assert_eq!(roster.left(b), None, "never joined");
        assert_eq!(roster.left(a), Some(("alice".into(), addr)));
        assert_eq!(roster.joined(), 0);
        assert_eq!(roster.heard(a, b"late"), Heard::Unknown);
    }

    #[test]
    fn anything_received_prints_as_one_line() {
        assert_eq!(printable(b"plain text"), "plain text");
        assert_eq!(printable(b"two\nlines\r"), "two\\nlines\\r");
        assert_eq!(printable(b"\x1b[31mred"), "\\u{1b}[31mred");
        assert_eq!(printable(b"bad \xff utf-8"), "bad \u{fffd} utf-8");
        assert_eq!(printable_name(b"mr smith\n"), "mr_smith_");
        assert_eq!(printable_name(b""), "?");
        assert_eq!(printable_name("zoë".as_bytes()), "zoë");
    }
}
