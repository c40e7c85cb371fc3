//! Scenario 2: messages of random sizes from 0 to 4 MiB, in every framing, both directions at
//! once, checked by length and checksum.

use super::{pair, MIB};
use crate::harness::{Harness, TestNode, PATIENCE};
use crate::payload::{random, Checksum};
use openp2p_core::{Bytes, Config, Event, Framing, SimRng};
use std::collections::VecDeque;

/// Sizes sent in each direction: the edges (0, 1, 4 MiB), a segment boundary and seeded random
/// sizes in between. A handful, so a debug build stays fast.
fn sizes(rng: &mut SimRng) -> Vec<usize> {
    let mut sizes = vec![0, 1, 4 * MIB, 128 * 1024 + 1];
    sizes.extend((0..4).map(|_| rng.up_to(MIB)));
    sizes.push(MIB + rng.up_to(3 * MIB));
    // Spread the big ones among the small ones.
    let n = sizes.len();
    for i in 0..n {
        sizes.swap(i, rng.up_to(n - 1));
    }
    sizes
}

/// [`integrity_with`] in `Raw`, `LengthPrefixed` and `Delimited(0xFF)` framing.
pub fn integrity<H: Harness>(h: &mut H) {
    let _cpu = super::exclusive();
    for (i, framing) in [
        Framing::Raw,
        Framing::LengthPrefixed,
        Framing::Delimited(0xFF),
    ]
    .into_iter()
    .enumerate()
    {
        integrity_with(h, framing, 0x5eed + i as u64);
    }
}

/// What one side expects to receive.
struct Expected {
    /// Framed: each message's length and checksum, in order.
    messages: VecDeque<(usize, u64)>,
    /// Raw: the whole stream's length and checksum.
    stream: (usize, u64),
}

impl Expected {
    fn of(messages: &[Bytes]) -> Expected {
        let mut whole = Checksum::default();
        for m in messages {
            whole.update(m);
        }
        Expected {
            messages: messages
                .iter()
                .map(|m| (m.len(), Checksum::of(m).value()))
                .collect(),
            stream: (messages.iter().map(Bytes::len).sum(), whole.value()),
        }
    }
}

/// Progress of one receiving side.
#[derive(Default)]
struct Receiving {
    bytes: usize,
    checksum: Checksum,
    done: bool,
}

impl Receiving {
    fn take(&mut self, who: &str, framing: Framing, want: &mut Expected, data: &[u8]) {
        match framing {
            Framing::Raw => {
                self.bytes += data.len();
                self.checksum.update(data);
                assert!(self.bytes <= want.stream.0, "{who}: more bytes than sent");
                if self.bytes == want.stream.0 {
                    assert_eq!(
                        self.checksum.value(),
                        want.stream.1,
                        "{who}: stream checksum"
                    );
                    self.done = true;
                }
            }
            _ => {
                let (len, sum) = want
                    .messages
                    .pop_front()
                    .unwrap_or_else(|| panic!("{who}: a message more than was sent"));
                assert_eq!(data.len(), len, "{who}: message length");
                assert_eq!(Checksum::of(data).value(), sum, "{who}: message checksum");
                self.done = want.messages.is_empty();
            }
        }
    }
}

/// Both sides send the same list of sizes (different contents) at once with `framing`; each
/// checks every message (or, in `Raw` mode, the whole stream) by length and checksum.
pub fn integrity_with<H: Harness>(h: &mut H, framing: Framing, seed: u64) {
    let config = Config {
        framing,
        // Everything is queued at once (about 7 MiB per direction); no flow control needed.
        send_queue_high_water: 16 * MIB,
        ..Config::default()
    };
    let name = format!("{} {framing:?}", h.name());
    let p = pair(h, config.clone(), config);
    let mut rng = SimRng::new(seed);
    let avoid = match framing {
        Framing::Delimited(d) => Some(d),
        _ => None,
    };
    let sizes = sizes(&mut rng);
    let to_server: Vec<Bytes> = sizes.iter().map(|&n| random(&mut rng, n, avoid)).collect();
    let to_client: Vec<Bytes> = sizes.iter().map(|&n| random(&mut rng, n, avoid)).collect();
    let mut want_server = Expected::of(&to_server);
    let mut want_client = Expected::of(&to_client);
    for (a, b) in to_server.iter().zip(&to_client) {
        p.client
            .send(p.at_client, a.clone())
            .expect("client send accepted");
        p.server
            .send(p.at_server, b.clone())
            .expect("server send accepted");
    }
    drop((to_server, to_client));

    let mut at_server = Receiving::default();
    let mut at_client = Receiving::default();
    let deadline = p.client.now() + PATIENCE;
    let who_s = format!("{name}: server");
    let who_c = format!("{name}: client");
    while !(at_server.done && at_client.done) {
        assert!(
            p.client.now() < deadline,
            "{name}: transfer did not finish in time"
        );
        let short = std::time::Duration::from_millis(20);
        for (node, peer, state, want, who) in [
            (
                &p.server,
                p.at_server,
                &mut at_server,
                &mut want_server,
                &who_s,
            ),
            (
                &p.client,
                p.at_client,
                &mut at_client,
                &mut want_client,
                &who_c,
            ),
        ] {
            while let Some(event) = node.next_event(short) {
                match event {
                    Event::Received { peer: from, data } => {
                        assert_eq!(from, peer, "{who}: wrong peer");
                        state.take(who, framing, want, &data);
                    }
                    Event::Disconnected { reason, .. } => panic!("{who}: disconnected: {reason:?}"),
                    _ => {}
                }
            }
        }
    }
    p.client.disconnect(p.at_client);
    drop(p.server.shutdown());
    drop(p.client.shutdown());
}
