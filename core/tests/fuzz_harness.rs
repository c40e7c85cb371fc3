//! The fuzz harnesses on stable: the committed seed corpus (regressions included) replayed, and
//! proptest driving each harness with random inputs. Needs the `fuzzing` feature.
#![cfg(feature = "fuzzing")]

use openp2p_core::fuzzing;
use proptest::prelude::*;
use std::path::PathBuf;
use std::time::Instant;

/// Every file in `fuzz/corpus/<target>`, in a stable order.
fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(e) => panic!("corpus {} unreadable: {e}", dir.display()),
    };
    files.retain(|p| p.is_file());
    files.sort();
    files
        .into_iter()
        .map(|p| match std::fs::read(&p) {
            Ok(bytes) => (p, bytes),
            Err(e) => panic!("{}: {e}", p.display()),
        })
        .collect()
}

fn replay(target: &str, run: impl Fn(&[u8])) {
    let seeds = corpus(target);
    assert!(!seeds.is_empty(), "no seeds for {target}");
    for (path, bytes) in seeds {
        eprintln!("replaying {}", path.display());
        run(&bytes);
    }
}

#[test]
fn engine_corpus_replays_without_a_failure() {
    let base = Instant::now();
    replay("engine", |data| fuzzing::engine(data, base));
}

#[test]
fn length_prefixed_corpus_replays_without_a_failure() {
    let base = Instant::now();
    replay("frame_length_prefixed", |data| {
        fuzzing::frame_length_prefixed(data, base)
    });
}

#[test]
fn delimited_corpus_replays_without_a_failure() {
    let base = Instant::now();
    replay("frame_delimited", |data| {
        fuzzing::frame_delimited(data, base)
    });
}

#[test]
fn discovery_corpus_replays_without_a_failure() {
    let base = Instant::now();
    replay("discovery", |data| fuzzing::discovery(data, base));
}

#[test]
fn bucket_corpus_replays_without_a_failure() {
    replay("bucket", fuzzing::bucket);
}

#[test]
fn secure_handshake_corpus_replays_without_a_failure() {
    let base = Instant::now();
    replay("secure_handshake", |data| {
        fuzzing::secure_handshake(data, base)
    });
}

#[test]
fn secure_stream_corpus_replays_without_a_failure() {
    let base = Instant::now();
    replay("secure_stream", |data| fuzzing::secure_stream(data, base));
}

/// A frame-harness input: setup bytes, split sizes, then a stream of well-formed messages with
/// some garbage mixed in (so both reassembly and rejection are exercised).
fn frame_input(delimited: bool) -> impl Strategy<Value = Vec<u8>> {
    (
        any::<[u8; 3]>(),
        proptest::collection::vec(any::<u8>(), 0..64),
        proptest::collection::vec(
            (
                proptest::collection::vec(any::<u8>(), 0..3000),
                any::<bool>(),
            ),
            0..12,
        ),
    )
        .prop_map(move |(setup, splits, messages)| {
            let delimiter = setup[2];
            let mut input = setup.to_vec();
            input.push(splits.len() as u8);
            input.extend_from_slice(&splits);
            for (mut payload, garbage) in messages {
                if garbage {
                    input.extend_from_slice(&payload);
                    continue;
                }
                if delimited {
                    payload.retain(|b| *b != delimiter);
                    input.extend_from_slice(&payload);
                    input.push(delimiter);
                } else {
                    input.extend_from_slice(&(payload.len() as u32).to_be_bytes());
                    input.extend_from_slice(&payload);
                }
            }
            input
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn engine_harness_holds_on_random_inputs(data in proptest::collection::vec(any::<u8>(), 0..3000)) {
        fuzzing::engine(&data, Instant::now());
    }

    #[test]
    fn length_prefixed_harness_holds_on_random_streams(data in frame_input(false)) {
        fuzzing::frame_length_prefixed(&data, Instant::now());
    }

    #[test]
    fn delimited_harness_holds_on_random_streams(data in frame_input(true)) {
        fuzzing::frame_delimited(&data, Instant::now());
    }

    #[test]
    fn discovery_harness_holds_on_random_inputs(data in proptest::collection::vec(any::<u8>(), 0..2000)) {
        fuzzing::discovery(&data, Instant::now());
    }

    #[test]
    fn bucket_harness_holds_on_random_inputs(data in proptest::collection::vec(any::<u8>(), 0..2000)) {
        fuzzing::bucket(&data);
    }
}

proptest! {
    // Every case pays for X25519 (a whole handshake for the stream harness), slow in debug.
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn secure_handshake_harness_holds_on_random_inputs(data in proptest::collection::vec(any::<u8>(), 0..3000)) {
        fuzzing::secure_handshake(&data, Instant::now());
    }

    #[test]
    fn secure_stream_harness_holds_on_random_inputs(data in proptest::collection::vec(any::<u8>(), 0..400)) {
        fuzzing::secure_stream(&data, Instant::now());
    }
}
